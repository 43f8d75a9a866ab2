/**
 * What every capability of the impl (isolation.ts, clients.ts) reads of the system it is
 * part of: the tables, the machine, the profile, the frame facts, the TLBs and the
 * injected bug. Each capability's host adds the system's operations it calls.
 */
import type { SystemConfig } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import type { MutantName } from './mutants.ts';
import type { FrameFacts } from './policy.ts';
import type { Radix } from './radix.ts';
import type { Tlbs } from './tlb.ts';

export interface SystemParts {
  readonly radix: Radix;
  readonly config: SystemConfig;
  readonly profile: Profile;
  readonly facts: FrameFacts;
  readonly tlbs: Tlbs;
  /** The injected bug, if any (mutants.ts): a capability's own mutants branch on it. */
  readonly mutant: MutantName | undefined;
}
