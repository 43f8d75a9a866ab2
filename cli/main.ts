/**
 * The `ptspec` command. The only place that reads argv or sets the exit code: 0 all
 * good, 1 something checked failed, 2 bad usage.
 */
import { Command, CommanderError } from 'commander';
import { selfcheck } from './selfcheck.ts';
import { register as registerInvariants } from './invariants.ts';
import { register as registerFuzz } from './fuzz.ts';
import { register as registerReplay } from './replay.ts';
import { register as registerCheck } from './check.ts';
import { register as registerDump } from './dump.ts';
import { register as registerMutants } from './mutants.ts';

// A reader that stops early (`ptspec invariants | head`) is not an error of ours.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

const program = new Command()
  .name('ptspec')
  .description('Executable specification, reference model and model checker for kernel page tables')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program
  .command('selfcheck')
  .description('check the x86-64 entry encoding against the kernel constants and round trips')
  .option('--json', 'machine-readable result')
  .action((opts: { json?: boolean }) => {
    const report = selfcheck();
    if (opts.json) console.log(JSON.stringify(report, null, 2));
    else for (const line of report.lines) console.log(line);
    process.exitCode = report.failed === 0 ? 0 : 1;
  });

registerInvariants(program);
registerFuzz(program);
registerReplay(program);
registerCheck(program);
registerDump(program);
registerMutants(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version are not errors; everything else commander rejects is bad usage.
    process.exitCode = e.exitCode === 0 ? 0 : 2;
  } else {
    throw e;
  }
}
