/**
 * The findings only a dump check makes (`ptspec check`, findings.ts): rules about what
 * ptdump text shows that the abstract state has no place for (ptdump's leaf lines, the
 * PTI user copy next to the kernel copy). They are catalogued like the invariants, so
 * every id `ptspec check` prints resolves with `ptspec invariants ID`.
 */
import type { Family } from '../../spec/invariant.ts';

export interface DumpFindingDefinition {
  readonly id: string;
  readonly family: Family;
  readonly title: string;
  /** One precise sentence: what the dump must show. */
  readonly statement: string;
  /** Why, and the bug that broke it. */
  readonly rationale: string;
  readonly references: readonly string[];
}

const PTI = 'arch/x86/mm/pti.c';

export const DUMP_FINDINGS = [
  {
    id: 'S-dump-leaf-level', family: 'S', title: 'Leaves only at pte, pmd and pud',
    statement: 'No present pgd or p4d entry is printed as a leaf.',
    rationale: 'ptdump prints a present entry only where the walk stops at a leaf, and x86 has no pgd or p4d leaves (pgd_large/p4d_large are 0): such a line means the text is not a faithful walk or the tables are broken.',
    references: ['arch/x86/mm/dump_pagetables.c', 'mm/ptdump.c'],
  },
  {
    id: 'S-dump-pse', family: 'S', title: 'Huge leaves have PSE',
    statement: 'Every present pud or pmd entry printed as a leaf has PSE set.',
    rationale: 'Without PSE a pud or pmd entry points to a table (pud_large/pmd_large test PSE), so ptdump cannot stop there.',
    references: ['arch/x86/mm/dump_pagetables.c', 'arch/x86/include/asm/pgtable.h pud_leaf, pmd_leaf'],
  },
  {
    id: 'K-dump-usr', family: 'K', title: 'No USR mapping in the kernel half',
    statement: 'No mapping in the kernel half of any table is user-accessible, except the legacy vsyscall page (4K, USR, read-only at 0xffffffffff600000).',
    rationale: 'A USR kernel-half mapping lets user space read or write kernel memory directly ("Total Meltdown", CVE-2018-1038, where a USR bit in a top-level entry exposed every page table); the vsyscall page is mapped for user space on purpose by map_vsyscall.',
    references: ['arch/x86/entry/vsyscall/vsyscall_64.c map_vsyscall', 'CVE-2018-1038'],
  },
  {
    id: 'K-dump-user-allowlist', family: 'K', title: 'PTI user copy maps only the allowlisted kernel ranges',
    statement: 'In the kernel half, the PTI user copy maps only the cpu_entry_area, the espfix stacks, the LDT remap, the vsyscall page and the kernel image.',
    rationale: 'The user copy is what Meltdown can read: anything else mapped there leaks to user space. The kernel clones exactly these ranges into it.',
    references: [`${PTI} pti_clone_user_shared, pti_clone_entry_text, pti_clone_kernel_text`, 'Documentation/arch/x86/x86_64/mm.rst'],
  },
  {
    id: 'K-dump-user-image-rw', family: 'K', title: 'PTI user copy maps the kernel image only up to the end of rodata',
    statement: 'Inside the kernel image, the PTI user copy maps nothing writable.',
    rationale: 'Text and rodata are read-only after mark_rodata_ro, so a writable run in the user copy is kernel data or a freed image hole: the Meltdown leak fixed by c40a56a7818c ("x86/mm/init: Remove freed kernel image areas from alias mapping").',
    references: [`${PTI} pti_clone_kernel_text`, 'c40a56a7818c'],
  },
  {
    id: 'K-dump-glb', family: 'K', title: 'GLB only where both PTI copies map',
    statement: 'No global (GLB) mapping of one copy of a process falls where the other copy prints nothing present (where both map, K3 global_translations_are_the_same_in_every_root judges).',
    rationale: 'A global TLB entry survives the CR3 switch between the copies, so the user copy reads through a kernel translation it does not have. A PTI kernel masks _PAGE_GLOBAL off every kernel mapping but the ranges it clones (pti_clone_pgtable sets it on both). The catalogue\'s K3 compares only leaves both roots map (init_mm maps much a user copy never may), so this half of the rule only a dump check states.',
    references: [`${PTI} pti_kernel_image_global_ok, pti_set_kernel_image_nonglobal, pti_clone_pgtable`],
  },
] as const satisfies readonly DumpFindingDefinition[];

export type DumpFindingId = (typeof DUMP_FINDINGS)[number]['id'];

/** The id, family and title a finding of this kind carries. */
export function dumpFinding(id: DumpFindingId): Pick<DumpFindingDefinition, 'id' | 'family' | 'title'> {
  const d = DUMP_FINDINGS.find((f) => f.id === id)!;
  return { id: d.id, family: d.family, title: d.title };
}

export function dumpFindingByKey(key: string): DumpFindingDefinition | undefined {
  return DUMP_FINDINGS.find((f) => f.id === key);
}
