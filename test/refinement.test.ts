/**
 * The impl refines the model: 50 random command sequences of up to 200 commands from
 * the built-in kernel scenario with hotplug space above its RAM (so that memory hotplug
 * succeeds too), each run on both, with outcomes, abstract states, the
 * invariant catalogue and the concrete tables checked after every command (incrementally)
 * and in full every 50 commands and at the end. Fixed seed (test/seed.ts); a failure
 * prints the readable report with seed, path and the shrunk command list. The long runs
 * (thousands of sequences, also on the small table pool) are the seeded campaigns of
 * .ci/run: npm test stays fast enough to run before every commit.
 */
import { describe, expect, it } from 'vitest';
import { kernelScenario, ptiBoot } from '../spec/scenario.ts';
import { isIsolationOp } from '../spec/commands.ts';
import { OPERATIONS, OPS } from '../spec/operations.ts';
import { builtinTarget } from '../fuzz/defaults.ts';
import { runFuzz } from '../fuzz/property.ts';
import { formatFailure } from '../fuzz/report.ts';
import { hotplugScenario } from './hotplug-scenario.ts';
import { fcParams } from './seed.ts';

const scenario = kernelScenario();
/** The kernel scenario with hotplug space above its RAM, where memory hotplug can succeed. */
const hotplugged = hotplugScenario();
const RUNS = 50;
const ISOLATION_RUNS = 15;

describe('refinement: impl against model', () => {
  it(`holds for ${RUNS} sequences of up to 200 commands`, () => {
    // Six in ten sequences are short (up to 25 commands), so many boots and short edits
    // run in little time; the rest spread over every length up to 200, with a full check
    // every 50 commands and at the end.
    // With the client operations, as campaigns run the built-in systems.
    const r = runFuzz({ ...builtinTarget(hotplugged), clients: true, maxCommands: 200, shortFraction: 0.6, fullCheckEvery: 50 }, fcParams({ numRuns: RUNS }));
    if (r.failed) {
      expect.fail(formatFailure(r.failure!, { seed: r.seed, ...(r.path === undefined ? {} : { path: r.path }), commands: r.commands!, scenario: scenario.name }));
    }
    expect(r.numRuns).toBe(RUNS);
    const cov = r.coverage;
    expect(cov.sequences).toBe(RUNS);
    // The run exercised what it claims to check: every core and client operation succeeded
    // and (but the ones that cannot fail) was refused, invariants ran, every leaf size and
    // the fault kinds were hit.
    for (const op of OPS.filter((o) => !isIsolationOp(o) && OPERATIONS[o].alsoIsolation !== true)) {
      expect(cov.outcomes[op]?.['ok'] ?? 0, `${op} ok`).toBeGreaterThan(0);
      if (op !== 'flushAll' && op !== 'vmUnmapAliases') expect(Object.keys(cov.outcomes[op] ?? {}).length, `${op} errors`).toBeGreaterThan(1);
    }
    for (const errno of ['EINVAL', 'EEXIST', 'ENOENT', 'EPERM']) {
      expect(Object.values(cov.outcomes).some((o) => (o[errno] ?? 0) > 0), errno).toBe(true);
    }
    expect(cov.fullChecks).toBeGreaterThanOrEqual(RUNS);
    expect(Object.keys(cov.invariants).length).toBeGreaterThan(20);
    for (const size of ['4K', '2M', '1G'] as const) expect(cov.pageSizes[size], size).toBeGreaterThan(0);
    for (const a of ['tlb', 'walk', 'not-present', 'protection']) expect(cov.access[a] ?? 0, a).toBeGreaterThan(0);
  });

  it(`holds with the isolation capability for ${ISOLATION_RUNS} sequences, under both profiles`, () => {
    // Processes, KPTI clones, LDTs and ASI mappings among the core operations, from the
    // scenario's isolation boot (pti_init's clones), as campaigns fuzz the built-in impl.
    const booted = { ...scenario, boot: ptiBoot(scenario) };
    for (const profile of ['strict', 'linux'] as const) {
      const r = runFuzz({ ...builtinTarget(booted), isolation: true, clients: true, profile, maxCommands: 100, shortFraction: 0.5, fullCheckEvery: 50 }, fcParams({ numRuns: ISOLATION_RUNS }));
      if (r.failed) {
        expect.fail(formatFailure(r.failure!, { seed: r.seed, ...(r.path === undefined ? {} : { path: r.path }), commands: r.commands!, scenario: scenario.name }));
      }
      for (const op of OPS.filter((o) => isIsolationOp(o) && o !== 'exitProcess')) expect(r.coverage.outcomes[op]?.['ok'] ?? 0, `${profile} ${op} ok`).toBeGreaterThan(0);
    }
  });
});
