/**
 * What the operation figures run on: the default scenario (`x86-64`, spec/x86-64.ts)
 * booted without checks, and a stretch of it nothing else uses: 1 TiB into the vmalloc
 * area (the boot's areas, the clients' and the workload's all sit in its first few GiB)
 * backed by 2 GiB of frames handed out by the page allocator first (strict refuses to map
 * a free frame anywhere but the direct map, D4).
 */
import { PAGES, kernelLayout, type Pfn, type Vpn } from '../spec/address.ts';
import { applyCommand } from '../spec/commands.ts';
import type { Result } from '../spec/errors.ts';
import { DEFAULT_SCENARIO, scenarioNamed, type Scenario } from '../spec/scenario.ts';
import type { PageTableSystem } from '../spec/system.ts';

export function defaultScenario(): Scenario {
  return scenarioNamed(DEFAULT_SCENARIO)!();
}

/** The value of `r`, or an error naming `what` failed and why: a benchmark of a failing operation measures nothing. */
export function must<T>(r: Result<T>, what: string): T {
  if (!r.ok) throw new Error(`${what} failed: ${r.error.message}`);
  return r.value;
}

/** A system built by `make` and booted through `scenario`'s boot, every step required to succeed. */
export function booted<S extends PageTableSystem>(scenario: Scenario, make: () => S): S {
  const sys = make();
  for (const [i, c] of scenario.boot.entries()) must(applyCommand(sys, c), `${scenario.name} boot step ${i} (${c.op})`);
  return sys;
}

/** The bench's own stretch: `vpn` the first page of 1 TiB of vmalloc space, `pfn` the first of `FRAME_PAGES` data frames. */
export interface Area {
  readonly vpn: Vpn;
  readonly pfn: Pfn;
}

/** 2 GiB: the frames behind two 1G leaves, the largest mapping a figure makes. */
export const FRAME_PAGES = 2 * PAGES['1G'];

/**
 * The stretch of `scenario` (an x86-64 scenario) no figure shares with the boot or the
 * generator: 1 TiB into the vmalloc area, and the frames from 8 GiB up (free RAM on every
 * x86-64 scenario, `ramGiB` ≥ 16). `sys.allocFrames` makes the frames data.
 */
export function benchArea(scenario: Scenario, sys: PageTableSystem): Area {
  const area = { vpn: kernelLayout(scenario.config.levels).vmallocStart + 1024 * PAGES['1G'], pfn: 8 * PAGES['1G'] };
  must(sys.allocFrames(area.pfn, FRAME_PAGES), `alloc_pages of ${FRAME_PAGES} frames at pfn ${area.pfn.toString(16)}`);
  return area;
}
