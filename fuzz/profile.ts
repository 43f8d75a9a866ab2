/**
 * `ptspec fuzz --profile-cpu DIR`: V8 CPU profiles of the campaign's workers, where the
 * checking runs. Node's own `--cpu-prof` on the command line profiles only the main
 * thread, which mostly waits for the workers' messages; each worker gets the flag in its
 * execArgv instead (fuzz/worker-start.ts), and V8 writes one `.cpuprofile` per worker
 * when it exits (terminated ones too). `summariseProfiles` reads them back and says where
 * the time went: by folder of ours (the layers), and the functions with the most self
 * time. The files open in Chrome DevTools (Performance, load profile) or speedscope.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as t from 'io-ts';
import { decode } from '../io/trace.ts';

/** The worker flags that make V8 write a profile into `dir` when the worker exits. */
export function cpuProfileArgv(dir: string): string[] {
  return ['--cpu-prof', '--cpu-prof-dir', dir];
}

/** The profiles this process's workers wrote: V8 names them CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile. */
export function profilesOf(dir: string, pid: number, before: ReadonlySet<string>): string[] {
  const mine = new RegExp(`^CPU\\.\\d+\\.\\d+\\.${pid}\\.\\d+\\.\\d+\\.cpuprofile$`);
  return readdirSync(dir).filter((f) => mine.test(f) && !before.has(f)).sort().map((f) => join(dir, f));
}

// Only the fields read here: V8's format has more (positions, hit counts, line ticks).
const CpuProfileC = t.type({
  nodes: t.array(t.type({
    id: t.number,
    callFrame: t.type({ functionName: t.string, url: t.string }),
    children: t.union([t.array(t.number), t.undefined]),
  })),
  samples: t.array(t.number),
  timeDeltas: t.array(t.number),
});

/** What V8 calls the time no JavaScript ran: waiting for a message is not work. */
const IDLE = '(idle)';
/** The folders of ours a function's file can be in: where the time goes, by layer. */
const LAYERS = ['spec', 'checker', 'model', 'impl', 'fuzz', 'io', 'cli', 'examples'] as const;

export interface ProfileSummary {
  readonly files: readonly string[];
  /** Sampled time the workers were busy (not idle), in ms. */
  readonly busyMs: number;
  /** Busy time by where its function lives: a folder of ours, `dependencies`, `node` (its internals, module loading) or V8's own entries such as `(garbage collector)`. */
  readonly byPlace: readonly { readonly place: string; readonly ms: number }[];
  /** The functions with the most self time. */
  readonly top: readonly { readonly fn: string; readonly place: string; readonly ms: number }[];
}

function placeOf(functionName: string, url: string): { place: string; file: string } {
  // V8's own entries are named in parentheses; the other url-less functions are Node's natives.
  if (url === '') return { place: functionName.startsWith('(') ? functionName : 'node', file: '' };
  const path = url.replace(/^file:\/\//, '').replace(/\?.*$/, '');
  if (path.includes('/node_modules/')) return { place: 'dependencies', file: path.replace(/^.*\/node_modules\//, '') };
  const parts = path.split('/');
  for (let i = parts.length - 2; i >= 0; i--) {
    if ((LAYERS as readonly string[]).includes(parts[i]!)) return { place: parts[i]!, file: parts.slice(i).join('/') };
  }
  return { place: 'node', file: path };
}

/** Self time per function and per place over every profile in `files`; an unreadable file is an Error naming it. */
export function summariseProfiles(files: readonly string[], topN = 15): ProfileSummary {
  const byPlace = new Map<string, number>();
  const byFn = new Map<string, { fn: string; place: string; ms: number }>();
  let busy = 0;
  for (const file of files) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`${file}: not a CPU profile (${e instanceof Error ? e.message : String(e)})`);
    }
    const decoded = decode(CpuProfileC, json);
    if (!decoded.ok) throw new Error(`${file}: not a V8 CPU profile: ${decoded.errors.join('; ')}`);
    const p = decoded.value;
    // Each sample's time is the delta to the sample after it; microseconds.
    const selfUs = new Map<number, number>();
    p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? 0)));
    for (const n of p.nodes) {
      const us = selfUs.get(n.id) ?? 0;
      if (us === 0 || n.callFrame.functionName === IDLE) continue;
      const ms = us / 1000;
      busy += ms;
      const { place, file: where } = placeOf(n.callFrame.functionName, n.callFrame.url);
      byPlace.set(place, (byPlace.get(place) ?? 0) + ms);
      const fn = `${n.callFrame.functionName || '(anonymous)'}${where === '' ? '' : ` ${where}`}`;
      const e = byFn.get(fn) ?? { fn, place, ms: 0 };
      e.ms += ms;
      byFn.set(fn, e);
    }
  }
  const desc = <T extends { ms: number }>(a: T, b: T): number => b.ms - a.ms;
  return {
    files,
    busyMs: busy,
    byPlace: [...byPlace].map(([place, ms]) => ({ place, ms })).sort(desc),
    top: [...byFn.values()].sort(desc).slice(0, topN),
  };
}

/** The summary as lines for the terminal: shares of the busy time, largest first. */
export function profileText(s: ProfileSummary): string {
  const share = (ms: number): string => `${((100 * ms) / Math.max(s.busyMs, 1e-9)).toFixed(1).padStart(5)}%`;
  return [
    `CPU profile of the workers: ${s.files.length} file${s.files.length === 1 ? '' : 's'} (open one in Chrome DevTools' Performance panel or speedscope)`,
    ...s.files.map((f) => `  ${f}`),
    `Busy ${(s.busyMs / 1000).toFixed(1)} s, by where the code lives:`,
    ...s.byPlace.map((p) => `  ${share(p.ms)}  ${p.place}`),
    'Most self time:',
    ...s.top.map((f) => `  ${share(f.ms)}  ${f.fn}`),
  ].join('\n');
}
