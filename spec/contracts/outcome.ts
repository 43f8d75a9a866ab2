/**
 * The errors of the state stages every operation shares (after the argument checks come
 * the state's refusals, then policy EPERM, then ENOMEM), built one way so model and impl
 * name the same argument: the outcomes each operation can have, the argument each EPERM
 * names, the strict policy and its EPERM. Beside them the rules every outcome follows
 * (OUTCOME_RULES: the order of errors and what each names, a failure changes nothing, the
 * frame condition).
 */
import type { Op } from '../commands.ts';
import { OPERATIONS, OPS } from '../operations.ts';
import type { Errno, PtError } from '../errors.ts';
import type { ContractRule } from './contract.ts';

/**
 * The outcomes each operation can have under these contracts (the operation table's
 * `outcomes`), so a campaign can say which ones it never exercised.
 */
export const POSSIBLE_OUTCOMES: Readonly<Partial<Record<Op, readonly ('ok' | Errno)[]>>> = Object.fromEntries(
  OPS.map((op) => [op, OPERATIONS[op].outcomes]),
);

export type MutatingOp =
  | 'map' | 'unmap' | 'protect' | 'setDirectMapInvalid' | 'setDirectMapDefault' | 'split' | 'collapse' | 'allocFrames' | 'freeFrames'
  | 'ptiClone' | 'asiMap' | 'mapUser' | 'setLdt'
  | 'vmalloc' | 'vfree' | 'kmapLocal' | 'mermapGet' | 'allocUnmapped' | 'applyToPageRange';

/** The argument each mutating core operation's EPERM names (the operation table's `policyArg`). Trusted. */
export const POLICY_ARG = Object.fromEntries(
  OPS.flatMap((op) => {
    const arg = OPERATIONS[op].policyArg;
    return arg === undefined ? [] : [[op, arg]];
  }),
) as Readonly<Record<MutatingOp, string>>;

/**
 * The strict policy: the invariants of the catalogue that the strict profile refuses to
 * break. A mutating operation whose result would break one fails with EPERM naming the
 * first of them, in this order, that the result breaks (several may break at once; both
 * model and impl must report the same one), and changes nothing. Every other invariant
 * holds in every reachable state by construction, not by refusal. The names are the
 * catalogue's (a test holds them equal).
 *
 * Trusted: shared by model and impl as the contract's vocabulary; each decides on its own
 * whether an invariant would break.
 */
export const STRICT_POLICY: readonly { readonly id: string; readonly name: string }[] = [
  { id: 'P1', name: 'no_leaf_writable_and_executable' },
  { id: 'P2', name: 'no_frame_writable_and_executable_through_two_aliases' },
  { id: 'P3', name: 'no_kernel_text_frame_writable' },
  { id: 'P4', name: 'no_kernel_rodata_frame_writable' },
  { id: 'P5', name: 'kernel_text_executable_in_image_mapping' },
  { id: 'S12', name: 'page_table_frames_mapped_only_by_their_direct_map_page' },
  { id: 'P6', name: 'no_user_accessible_kernel_half_leaf' },
  { id: 'P7', name: 'no_kernel_half_mapping_of_frames_removed_from_direct_map' },
  // The rules added with the linear maps come after the older ones, so a request refused
  // before is refused for the same reason: a RW+X direct-map page stays P1, a RO+X one
  // with a writable alias stays P2. Among them, the wrong translations first (a
  // direct-map or high-map leaf that maps another frame than its address says: every
  // other rule's "direct-map alias" and "image mapping" presume these two), then an
  // executable direct map that no W^X rule above caught, and last a second memory type,
  // which corrupts caching but grants no access.
  { id: 'D1', name: 'direct_map_maps_each_page_to_its_own_frame' },
  { id: 'D2', name: 'high_map_maps_each_page_to_its_own_frame' },
  { id: 'D3', name: 'no_executable_leaf_in_direct_map' },
  // A direct-map page over no memory (an e820 hole, hotplug space not added): after the
  // linear rules, since a leaf the direct map should not have at all is also what D1 names.
  { id: 'D8', name: 'direct_map_maps_no_absent_frame' },
  { id: 'T5', name: 'no_frame_mapped_with_two_memory_types' },
  // Last so that no request refused before changes its reason.
  { id: 'D4', name: 'free_frames_mapped_only_by_their_direct_map_page' },
  // The frame lifecycle (freeFrames, and setDirectMapInvalid of a free frame): a freed
  // frame is back in the direct map and cached nowhere else.
  { id: 'D6', name: 'frames_restored_to_the_direct_map_before_freed' },
  { id: 'D7', name: 'free_frames_cached_only_at_their_direct_map_page' },
  // Isolation (spec/contracts/isolation.ts): after every older rule, so a request refused
  // before keeps its reason; the allowlist before the identity of clones, sensitive frames
  // before stale restricted copies.
  { id: 'K2', name: 'user_copies_map_only_the_pti_allowlist' },
  { id: 'K3', name: 'global_translations_are_the_same_in_every_root' },
  { id: 'A1', name: 'restricted_roots_map_no_sensitive_frame' },
  { id: 'A2', name: 'restricted_mappings_identical_in_the_unrestricted_root' },
  // The clients (spec/contracts/clients.ts), after every older rule so that a request
  // refused before keeps its reason. Only these two can be broken by a request that the
  // strict profile must refuse rather than avoid: C1 by freeing a frame of a stale mermap
  // allocation (freeFrames, vfree), C7 by putting a page of an unmapped pageblock back in
  // the direct map (setDirectMapDefault, protect with present, map); the other C rules
  // hold by construction of the client operations. C1 first: a use after free is the
  // worse break, and a free never breaks C7 (a freed pool frame stays out of the map).
  { id: 'C1', name: 'no_frame_freed_while_a_tlb_may_still_translate_to_it' },
  { id: 'C7', name: 'unmapped_pageblocks_are_absent_from_the_direct_map' },
];

export const OUTCOME_RULES: readonly ContractRule[] = [
  {
    id: 'errors',
    title: 'Errors are part of the contract',
    paragraphs: [
      'An error is its errno, its `arg` and, for EPERM, its `invariant`; refinement compares exactly these (the message is for people). First failure wins, in the order each contract lists its preconditions:',
      '1. **EINVAL**, naming the first argument whose validator fails: for the core operations in the order root → vpn → pages → pfn/count → prot/change → maxPage/size, with cpu first where there is one (access, flushLocal) and kind, mode last (access); the isolation and client operations in their contracts\' order.',
      '2. **The state\'s refusals**: EEXIST / ENOENT / EBUSY, naming `vpn` for the core operations (`pfn` for `set_direct_map_*`, allocFrames and freeFrames): the state refuses the range (already mapped / not mapped; for frames: not free to allocate, EBUSY, or not a data frame to free, ENOENT); linux protect\'s memtype conflict is EBUSY naming `change`. Some refuse a state with EINVAL here (split of a 4K leaf, collapse of a block that cannot collapse, kunmapLocal of a slot not on top, applyToPageRange over a huge leaf); every contract lists its own.',
      `3. **EPERM**, naming the argument that carries the refused intent (\`POLICY_ARG\`, the operation table\'s \`policyArg\`: \`prot\` for map, \`change\` for protect, \`pfn\` for \`set_direct_map_*\`, \`vpn\` for unmap, split and collapse, and each contract\'s own) and the first invariant of \`STRICT_POLICY\` (${STRICT_POLICY.map((p) => p.id).join(', ')}, in that order) the result would break; the message says where.`,
      '4. **ENOMEM**, naming `tablePool`: the tables the result needs (the radix footprint of its leaves plus every table pending free: spec/footprint.ts, *Deferred table frees*) exceed `config.tablePool.count`.',
      'A failed operation changes nothing: not a leaf, frame, TLB entry, obligation or table (the linux profile is not atomic where its contracts say so).',
    ],
    sources: [],
  },
  {
    id: 'frame-condition',
    title: 'What a contract does not name',
    paragraphs: [
      'What a postcondition does not name stays as it was (the frame condition): init_mm\'s leaves outside the ranges it names (widened to the whole leaves it splits), the set of roots, and the frames, TLB entries, obligations and table counts it does not mention.',
    ],
    sources: [],
  },
];

const POLICY_NAME: ReadonlyMap<string, string> = new Map(STRICT_POLICY.map((p) => [p.id, p.name]));

/**
 * The EPERM of `op` for a result that breaks strict-policy invariant `id`; `where` says
 * where, as a person reads it ("at frame 0x1a2b3", "at 0xffffc90000001000 in root 0").
 * Trusted: it formats, it decides nothing.
 */
export function policyError(op: MutatingOp, id: string, where: string): PtError {
  const name = POLICY_NAME.get(id);
  if (name === undefined) throw new RangeError(`${id} is not a strict-policy invariant`);
  return { errno: 'EPERM', arg: POLICY_ARG[op], invariant: id, message: `EPERM: ${POLICY_ARG[op]}: would break ${id} ${name} ${where}` };
}
