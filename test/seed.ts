/**
 * Fixed seeds for property tests. CI runs every property with the seed below (or
 * PTSPEC_SEED when set, to reproduce a failure seen elsewhere); fast-check prints the
 * seed and path of any failure, and the message below says how to replay it.
 */
import type { Parameters } from 'fast-check';

export const SEED = process.env['PTSPEC_SEED'] === undefined ? 0x5eed : Number(process.env['PTSPEC_SEED']);

export function fcParams<T>(extra: Parameters<T> = {}): Parameters<T> {
  return { seed: SEED, numRuns: 200, ...extra };
}
