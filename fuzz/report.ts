/**
 * A failure as text a kernel developer can act on without a debugger: which check
 * failed, the invariant's statement, where (hex VAs, frames), both outcomes of the
 * failing command, how to reproduce it (seed, path), and the shrunk command list with the
 * failing step marked.
 */
import { pfnToHex, vpnToHex } from '../spec/address.ts';
import type { Command } from '../spec/commands.ts';
import type { Witness } from '../spec/invariant.ts';
import type { WalkVisit } from '../spec/system.ts';
import type { StepOutcome, TraceFailure } from './check.ts';
import type { StepValue } from './compare.ts';
import { formatCommand, formatLeaf, formatLen } from './format.ts';

export interface ReportContext {
  readonly seed: number;
  /** fast-check's counterexample path (replays the shrunk case with the seed). */
  readonly path?: string;
  /** The commands of the failing trace (after the scenario's boot). */
  readonly commands: readonly Command[];
  /** Scenario name and impl/mutant, when known. */
  readonly scenario?: string;
  readonly impl?: string;
  /** The command that reruns the failing run (`ptspec fuzz --replay …`), when it came from a campaign's run. */
  readonly reproduce?: string;
}

const KIND_TITLE: Readonly<Record<TraceFailure['kind'], string>> = {
  'outcome-mismatch': 'model and impl returned different results',
  postcondition: "a step broke its operation's contract (spec/contracts/post)",
  refinement: 'refinement: abstract(impl) is not the model state',
  invariant: 'an invariant of the catalogue is violated',
  tables: 'the concrete page tables are malformed',
  checker: 'an invariant\'s fast check disagrees with its definition (checker/)',
  exception: 'a system threw an exception',
  timeout: 'an operation did not return within --command-timeout',
  finding: 'the kernel permits it (linux profile): an invariant breaks in a state the kernel reaches',
};

const CHECK_TITLE: Readonly<Record<TraceFailure['check'], string>> = {
  outcome: 'result of the command',
  incremental: 'incremental check over the ranges the command touched',
  full: 'full check of the whole state',
};

export function formatValue(v: StepValue | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'number') return ` at ${vpnToHex(v)}`;
  if (Array.isArray(v)) return ` ${v.length} visits${v.length === 0 ? '' : `: ${v.slice(0, 4).map(visitText).join(', ')}${v.length > 4 ? ', …' : ''}`}`;
  if (!('pid' in v) && !('leaf' in v) && !('fault' in v)) return '';
  if ('pid' in v) return ` pid ${v.pid} (roots ${v.kernelRoot}, ${v.userRoot}, ${v.asiRoot})`;
  if ('leaf' in v) return ` -> ${pfnToHex(v.pfn)} via ${formatLeaf(v.leaf)}`;
  if (v.fault !== false) return ` fault=${v.fault}`;
  return ` -> ${pfnToHex(v.translation.pfn)} via ${formatLeaf(v.translation.leaf)}${v.fromTlb ? ' (from TLB)' : ' (walk)'}`;
}

/** `leaf@2 0xffff… 512 -> 0x1000`: a walk visit, its kind, level, first page, pages and frame. */
function visitText(w: WalkVisit): string {
  return `${w.kind}@${w.level} ${vpnToHex(w.vpn)}+${w.pages}${w.pfn === undefined ? '' : ` -> ${pfnToHex(w.pfn)}`}`;
}

export function formatOutcome(o: StepOutcome): string {
  if (o.outcome === 'ok') return `ok${formatValue(o.value)}`;
  const msg = o.message === undefined ? '' : ` (${o.message.split('\n').slice(0, o.outcome === 'exception' ? 4 : 1).join('\n      ')})`;
  return `${o.outcome}${msg}`;
}

export function formatWitness(w: Witness): string {
  const where: string[] = [];
  if (w.root !== undefined) where.push(`root ${w.root}`);
  if (w.vpn !== undefined) {
    where.push(w.pages === undefined ? `va ${vpnToHex(w.vpn)}` : `va ${vpnToHex(w.vpn)}-${vpnToHex(w.vpn + w.pages)} (${formatLen(w.pages)})`);
  }
  if (w.frames !== undefined && w.frames.length > 0) {
    where.push(`frames ${w.frames.map((f) => `${pfnToHex(f.pfn)}+${formatLen(f.count)}`).join(', ')}`);
  }
  return `${where.length > 0 ? `${where.join(', ')}: ` : ''}${w.detail}`;
}

const MAX_WITNESSES = 8;

/** The whole report, one fact per line. */
export function formatFailure(f: TraceFailure, ctx: ReportContext): string {
  const where = f.phase === 'boot' ? `boot command #${f.step} of the scenario` : `step ${f.step} of ${ctx.commands.length}`;
  const lines = [
    `FAILED: ${KIND_TITLE[f.kind]}`,
    `  at ${where}, caught by the ${CHECK_TITLE[f.check]}`,
    `  command: ${formatCommand(f.command)}`,
    `  model:   ${formatOutcome(f.model)}`,
    `  impl:    ${formatOutcome(f.impl)}`,
    '',
    f.invariantId === undefined ? `What: ${f.detail}` : `Invariant ${f.invariantId}: ${f.invariantStatement ?? f.detail}`,
  ];
  if (f.witnesses.length > 0) {
    lines.push('Witness:');
    for (const w of f.witnesses.slice(0, MAX_WITNESSES)) lines.push(`  ${formatWitness(w)}`);
    if (f.witnesses.length > MAX_WITNESSES) lines.push(`  … and ${f.witnesses.length - MAX_WITNESSES} more`);
  }
  lines.push('', `Reproduce: ${ctx.reproduce ?? `seed=${ctx.seed}${ctx.path === undefined ? '' : ` path=${ctx.path}`}`}`);
  if (ctx.scenario !== undefined || ctx.impl !== undefined) {
    lines.push(`  scenario=${ctx.scenario ?? '?'}${ctx.impl === undefined ? '' : ` impl=${ctx.impl}`}`);
  }
  lines.push('', `Commands after the scenario's boot (${ctx.commands.length}):`);
  const width = String(Math.max(0, ctx.commands.length - 1)).length;
  ctx.commands.forEach((c, k) => {
    const mark = f.phase === 'run' && k === f.step ? '   <-- fails here' : '';
    lines.push(`  ${String(k).padStart(width)}  ${formatCommand(c)}${mark}`);
  });
  return lines.join('\n');
}
