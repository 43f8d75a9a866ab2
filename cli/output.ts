/**
 * Where a command prints. main() gets the streams from its caller (bin/ptspec.js passes
 * the process's, tests pass buffers), so a command behaves the same in-process and
 * spawned, and tests of the command line need no child process.
 */
export interface Output {
  write(text: string): unknown;
  /** A terminal: `ptspec fuzz` rewrites its progress line in place instead of appending. */
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/** One run of the command line: its streams, and the exit code the action that ran sets. */
export interface Cli {
  readonly stdout: Output;
  readonly stderr: Output;
  exitCode: number;
}

/**
 * Text from failure files and user modules (details, messages, commands, paths) made safe
 * for a terminal: control characters other than newline and tab, which could move the
 * cursor, retitle the window or hide lines, are shown as `\xNN`.
 */
export function printable(text: string): string {
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
