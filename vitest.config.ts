import { configDefaults, defineConfig } from 'vitest/config';

// .ci/run asks for a JSON report beside the usual output so it can print `N passed, N failed`.
const jsonReport = process.env['PTSPEC_VITEST_JSON'];

/**
 * Suites that spawn campaigns and wait out real timeouts (hung modules, racing lock
 * takers, sharded campaigns merged), spawn a campaign per adapter format (each one two
 * processes' start-up through tsx, a second or more apiece), run linux-profile or isolation campaigns until a
 * mutant fails, or
 * campaign the example against the model, or open the committed site in headless Chromium
 * (which CI installs first): together they would push `npm test` past two
 * minutes on 2 cores, so .ci/run runs them as a step of their own
 * (PTSPEC_SLOW_TESTS=1 npx vitest run).
 */
const SLOW = ['test/hostile-hangs.test.ts', 'test/lock-race.test.ts', 'test/merge.test.ts', 'test/mutants-caught-linux.test.ts', 'test/mutants-caught-isolation.test.ts', 'test/example-campaign.test.ts', 'test/user-impl-load.test.ts', 'test/docs-browser.test.ts'];
const slow = process.env['PTSPEC_SLOW_TESTS'] === '1';

export default defineConfig({
  test: {
    include: slow ? SLOW : ['test/**/*.test.ts'],
    exclude: slow ? configDefaults.exclude : [...configDefaults.exclude, ...SLOW],
    // Every core: the suites are CPU-bound and share nothing but temp dirs, and vitest's
    // default (cores - 1) would leave one of a 2-core machine's cores idle.
    maxWorkers: '100%',
    // Test files share no module state they change, so each worker keeps its module graph
    // between files instead of importing the whole project again for each one.
    isolate: false,
    // Property suites run hundreds of sequences (over 10 s on a busy 2-core machine); the
    // default 5 s would cut them off.
    testTimeout: 300_000,
    hookTimeout: 60_000,
    reporters: jsonReport ? ['default', 'json'] : ['default'],
    ...(jsonReport ? { outputFile: { json: jsonReport } } : {}),
  },
});
