/**
 * A failure at boot is blamed on the boot step that breaks, and ends a campaign at once:
 * every run starts with the boot, so no run is started, and the summary says which boot
 * command failed. The module under test maps nothing on its third map, the scenario's
 * third boot command.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kernelScenario, ptiBoot } from '../spec/scenario.ts';
import { runTrace } from '../fuzz/check.ts';
import { builtinTarget } from '../fuzz/defaults.ts';
import { formatCommand } from '../fuzz/format.ts';
import createBrokenBoot from './fixtures/user-impl-boot-fails.ts';
import { ptspec } from './cli.ts';

const FIXTURE = 'test/fixtures/user-impl-boot-fails.ts';

describe('a boot that fails on the impl', () => {
  it('runTrace names the first bad boot step, not the last one', () => {
    const scenario = kernelScenario();
    const f = runTrace({ ...builtinTarget(scenario), makeImpl: createBrokenBoot, checkTables: null, commands: [] }).failure;
    expect(f).toMatchObject({ phase: 'boot', step: 2, command: scenario.boot[2] });
    expect(f!.detail).toMatch(/^the impl breaks map's postcondition map\.leaves/);
  });

  it('a campaign stops before its first run and reports the boot step with its command', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ptspec-boot-'));
    const r = await ptspec('fuzz', '--impl', FIXTURE, '--scenario', 'kernel', '--runs', '50', '--jobs', '2', '--seed', '1', '--out', out);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("Ran 0 random command sequences (0 commands)");
    expect(r.stdout).toContain("the scenario's boot failed on the target, so no run was started");
    // The module wraps the built-in impl, so it offers isolation: the campaign boots as PTI does (non-global).
    expect(r.stdout).toContain(`postcondition on boot step 2 (${formatCommand(ptiBoot(kernelScenario())[2]!)})`);
    expect(r.stdout).toContain('found at boot, before any run');
    expect(r.stdout).not.toContain('Reproduce:');
    // No coverage table of zeros.
    expect(r.stdout).not.toContain('How often each operation');
    const files = readdirSync(out).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(1);
    const replay = await ptspec('replay', join(out, files[0]!), '--trust-module');
    expect(replay.code).toBe(1);
    expect(replay.stdout).toMatch(/ {2}boot 2 {2}map .*<-- FAILS HERE/);
  }, 60_000);
});
