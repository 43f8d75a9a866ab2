/**
 * The examples every verb's `--help` ends with (commander's `addHelpText('after', …)`):
 * a command line a kernel developer can paste, and what it does.
 */

/** `[command line, what it does]` pairs as an "Examples:" block, the descriptions aligned. */
export function examples(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([cmd]) => cmd.length));
  return `\nExamples:\n${rows.map(([cmd, what]) => `  $ ${cmd.padEnd(width)}  # ${what}`).join('\n')}\n`;
}
