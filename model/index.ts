/** The reference model (see README.md). */
import type { PageTableSystem, SystemSetup } from '../spec/system.ts';
import { Model } from './model.ts';

export { Model } from './model.ts';

export function createModel(setup: SystemSetup): PageTableSystem {
  return new Model(setup);
}
