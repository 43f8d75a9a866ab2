/**
 * `ptspec fuzz --profile-cpu DIR` (fuzz/profile.ts): the workers, where the checking runs,
 * write V8 CPU profiles, and the summary says where their time went. Node's own
 * `--cpu-prof` would profile only the idle main thread.
 */
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { profilesOf, summariseProfiles } from '../fuzz/profile.ts';
import { ptspec } from './cli.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ptspec-profile-'));

/** A profile of three functions: run (self 3 ms) calls model's map (self 5 ms) and V8 collects garbage (2 ms); 7 ms idle. */
function handMade(): object {
  const repo = 'file:///somewhere/ptspec';
  return {
    nodes: [
      { id: 1, callFrame: { functionName: '(root)', url: '' }, children: [2, 4, 5] },
      { id: 2, callFrame: { functionName: 'run', url: `${repo}/fuzz/check.ts` }, children: [3] },
      { id: 3, callFrame: { functionName: 'map', url: `${repo}/model/model.ts` } },
      { id: 4, callFrame: { functionName: '(garbage collector)', url: '' } },
      { id: 5, callFrame: { functionName: '(idle)', url: '' } },
    ],
    startTime: 0,
    endTime: 17_000,
    // A sample's time is the delta to the next sample (the last sample's, to endTime, is not in the file: 0 here).
    samples: [2, 3, 3, 4, 5, 2],
    timeDeltas: [0, 2000, 2500, 2500, 2000, 7000],
  };
}

describe('CPU profiles of the workers', () => {
  it('sums self time per function and per folder, leaving idle time out', () => {
    const dir = tmp();
    const file = join(dir, 'CPU.20260101.000000.42.2.001.cpuprofile');
    writeFileSync(file, JSON.stringify(handMade()));
    const s = summariseProfiles([file]);
    // run: 2.0 (to the first map sample) + 0 (last sample); map: 2.5 + 2.5; GC: 2.0; idle 7.0 left out.
    expect(s.busyMs).toBeCloseTo(9, 6);
    expect(s.byPlace).toEqual([{ place: 'model', ms: 5 }, { place: 'fuzz', ms: 2 }, { place: '(garbage collector)', ms: 2 }]);
    expect(s.top[0]).toEqual({ fn: 'map model/model.ts', place: 'model', ms: 5 });
  });

  it('takes only the profiles this process wrote since the campaign started', () => {
    const dir = tmp();
    for (const f of ['CPU.20260101.000000.42.2.001.cpuprofile', 'CPU.20260101.000000.43.2.001.cpuprofile', 'CPU.20260101.000000.42.3.002.cpuprofile', 'notes.txt']) writeFileSync(join(dir, f), '{}');
    expect(profilesOf(dir, 42, new Set(['CPU.20260101.000000.42.3.002.cpuprofile']))).toEqual([join(dir, 'CPU.20260101.000000.42.2.001.cpuprofile')]);
  });

  it('names a file that is no profile', () => {
    const dir = tmp();
    const file = join(dir, 'CPU.1.2.3.4.5.cpuprofile');
    writeFileSync(file, JSON.stringify({ nodes: 'none' }));
    expect(() => summariseProfiles([file])).toThrow(`${file}: not a V8 CPU profile: nodes: expected`);
  });

  it('profiles the worker of a --jobs 1 campaign', async () => {
    const dir = tmp();
    const r = await ptspec('fuzz', '--runs', '2', '--jobs', '1', '--seed', '3', '--max-commands', '10', '--out', join(dir, 'failures'), '--profile-cpu', join(dir, 'prof'));
    expect(r.code, r.stderr).toBe(0);
    const files = readdirSync(join(dir, 'prof')).filter((f) => f.endsWith('.cpuprofile'));
    expect(files.length).toBeGreaterThan(0);
    expect(r.stderr).toContain('CPU profile of the workers');
    // The worker ran the model and the impl: both show up among the places.
    expect(r.stderr).toMatch(/%\s+model\n/);
    expect(r.stderr).toMatch(/%\s+impl\n/);
  }, 60_000);

  it('refuses a directory it cannot create (exit 2)', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'file'), '');
    const r = await ptspec('fuzz', '--runs', '1', '--out', join(dir, 'failures'), '--profile-cpu', join(dir, 'file', 'prof'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--profile-cpu');
  });
});
