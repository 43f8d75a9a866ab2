/**
 * The `ptspec` command. `main` runs one command line and returns its exit code: 0 all
 * good, 1 something checked failed, 2 bad usage. `runProcess` is the only place that
 * reads the process's argv or sets its exit code (bin/ptspec.js calls it); tests call
 * `main` in-process with their own streams.
 */
import { Command, CommanderError } from 'commander';
import type { Cli, Output } from './output.ts';
import { selfcheck } from './selfcheck.ts';
import { examples } from './help.ts';
import { register as registerInvariants } from './invariants.ts';
import { register as registerFuzz } from './fuzz.ts';
import { register as registerReplay } from './replay.ts';
import { register as registerCheck } from './check.ts';
import { register as registerDump } from './dump.ts';
import { register as registerMutants } from './mutants.ts';
import { register as registerScenarios } from './scenarios.ts';
import { register as registerFailures } from './failures.ts';
import { register as registerMerge } from './merge.ts';
import { register as registerZoo } from './zoo.ts';
import { register as registerBench } from './bench.ts';
import { register as registerDocs } from './docs.ts';

export interface Streams {
  readonly stdout: Output;
  readonly stderr: Output;
}

/** Runs `argv` (the arguments after `ptspec`) writing only to `streams`; resolves to the exit code. */
export async function main(argv: readonly string[], streams: Streams): Promise<number> {
  const cli: Cli = { stdout: streams.stdout, stderr: streams.stderr, exitCode: 0 };
  // A fresh program per run: commander keeps parsed option values on its commands.
  const program = new Command()
    .name('ptspec')
    .description('Executable specification, reference model and model checker for kernel page tables')
    .exitOverride()
    .configureOutput({ writeOut: (s) => cli.stdout.write(s), writeErr: (s) => cli.stderr.write(s) });

  program
    .command('selfcheck')
    .description('check the x86-64 entry encoding against the kernel constants and round trips')
    .option('--json', 'machine-readable result')
    .addHelpText('after', examples([['ptspec selfcheck', 'the entry encoding against the kernel constants']]))
    .action((opts: { json?: boolean }) => {
      const report = selfcheck();
      cli.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : report.lines.map((l) => `${l}\n`).join(''));
      cli.exitCode = report.failed === 0 ? 0 : 1;
    });

  registerInvariants(program, cli);
  registerFuzz(program, cli);
  registerReplay(program, cli);
  registerCheck(program, cli);
  registerDump(program, cli);
  registerMutants(program, cli);
  registerScenarios(program, cli);
  registerFailures(program, cli);
  registerMerge(program, cli);
  registerZoo(program, cli);
  registerBench(program, cli);
  registerDocs(program, cli);

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    // Help and version are not errors; everything else commander rejects is bad usage.
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  return cli.exitCode;
}

/** The process's command line on its own streams (bin/ptspec.js). */
export async function runProcess(): Promise<void> {
  // A reader that stops early (`ptspec invariants | head`) is not an error of ours.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  process.exitCode = await main(process.argv.slice(2), process);
}
