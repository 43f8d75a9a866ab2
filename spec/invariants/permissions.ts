/**
 * P: permissions. What the kernel's W^X machinery (CONFIG_DEBUG_WX, CPA's
 * static_protections and verify_rwx, mark_rodata_ro) promises, stated over effective
 * permissions and over *all* aliases of a frame, which the kernel only partly checks:
 * its W+X scan looks at one mapping at a time.
 */
import { isKernelHalf, vpnToHex } from '../address.ts';
import type { InvariantDefinition, Witness } from '../invariant.ts';
import type { AbstractRoot, Leaf } from '../state.ts';
import {
  KERNEL_IMAGE_MAP, everyLeaf, everyMappedRun, framesText, framesWitness, isExecutable, isProcessUserLeaf, isWritable, leafFrames, pageOfFrame, pagesOf, sharedFrames,
} from './terms.ts';
import { inMermapRegion } from './clients.ts';

export const PERMISSIONS: readonly InvariantDefinition[] = [
  {
    id: 'P1',
    name: 'no_leaf_writable_and_executable',
    family: 'P',
    title: 'No W+X mapping',
    statement: 'No leaf is both writable and executable (by the kernel or by user mode), but in the user half of a process\'s roots (a JIT\'s RWX mmap, which CONFIG_DEBUG_WX never looks at).',
    rationale:
      'A writable and executable page lets any memory-corruption bug become code execution. The kernel reports one in two ' +
      'places and refuses it in none. CPA\'s verify_rwx warns once per boot ("CPA detected W^X violation") when a change that ' +
      'flips RW or NX leaves a page RW and executable through the whole walk, and then returns the requested protection ' +
      'anyway. With CONFIG_DEBUG_WX, after mark_rodata_ro and only on a CPU with NX, ptdump_walk_pgd_level_checkwx walks ' +
      'init_mm\'s tables and ptdump_walk_user_pgd_level_checkwx the PTI user copy (no other page table: efi_mm\'s is ' +
      'dumped, never checked); note_wx counts the pages whose effective protection (RW ANDed, NX ORed over the walk) is RW ' +
      'without NX, warns once ("Found insecure W+X mapping") and the walk ends with "Checked W+X mappings: FAILED, N W+X ' +
      'pages found".',
    references: [
      'arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) verify_rwx',
      'arch/x86/mm/dump_pagetables.c (Kingxukai/linux 0291023e) note_wx, note_page, ptdump_walk_pgd_level_checkwx, ptdump_walk_user_pgd_level_checkwx',
      'CONFIG_DEBUG_WX',
    ],
    kernel: 'warns',
    kernelNote:
      'Reported, never refused: verify_rwx warns once and applies the W+X change, and the CONFIG_DEBUG_WX scan runs once ' +
      'after mark_rodata_ro, over init_mm and its PTI user copy only, and not at all without NX.',
    holds: (state) =>
      everyLeaf(state, (leaf, root) =>
        !isProcessUserLeaf(leaf, root, state.config.levels) && isWritable(leaf.prot) && isExecutable(leaf.prot) ? `W+X: ${pagesOf(leaf)} pages writable and executable` : undefined),
  },
  {
    id: 'P2',
    name: 'no_frame_writable_and_executable_through_two_aliases',
    family: 'P',
    title: 'No frame writable through one alias and executable through another',
    statement:
      'No frame is mapped writable by one leaf and executable by a different leaf, in any roots; the executing leaf counts ' +
      'unless it is in the user half of a process\'s roots.',
    rationale:
      'Per-mapping W^X is worthless if a frame is writable through one mapping and executable through another: ' +
      'write the code through one, run it through the other. The kernel handles aliases case by case: ' +
      'cpa_process_alias carries every change but NX from a primary outside the direct map to the direct-map alias, and ' +
      'for image frames to the high-map alias, but never finds a vmalloc alias; mark_rodata_ro makes the direct-map alias ' +
      'of text and rodata read-only that way (protect_rodata catches every alias by pfn), and commit c40a56a7818c had to ' +
      'unmap freed kernel-image holes from the high alias because a stale alias of a reused frame escapes all such rules. ' +
      'No kernel check states the rule for all aliases; the W+X scan looks at one mapping at a time. A process executing a ' +
      'frame the kernel can write is every executable file page (the page cache stays writable through the direct map), ' +
      'so a process\'s user half is no executing side; it is a writing side, since a user-writable alias of a frame the ' +
      'kernel executes hands the process the kernel\'s code (ret2dir).',
    references: [
      'arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) cpa_process_alias',
      'arch/x86/mm/init_64.c (gregkh/linux 6bf94737) mark_rodata_ro',
      'commit c40a56a7818c (x86/mm/init: Remove freed kernel image areas from alias mapping)',
    ],
    kernel: 'strict-only',
    kernelNote:
      'The kernel handles some aliases case by case (cpa_process_alias for the direct map and the high map, mark_rodata_ro, ' +
      'protect_rodata) but no check states the rule for all of them, and none reaches a vmalloc alias.',
    holds(state) {
      // One witness per pair: the writable leaf's pages over the frames it shares with an
      // executable one. "Different" is another place in the roots, so the same kernel-half
      // leaf in two roots is two ways to its frames.
      const executes = (root: AbstractRoot, leaf: Leaf) => isExecutable(leaf.prot) && !isProcessUserLeaf(leaf, root, state.config.levels);
      const at = (root: AbstractRoot, leaf: Leaf, pfn: number) => `root ${root.id} at ${vpnToHex(pageOfFrame(leaf, pfn))}`;
      const out: Witness[] = [];
      state.roots.forEach((wRoot, wr) => {
        wRoot.leaves.forEach((w, wi) => {
          if (!isWritable(w.prot)) return;
          state.roots.forEach((xRoot, xr) => {
            xRoot.leaves.forEach((x, xi) => {
              const shared = executes(xRoot, x) && !(wr === xr && wi === xi) ? sharedFrames(leafFrames(w), leafFrames(x)) : undefined;
              if (shared === undefined) return;
              const detail = `${framesText(shared.pfn, shared.count)} writable through ${at(wRoot, w, shared.pfn)} and executable through ${at(xRoot, x, shared.pfn)}`;
              out.push(framesWitness(wRoot, w, shared, detail));
            });
          });
        });
      });
      return out;
    },
  },
  {
    id: 'P3',
    name: 'no_kernel_text_frame_writable',
    family: 'P',
    title: 'Kernel text never writable',
    statement: 'No leaf that maps a kernel-text frame is writable.',
    rationale:
      'Writable kernel text is code injection without any W+X bug. mark_rodata_ro makes it read-only: set_memory_ro over ' +
      '[_text, __end_rodata_hpage_align) of the image mapping, which cpa_process_alias carries to the direct-map alias. The ' +
      'only sanctioned writer is text_poke, through a temporary mapping in poking_mm, outside these tables. CPA does not ' +
      'keep it read-only: static_protections applies protect_kernel_text_ro ("Text RO") only to a request that does not ' +
      'cover a whole aligned large page, and that rule masks RW only while the mapping at the request\'s start is a large ' +
      'page (a small mapping has no large page left to preserve). So a 4K-mapped text page, or a large one ' +
      'that a partial request splits first (__change_page_attr retries at 4K after split_large_page), can be made RW by ' +
      'set_memory_rw, and a whole aligned large page too; verify_rwx then warns, since the page stays executable.',
    references: [
      'arch/x86/mm/init_64.c (gregkh/linux 6bf94737) mark_rodata_ro',
      'arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) static_protections, protect_kernel_text_ro, __should_split_large_page, __change_page_attr, verify_rwx',
      'arch/x86/kernel/alternative.c text_poke',
    ],
    kernel: 'warns',
    kernelNote:
      'set_memory_rw on kernel text succeeds (Text RO yields to a 4K mapping and to a whole aligned large page) and ' +
      'cpa_process_alias makes the direct-map alias writable with it; the only report is verify_rwx\'s one-time W^X warning ' +
      'on the still executable image mapping, and CONFIG_DEBUG_WX\'s scan if it runs after.',
    holds: (state) => everyMappedRun(state, (run) => run.use === 'kernel-text', (leaf) => isWritable(leaf.prot), () => 'kernel text writable'),
  },
  {
    id: 'P4',
    name: 'no_kernel_rodata_frame_writable',
    family: 'P',
    title: 'Kernel rodata never writable through any alias',
    statement: 'No leaf that maps a kernel-rodata frame is writable.',
    rationale:
      'CPA\'s protect_rodata forbids RW by pfn, "Using the pfn catches all aliases", once kernel_set_to_readonly is set ' +
      'by mark_rodata_ro: read-only data (including __ro_after_init) is only read-only if no alias writes it.',
    references: ['arch/x86/mm/pat/set_memory.c protect_rodata, static_protections', 'arch/x86/mm/init_64.c mark_rodata_ro'],
    kernel: 'enforces',
    kernelNote: 'After mark_rodata_ro, CPA\'s protect_rodata silently masks RW by pfn, so every alias a set_memory_* call reaches stays read-only.',
    holds: (state) => everyMappedRun(state, (run) => run.use === 'kernel-rodata', (leaf) => isWritable(leaf.prot), () => 'kernel rodata writable'),
  },
  {
    id: 'P5',
    name: 'kernel_text_executable_in_image_mapping',
    family: 'P',
    title: 'Kernel text executable in the image mapping',
    statement: 'Every page at __START_KERNEL_map + pfn that maps its own kernel-text frame pfn is kernel-executable.',
    rationale:
      'The kernel executes out of the high image mapping; CPA\'s protect_kernel_text forbids NX on _text.._etext there ' +
      '("Text NX"), since a set_memory_nx over kernel text would crash the machine on the next instruction fetch. The ' +
      'direct-map alias of text is not protected this way and stays NX.',
    references: ['arch/x86/mm/pat/set_memory.c protect_kernel_text', 'arch/x86/kernel/vmlinux.lds.S _text, _etext'],
    kernel: 'enforces',
    kernelNote: 'CPA\'s protect_kernel_text silently masks NX on _text.._etext in the image mapping ("Text NX").',
    // A leaf maps each frame pfn at __START_KERNEL_map + pfn exactly when its vpn is __START_KERNEL_map + its pfn.
    holds: (state) =>
      everyMappedRun(
        state,
        (run) => run.use === 'kernel-text',
        (leaf) => leaf.vpn - leaf.pfn === KERNEL_IMAGE_MAP && !leaf.prot.execKernel,
        () => 'kernel text not executable in the image mapping',
      ),
  },
  {
    id: 'P6',
    name: 'no_user_accessible_kernel_half_leaf',
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
    kernel: 'guarantees',
    kernelNote: 'Kernel protections (PAGE_KERNEL*) never carry _PAGE_USER; the exception is the legacy vsyscall page under vsyscall=emulate, unmapped by default since v5.3.',
    holds: (state) =>
      everyLeaf(state, (leaf) => (isKernelHalf(leaf.vpn, state.config.levels) && leaf.prot.user ? 'kernel-half page accessible to user mode' : undefined)),
  },
  {
    id: 'P7',
    name: 'no_kernel_half_mapping_of_frames_removed_from_direct_map',
    family: 'P',
    title: 'Frames removed from the direct map stay unmapped in the kernel half',
    statement: 'No kernel-half leaf maps a frame marked noDirectMap, but a leaf inside the mermap region of a system with the clients capability.',
    rationale:
      'secretmem and guest_memfd remove pages from the direct map (set_direct_map_invalid_noflush) so the kernel itself ' +
      'cannot read them by accident or speculation; any other kernel-half mapping of such a frame (vmap, a stale huge ' +
      'direct-map leaf) defeats the removal. The mermap is the one sanctioned exception: it maps such pages briefly, ' +
      'non-global and for one CPU, so that the kernel can touch them without putting them back in the direct map ' +
      '(the v2 __GFP_UNMAPPED series zeroes its pages through it); C4 and C5 say what it must keep to.',
    references: [
      'mm/secretmem.c secretmem_fault', 'virt/kvm/guest_memfd.c', 'arch/x86/mm/pat/set_memory.c set_direct_map_invalid_noflush',
      'mm/mermap.c (linux-mm/linux-mm b7f5c72f) mermap_get',
    ],
    kernel: 'strict-only',
    kernelNote:
      'set_direct_map_invalid_noflush removes the direct-map page itself; none of the cited sources refuses another ' +
      'kernel-half mapping (a vmap) of the same frame, so only the strict profile holds the whole statement.',
    holds: (state) =>
      everyMappedRun(
        state,
        (run) => run.noDirectMap,
        (leaf) => isKernelHalf(leaf.vpn, state.config.levels) && !inMermapRegion(state, leaf),
        (run) => `${run.use} frame removed from the direct map is mapped in the kernel half`,
      ),
  },
];
