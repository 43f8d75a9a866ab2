import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commandsArb } from '../fuzz/arbitraries.ts';
import { kernelScenario } from '../spec/scenario.ts';
import { PAGE_KERNEL } from '../spec/state.ts';
import { CommandsC, decode } from '../io/trace.ts';
import { formatFailureFile, parseFailureFile, type FailureFile } from '../fuzz/failure-file.ts';
import { fcParams } from './seed.ts';

const sample: FailureFile = {
  format: 'ptspec-failure',
  version: 3,
  ptspecVersion: '0.1.0',
  key: 'mutant-split-drops-nx--kernel--refinement--leaves',
  scenario: 'kernel',
  target: { kind: 'mutant', mutant: 'split-drops-nx' },
  maxCommands: 100,
  fullCheckEvery: 50,
  campaignSeed: 7,
  runIndex: 3,
  seed: -123456,
  path: '0+4:0+1',
  commands: [
    { op: 'map', root: 0, vpn: 0xffffc9000000a, pfn: 4096, pages: 512, prot: PAGE_KERNEL, maxPage: '2M' },
    { op: 'protect', vpn: 0xffffc9000000a, pages: 3, change: { write: false, cache: 'WT' }, alias: true },
    { op: 'split', root: 0, vpn: 0xffff888001000 },
  ],
  failure: {
    kind: 'refinement',
    cause: 'leaves',
    phase: 'run',
    step: 2,
    check: 'full',
    command: { op: 'split', root: 0, vpn: 0xffff888001000 },
    detail: 'abstract(impl) differs from the model in root 0',
    witnesses: [{ root: 0, vpn: 0xffff888001000, pages: 1, frames: [{ pfn: 4096, count: 1 }], detail: 'NX lost' }],
    model: { outcome: 'ok' },
    impl: { outcome: 'ok' },
  },
  count: 2,
  firstSeen: '2026-11-26T10:00:00.000Z',
  lastSeen: '2026-11-26T10:05:00.000Z',
};

/** The sample as JSON with one field changed by `edit`. */
function edited(edit: (json: Record<string, any>) => void): string {
  const json = JSON.parse(formatFailureFile(sample)) as Record<string, any>;
  edit(json);
  return JSON.stringify(json);
}

function errorsOf(text: string): readonly string[] {
  const r = parseFailureFile(text);
  expect(r.ok).toBe(false);
  return r.ok ? [] : r.errors;
}

describe('failure file codec', () => {
  it('round-trips a failure file through its text form', () => {
    const r = parseFailureFile(formatFailureFile(sample));
    expect(r).toEqual({ ok: true, value: sample });
  });

  it('writes one command per line so a person can cut the trace by hand', () => {
    const text = formatFailureFile(sample);
    const lines = text.split('\n').filter((l) => l.trim().startsWith('{"op":'));
    expect(lines).toHaveLength(sample.commands.length);
  });

  it('round-trips every command the fuzzer generates', () => {
    fc.assert(fc.property(commandsArb(kernelScenario(), { maxCommands: 30 }), (commands) => {
      const back = decode(CommandsC, JSON.parse(JSON.stringify(commands)));
      expect(back).toEqual({ ok: true, value: commands });
    }), fcParams({ numRuns: 100 }));
  });
});

describe('readable decode errors', () => {
  it('names the path of a bad value inside a command', () => {
    const errors = errorsOf(edited((j) => { j['commands'][0].prot.cache = 'XX'; }));
    expect(errors).toEqual(['commands[0].prot.cache: expected a cache mode (WB | WC | UC- | UC | WT | WP), got "XX"']);
  });

  it('says a required field is missing', () => {
    const errors = errorsOf(edited((j) => { delete j['commands'][2].vpn; }));
    expect(errors).toEqual(['commands[2].vpn: missing (expected a finite number)']);
  });

  it('rejects a misspelt field instead of dropping it', () => {
    const errors = errorsOf(edited((j) => { j['commands'][0].maxpage = '2M'; }));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^commands\[0\]\.maxpage: unknown field/);
  });

  it('names an unknown operation and lists the known ones', () => {
    const errors = errorsOf(edited((j) => { j['commands'][1] = { op: 'mprotect', vpn: 1, pages: 1 }; }));
    expect(errors[0]).toMatch(/^commands\[1\]\.op: expected a command with op one of map, unmap, protect/);
    expect(errors[0]).toContain('got "mprotect"');
  });

  it('reports every problem, each at its own path', () => {
    const errors = errorsOf(edited((j) => {
      j['count'] = 0;
      j['target'] = { kind: 'mutant' };
      j['failure'].witnesses[0].frames[0].pfn = 'x';
    }));
    expect(errors).toEqual([
      'target.mutant: missing (expected string)',
      'failure.witnesses[0].frames[0].pfn: expected a finite number, got "x"',
      'count: expected an integer ≥ 1, got 0',
    ]);
  });

  it('says when the text is not JSON at all', () => {
    const errors = errorsOf('{"format": "ptspec-failure",');
    expect(errors[0]).toMatch(/^not valid JSON: /);
  });

  it('rejects another format or version', () => {
    // A file of the old version says what to do about it.
    expect(errorsOf(edited((j) => { j['version'] = 1; }))).toEqual([
      'version: expected 3, got 1',
      'this ptspec reads failure files of version 3; re-run the campaign that wrote it to record the failure again',
    ]);
  });
});
