/**
 * What a person wants from a dump at a glance: how much is mapped, with which page
 * sizes and permissions, and the same per marker region, with the W+X pages of each.
 */
import { isWx, permissionClass } from './flags.ts';
import { dumpRanges, type Dump, type DumpLevel } from './types.ts';

export interface SectionSummary {
  readonly name: string | null;
  readonly firstLine: number | null;
  readonly lastLine: number | null;
  readonly ranges: number;
  readonly mappedBytes: bigint;
  readonly wxPages: number;
}

export interface DumpSummary {
  readonly ranges: number;
  readonly mappedBytes: bigint;
  /** Mapped bytes by the level of the leaf (pte = 4K pages, pmd = 2M, pud = 1G). */
  readonly byLevel: ReadonlyMap<DumpLevel, bigint>;
  /** Mapped bytes by permission class (`RW NX`, `ro x`, `USR RW NX`, …). */
  readonly byPermission: ReadonlyMap<string, bigint>;
  readonly sections: readonly SectionSummary[];
}

const add = <K>(m: Map<K, bigint>, k: K, v: bigint): void => {
  m.set(k, (m.get(k) ?? 0n) + v);
};

export function summarize(d: Dump): DumpSummary {
  const byLevel = new Map<DumpLevel, bigint>();
  const byPermission = new Map<string, bigint>();
  let mapped = 0n;
  for (const r of dumpRanges(d)) {
    if (r.flags === null) continue;
    const bytes = BigInt(r.end - r.start) * 4096n;
    mapped += bytes;
    add(byLevel, r.level, bytes);
    add(byPermission, permissionClass(r.flags), bytes);
  }
  const sections = d.sections.map((s): SectionSummary => ({
    name: s.name,
    firstLine: s.line ?? s.ranges[0]?.line ?? null,
    lastLine: s.ranges.at(-1)?.line ?? s.line,
    ranges: s.ranges.length,
    mappedBytes: s.ranges.reduce((n, r) => (r.flags === null ? n : n + BigInt(r.end - r.start) * 4096n), 0n),
    wxPages: s.ranges.reduce((n, r) => (isWx(r.flags) ? n + (r.end - r.start) : n), 0),
  }));
  return { ranges: dumpRanges(d).length, mappedBytes: mapped, byLevel, byPermission, sections };
}
