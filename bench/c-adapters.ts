/**
 * The C adapters' speed: the same campaign sequences checked as a campaign checks them,
 * against the built-in TypeScript impl, the reference C implementation through the wasm
 * adapter (c/ptspec-ref.wasm) and the same C built natively behind the protocol server
 * (c/ptspec-main.c, as `--impl-cmd` runs it). All under the linux profile on the `kernel`
 * scenario, the C library's operations only, so every side runs the same commands.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from '../spec/commands.ts';
import { kernelScenario } from '../spec/scenario.ts';
import { generatedCommands, runSeed } from '../fuzz/campaign-run.ts';
import { commandTarget, implTarget, moduleTarget, traceSetupFor, wasmModuleOf, withProfile } from '../fuzz/campaign-target.ts';
import { moduleUrl } from '../fuzz/user-impl.ts';
import { BENCH_SEED, checkedSide } from './checked.ts';
import type { CampaignDefaults, Group } from './runner.ts';

export const C_LABELS = {
  ts: 'checked, the built-in TypeScript impl (linux, the C library\'s operations)',
  wasm: 'checked, the reference C impl through the wasm adapter',
  process: 'checked, the reference C impl as a native process (--impl-cmd)',
} as const;

const C_DIR = fileURLToPath(new URL('../c/', import.meta.url));
const REF_WASM = join(C_DIR, 'ptspec-ref.wasm');
/** Commands per round: the process side pays a pipe round trip per call, so fewer than the other checked groups. */
const COMMANDS_PER_ROUND = 300;

/** The protocol server linked with the reference library, built with cc into a temporary folder. */
function refServer(): string {
  const out = join(mkdtempSync(join(tmpdir(), 'ptspec-bench-c-')), 'ptspec-ref-server');
  const sources = readdirSync(join(C_DIR, 'ref')).filter((f) => f.endsWith('.c') && f !== 'test.c').sort().map((f) => join(C_DIR, 'ref', f));
  execFileSync('cc', ['-O2', '-std=c11', '-o', out, join(C_DIR, 'ptspec-main.c'), ...sources], { stdio: 'pipe' });
  return out;
}

export const C_ADAPTERS: Group = {
  name: 'C adapters',
  rounds: 3,
  warmup: true,
  async setup(campaign: CampaignDefaults) {
    const scenario = kernelScenario();
    const ops = (await wasmModuleOf(moduleUrl(REF_WASM))).supported.ops;
    const setupOf = (target: ReturnType<typeof implTarget>) => traceSetupFor(scenario.name, withProfile(target, 'linux'), campaign.fullCheckEvery, { bootOnce: true });
    const sequences: (readonly Command[])[] = [];
    for (let i = 0, total = 0; total < COMMANDS_PER_ROUND; i++) {
      const commands = generatedCommands({ scenario, maxCommands: campaign.maxCommands, swarm: true, setup: { profile: 'linux', ops } }, runSeed(BENCH_SEED, i));
      sequences.push(commands);
      total += commands.length;
    }
    return {
      sides: [
        checkedSide(C_LABELS.ts, await setupOf(implTarget()), sequences),
        checkedSide(C_LABELS.wasm, await setupOf(moduleTarget(REF_WASM, moduleUrl(REF_WASM))), sequences),
        checkedSide(C_LABELS.process, await setupOf(commandTarget(refServer())), sequences),
      ],
    };
  },
};
