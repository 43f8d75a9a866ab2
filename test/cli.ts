/**
 * The `ptspec` command line in tests: in-process through cli/main.ts (fast, the default),
 * or spawned through bin/ptspec.js for the few tests of the wiring itself (argv, streams,
 * exit code of a real process). Relative paths are from the repo root, where vitest runs.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../cli/main.ts';

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** `ptspec ARGS…` in this process, its output collected. */
export async function ptspec(...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s) => (stdout += s) }, stderr: { write: (s) => (stderr += s) } });
  return { code, stdout, stderr };
}

/** `node bin/ptspec.js ARGS…` as a child process in the repo root. */
export function spawnPtspec(...args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/ptspec.js', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
