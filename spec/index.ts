/**
 * The specification as one module, for adapters (`import … from 'ptspec/spec'`): the
 * address vocabulary, the abstract state, the PageTableSystem interface, commands,
 * scenarios, the operation contracts and the invariant definitions (the fast checks and
 * `checkAll` are `ptspec/checker`).
 */
export * from './address.ts';
export * from './state.ts';
export * from './errors.ts';
export * from './system.ts';
export * from './commands.ts';
export * from './operations.ts';
export * from './invariant.ts';
export * from './scenario.ts';
export * from './footprint.ts';
export * from './contracts/index.ts';
export * from './invariants/index.ts';
// The isolation capability's trusted geometry (spec/README.md, "Trusted exports"; not rootView or heldMirrors, the definitions).
export {
  PTI_USER_ROOT, ASI_GLOBAL_ROOT, processRootIds, pidOfRoot, slotPages, LDT_SLOT_PAGES, ldtRemap, ldtSlotVpn, LDT_PROT, mirrorsOf, ptiAllowlist,
  type PageRange, type Mirror,
} from './roots.ts';
