/**
 * `npm run bench`: the benchmark of bench/suite.ts printed as one table and its ratios;
 * `npm run bench -- --json` prints the report as JSON (schemas/bench.schema.json) instead.
 * Timings are compared within the run, never asserted (bench/README.md). This file is
 * the benchmark's command line, so it reads the arguments itself (test/layering.ts).
 */
import { runBench } from './suite.ts';

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--json');
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown argument ${unknown.join(' ')} (the only option is --json)\n`);
  process.exitCode = 2;
} else {
  const { bench, report } = await runBench();
  if (args.includes('--json')) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    console.log(bench.name);
    console.table(bench.table());
    const width = Math.max(...report.ratios.map((r) => r.name.length)) + 1;
    for (const r of report.ratios) console.log(`${`${r.name}:`.padEnd(width)} ${r.ratio.toFixed(2)}x`);
    console.table(report.machines.map((m) => ({
      scenario: m.scenario, leaves: m.leaves, 'table pages': m.tablePages, 'model boot ms': m.bootMs.model.toFixed(0), 'impl boot ms': m.bootMs.impl.toFixed(0),
      'impl MB': m.implBytes === null ? '-' : (m.implBytes / 1e6).toFixed(1), 'impl KB per table page': m.implBytesPerTablePage === null ? '-' : (m.implBytesPerTablePage / 1024).toFixed(0),
    })));
  }
}
