/*
 * mutant.h: the compile-time mutants. Building with -DPTSPEC_MUTANT=N injects one
 * historical bug class of impl/mutants.ts (same names) into the library as one small
 * branch guarded by MUTANT(name); without it every MUTANT() is 0 and the branches fold away.
 * c/Makefile's `mutants` target builds c/build/ref-<name>.wasm for each.
 */
#ifndef PTREF_MUTANT_H
#define PTREF_MUTANT_H

#define MUTANT_SPLIT_DROPS_PAT            1 /* split_large_page drops PAT instead of moving it to bit 7 */
#define MUTANT_SPLIT_DROPS_NX             2 /* the pieces of a split lose NX */
#define MUTANT_VUNMAP_KEEPS_HUGE_TAIL     3 /* vunmap of part of a huge leaf splits it and keeps the tail */
#define MUTANT_LEAK_EMPTY_TABLE           4 /* collapse leaves the table it replaced allocated */
#define MUTANT_COLLAPSE_NON_UNIFORM       5 /* collapse checks frames only, not that the 512 prots agree */
#define MUTANT_REMOTE_CPU_NOT_FLUSHED     6 /* range flushes reach CPU 0 only */
#define MUTANT_WALK_CACHE_SURVIVES_FLUSH  7 /* flushes leave the paging-structure caches alone */
#define MUTANT_TABLE_FREED_BEFORE_PURGE   8 /* a huge map frees a kept table without the one-page flush */
#define MUTANT_SPLIT_KEEPS_LARGE_TLB      9 /* split flushes nothing */

#ifndef PTSPEC_MUTANT
#define PTSPEC_MUTANT 0
#endif

#define MUTANT(name) (PTSPEC_MUTANT == MUTANT_##name)

#endif
