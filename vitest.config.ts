import { defineConfig } from 'vitest/config';

// .ci/run asks for a JSON report beside the usual output so it can print `N passed, N failed`.
const jsonReport = process.env['PTSPEC_VITEST_JSON'];

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
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
