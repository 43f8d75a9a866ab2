/**
 * `ptspec mutants`: the catalogue of kernel bugs the impl can be built with (impl/
 * mutants.ts), each with the kernel code or commit it models, for people or (--json) tools.
 */
import type { Command } from 'commander';
import { MUTANTS } from '../impl/mutants.ts';
import type { Cli } from './output.ts';

function mutantLines(): string[] {
  const lines: string[] = [];
  for (const m of MUTANTS) {
    lines.push(m.name, `  ${m.description}`, `  models: ${m.reference}`, `  caught by: ${m.caughtBy}`);
  }
  lines.push(`${MUTANTS.length} mutants (run one with: ptspec fuzz --mutant NAME)`);
  return lines;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('mutants')
    .description('list the injectable kernel-bug mutants of the impl with the kernel bug or commit each models; --json for tools')
    .option('--json', 'name, description, reference and caughtBy of every mutant')
    .action((opts: { json?: boolean }) => {
      const lines = opts.json ? [JSON.stringify(MUTANTS, null, 2)] : mutantLines();
      cli.stdout.write(lines.map((l) => `${l}\n`).join(''));
      cli.exitCode = 0;
    });
}
