/**
 * `ptspec mutants`: the catalogue of kernel bugs the impl can be built with (impl/
 * mutants.ts), each with the kernel code or commit it models, for people or (--json) tools.
 */
import type { Command } from 'commander';
import { MUTANTS } from '../impl/mutants.ts';
import type { Cli } from './output.ts';
import { examples } from './help.ts';

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
    .addHelpText('after', examples([
      ['ptspec mutants', 'each mutant, the kernel bug it models and what catches it'],
      ['ptspec fuzz --mutant protect-no-flush --runs 100', 'watch the campaign catch one'],
    ]))
    .action((opts: { json?: boolean }) => {
      const lines = opts.json ? [JSON.stringify(MUTANTS, null, 2)] : mutantLines();
      cli.stdout.write(lines.map((l) => `${l}\n`).join(''));
      cli.exitCode = 0;
    });
}
