/** The operation contracts: one module per operation family, gathered as data in contract.ts (see README.md). */
export * from './contract.ts';
export * from './args.ts';
export * from './map.ts';
export * from './unmap.ts';
export * from './protect.ts';
export * from './directmap.ts';
export * from './hugepage.ts';
export * from './access.ts';
export * from './flush.ts';
export * from './frames.ts';
export * from './isolation.ts';
export * from './outcome.ts';
export * from './post/index.ts';
export * from './linux.ts';
export * from './clients.ts';
export * from './hotplug.ts';
