/**
 * The fixture dumps of the `ptspec check` tests, parsed and checked as one boot
 * (io/ptdump/analyse.ts). No vitest here: the test files that use it import it.
 */
import { readFileSync } from 'node:fs';
import { checkDumps, type CheckOptions, type CheckReport, type DumpReport } from '../io/ptdump/analyse.ts';
import { parsePtdump } from '../io/ptdump/parse.ts';

/** The real dumps (copies of kernel output) and ptspec's own hand-made ones. */
export const KERNEL = new URL('./fixtures/kernel/', import.meta.url);
export const OWN = new URL('./fixtures/ptdump/', import.meta.url);

/** `ptspec check` on these files: [folder, name, whether it is a KPTI user copy]. */
export function check(files: readonly [URL, string, boolean?][], opts: CheckOptions = {}): CheckReport {
  return checkDumps(
    files.map(([dir, name, user]) => {
      const r = parsePtdump(readFileSync(new URL(name, dir), 'utf8'));
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      return { file: name, parsed: r.value, user: user ?? false };
    }),
    opts,
  );
}

export const dumps = (r: CheckReport): DumpReport[] => r.files.flatMap((f) => f.dumps);
