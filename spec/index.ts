/**
 * The specification as one module, for adapters (`import … from 'ptspec/spec'`): the
 * address vocabulary, the abstract state, the PageTableSystem interface, commands,
 * scenarios, the operation contracts and the invariant catalogue.
 */
export * from './address.ts';
export * from './state.ts';
export * from './errors.ts';
export * from './system.ts';
export * from './commands.ts';
export * from './invariant.ts';
export * from './scenario.ts';
export * from './policy.ts';
export * from './footprint.ts';
export * from './contracts/index.ts';
export * from './invariants/index.ts';
