import { defineConfig } from 'vitest/config';

// .ci/run asks for a JSON report beside the usual output so it can print `N passed, N failed`.
const jsonReport = process.env['PTSPEC_VITEST_JSON'];

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Property suites run thousands of sequences; the default 5 s would cut them off on 2 cores.
    testTimeout: 300_000,
    hookTimeout: 60_000,
    reporters: jsonReport ? ['default', 'json'] : ['default'],
    ...(jsonReport ? { outputFile: { json: jsonReport } } : {}),
  },
});
