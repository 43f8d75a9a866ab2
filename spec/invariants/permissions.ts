/**
 * P: permissions. What the kernel's W^X machinery (CONFIG_DEBUG_WX, CPA's
 * static_protections and verify_rwx, mark_rodata_ro) promises, stated over effective
 * permissions and over *all* aliases of a frame, which the kernel only partly checks:
 * its W+X scan looks at one mapping at a time.
 */
import { isKernelHalf, upperHalfStart, vpnToHex } from '../address.ts';
import type { CheckScope, Invariant, Witness } from '../invariant.ts';
import type { AbstractState } from '../state.ts';
import {
  KERNEL_IMAGE_MAP, Witnesses, forEachAliasLeaf, framesText, frameUseCheck, isExecutable, leafIntersectsAny, isWritable, leafCheck, leafPages,
  mergeIntervals, type FrameInterval, type Mapping,
} from './common.ts';

/** Kinds of a mapping in the cross-alias sweep; a W+X leaf counts as both. */
const W = 0;
const X = 1;
const WX = 2;
/** Event code = pfn * 8 + code; ends (0..2) sort before starts (3..5) at one pfn: intervals are half-open. */
const START = 3;

/**
 * Cross-alias W^X by a sweep over frame intervals: every executable leaf, and every
 * writable leaf over frames some leaf executes, contributes [pfn, pfn + pages); between
 * consecutive event points the counts of writable and executable mappings are constant,
 * and the interval is bad when some mapping writes it and a *different* one executes it.
 */
function crossAliasWx(state: AbstractState, scope?: CheckScope): Witness[] {
  // Executable leaves are few (text, modules, BPF): only writable leaves over their frames matter.
  const cands: Mapping[] = [];
  const execSpans: FrameInterval[] = [];
  forEachAliasLeaf(state, scope, (root, leaf) => {
    if (!isExecutable(leaf.prot)) return;
    cands.push({ root, leaf });
    execSpans.push({ lo: leaf.pfn, hi: leaf.pfn + leafPages(leaf) });
  });
  if (cands.length === 0) return [];
  const spans = mergeIntervals(execSpans);
  forEachAliasLeaf(state, scope, (root, leaf) => {
    if (isWritable(leaf.prot) && !isExecutable(leaf.prot) && leafIntersectsAny(spans, leaf)) cands.push({ root, leaf });
  });

  const events = new Float64Array(cands.length * 2);
  cands.forEach(({ leaf }, i) => {
    const kind = isWritable(leaf.prot) ? (isExecutable(leaf.prot) ? WX : W) : X;
    events[2 * i] = leaf.pfn * 8 + START + kind;
    events[2 * i + 1] = (leaf.pfn + leafPages(leaf)) * 8 + kind;
  });
  events.sort();

  const count = [0, 0, 0];
  const bad: { lo: number; hi: number }[] = [];
  let at = 0;
  for (let i = 0; i < events.length; ) {
    const pfn = Math.floor(events[i]! / 8);
    const writers = count[W]! + count[WX]!;
    const execs = count[X]! + count[WX]!;
    // Only one writer and one executor that are the same W+X leaf is P1's business, not an alias.
    const conflict = writers > 0 && execs > 0 && !(writers === 1 && execs === 1 && count[WX] === 1);
    if (conflict && pfn > at) {
      const last = bad[bad.length - 1];
      if (last !== undefined && last.hi === at) last.hi = pfn;
      else bad.push({ lo: at, hi: pfn });
    }
    for (; i < events.length && Math.floor(events[i]! / 8) === pfn; i++) {
      const code = events[i]! % 8;
      if (code >= START) count[code - START]!++;
      else count[code]!--;
    }
    at = pfn;
  }

  const out = new Witnesses();
  for (const iv of bad) {
    // Name one writer and one different executor at the interval's first frame.
    const here = cands.filter(({ leaf }) => leaf.pfn <= iv.lo && iv.lo < leaf.pfn + leafPages(leaf));
    let writer: Mapping | undefined;
    let exec: Mapping | undefined;
    for (const a of here) {
      if (!isWritable(a.leaf.prot)) continue;
      const b = here.find((m) => m !== a && isExecutable(m.leaf.prot));
      if (b !== undefined) {
        writer = a;
        exec = b;
        break;
      }
    }
    if (writer === undefined || exec === undefined) continue;
    const wl = writer.leaf;
    const where = (m: Mapping) => `root ${m.root.id} at ${vpnToHex(m.leaf.vpn + (iv.lo - m.leaf.pfn))}`;
    out.add({
      root: writer.root.id,
      vpn: wl.vpn + (iv.lo - wl.pfn),
      pages: Math.min(iv.hi, wl.pfn + leafPages(wl)) - iv.lo,
      frames: [{ pfn: iv.lo, count: iv.hi - iv.lo }],
      detail: `${framesText(iv.lo, iv.hi - iv.lo)} writable through ${where(writer)} and executable through ${where(exec)}`,
    });
  }
  return out.done();
}

export const PERMISSIONS: readonly Invariant[] = [
  {
    id: 'P1',
    family: 'P',
    title: 'No W+X mapping',
    statement: 'No leaf is both writable and executable (by the kernel or by user mode).',
    rationale:
      'A writable and executable page lets any memory-corruption bug become code execution. CONFIG_DEBUG_WX scans the ' +
      'kernel tables after mark_rodata_ro (ptdump_walk_pgd_level_checkwx; note_page counts pages with RW and without NX ' +
      'in the effective protection and prints "Checked W+X mappings: FAILED"), and CPA warns on creating one ' +
      '("CPA detected W^X violation", verify_rwx).',
    references: ['arch/x86/mm/dump_pagetables.c note_page, ptdump_walk_pgd_level_checkwx', 'arch/x86/mm/pat/set_memory.c verify_rwx', 'CONFIG_DEBUG_WX'],
    check: leafCheck(() => (leaf) => (isWritable(leaf.prot) && isExecutable(leaf.prot) ? `W+X: ${leafPages(leaf)} pages writable and executable` : undefined)),
  },
  {
    id: 'P2',
    family: 'P',
    title: 'No frame writable through one alias and executable through another',
    statement: 'No frame is mapped writable by one leaf and executable by a different leaf, in any roots.',
    rationale:
      'Per-mapping W^X is worthless if a frame is writable through one mapping and executable through another: ' +
      'write the code through one, run it through the other. The kernel handles aliases case by case: ' +
      'cpa_process_alias carries RW changes to the direct map, mark_rodata_ro makes the direct-map alias of text and ' +
      'rodata read-only (protect_rodata catches every alias by pfn), and commit c40a56a7818c had to unmap freed ' +
      'kernel-image holes from the high alias because a stale alias of a reused frame escapes all such rules. No ' +
      'kernel check states the rule for all aliases; the W+X scan looks at one mapping at a time.',
    references: ['arch/x86/mm/pat/set_memory.c cpa_process_alias', 'arch/x86/mm/init_64.c mark_rodata_ro', 'commit c40a56a7818c (x86/mm/init: Remove freed kernel image areas from alias mapping)'],
    check: crossAliasWx,
  },
  {
    id: 'P3',
    family: 'P',
    title: 'Kernel text never writable',
    statement: 'No leaf that maps a kernel-text frame is writable.',
    rationale:
      'After mark_rodata_ro the kernel text is read-only through the image mapping and through its direct-map alias ' +
      '(set_memory_ro over _text.._etext, kept by CPA\'s protect_kernel_text_ro "Text RO"); the only sanctioned writer is ' +
      'text_poke, which writes through a temporary user-half mapping in poking_mm, outside these tables.',
    references: ['arch/x86/mm/init_64.c mark_rodata_ro', 'arch/x86/mm/pat/set_memory.c protect_kernel_text_ro', 'arch/x86/kernel/alternative.c text_poke'],
    check: frameUseCheck((leaf) => isWritable(leaf.prot), (r) => r.use === 'kernel-text', () => 'kernel text writable'),
  },
  {
    id: 'P4',
    family: 'P',
    title: 'Kernel rodata never writable through any alias',
    statement: 'No leaf that maps a kernel-rodata frame is writable.',
    rationale:
      'CPA\'s protect_rodata forbids RW by pfn, "Using the pfn catches all aliases", once kernel_set_to_readonly is set ' +
      'by mark_rodata_ro: read-only data (including __ro_after_init) is only read-only if no alias writes it.',
    references: ['arch/x86/mm/pat/set_memory.c protect_rodata, static_protections', 'arch/x86/mm/init_64.c mark_rodata_ro'],
    check: frameUseCheck((leaf) => isWritable(leaf.prot), (r) => r.use === 'kernel-rodata', () => 'kernel rodata writable'),
  },
  {
    id: 'P5',
    family: 'P',
    title: 'Kernel text executable in the image mapping',
    statement: 'Every page at __START_KERNEL_map + pfn that maps its own kernel-text frame pfn is kernel-executable.',
    rationale:
      'The kernel executes out of the high image mapping; CPA\'s protect_kernel_text forbids NX on _text.._etext there ' +
      '("Text NX"), since a set_memory_nx over kernel text would crash the machine on the next instruction fetch. The ' +
      'direct-map alias of text is not protected this way and stays NX.',
    references: ['arch/x86/mm/pat/set_memory.c protect_kernel_text', 'arch/x86/kernel/vmlinux.lds.S _text, _etext'],
    check: frameUseCheck(
      (leaf) => leaf.vpn - leaf.pfn === KERNEL_IMAGE_MAP && !leaf.prot.execKernel,
      (r) => r.use === 'kernel-text',
      () => 'kernel text not executable in the image mapping',
    ),
  },
  {
    id: 'P6',
    family: 'P',
    title: 'No user-accessible kernel-half mapping',
    statement: 'No leaf in the upper (kernel) canonical half is user-accessible.',
    rationale:
      'A U=1 kernel-half entry exposes kernel memory to user mode directly, no side channel needed: the "Total ' +
      'Meltdown" bug (CVE-2018-1038) was one user bit on a top-level kernel entry. Linux\'s kernel protections ' +
      '(PAGE_KERNEL*) never carry _PAGE_USER. The one historical exception is the legacy vsyscall page at ' +
      '0xffffffffff600000, mapped user-readable with vsyscall=emulate; since CONFIG_LEGACY_VSYSCALL_XONLY (v5.3, the ' +
      'default) it is not mapped at all, and ptspec reports it where an old kernel\'s dump shows it.',
    references: ['CVE-2018-1038', 'arch/x86/include/asm/pgtable_types.h __PAGE_KERNEL', 'arch/x86/entry/vsyscall/vsyscall_64.c map_vsyscall'],
    check: leafCheck((state) => {
      const kernelHalf = upperHalfStart(state.config.levels);
      return (leaf) => (leaf.vpn >= kernelHalf && leaf.prot.user ? 'kernel-half page accessible to user mode' : undefined);
    }),
  },
  {
    id: 'P7',
    family: 'P',
    title: 'Frames removed from the direct map stay unmapped in the kernel half',
    statement: 'No kernel-half leaf maps a frame marked noDirectMap.',
    rationale:
      'secretmem and guest_memfd remove pages from the direct map (set_direct_map_invalid_noflush) so the kernel itself ' +
      'cannot read them by accident or speculation; any other kernel-half mapping of such a frame (vmap, a stale huge ' +
      'direct-map leaf) defeats the removal.',
    references: ['mm/secretmem.c secretmem_fault', 'virt/kvm/guest_memfd.c', 'arch/x86/mm/pat/set_memory.c set_direct_map_invalid_noflush'],
    check: frameUseCheck(
      (leaf, _root, state) => isKernelHalf(leaf.vpn, state.config.levels),
      (r) => r.noDirectMap,
      (r) => `${r.use} frame removed from the direct map is mapped in the kernel half`,
    ),
  },
];
