/**
 * The machines memory hotplug is fuzzed and tested on: a built-in kernel scenario with
 * hot-pluggable space above its RAM (frames of use `absent`, as e820 leaves what firmware
 * has not populated), which its boot leaves alone: the direct map ends at the RAM. The
 * hotplug mutants run on it (fuzz/mutant-setup.ts), and so do the hotplug suites.
 */
import { MEMORY_BLOCK_PAGES } from '../spec/clients.ts';
import { kernelScenario, type Scenario } from '../spec/scenario.ts';
import type { SystemConfig } from '../spec/state.ts';

/** `kernelScenario(overrides)` with `blocks` absent memory blocks (1 GiB by default) right above its RAM. */
export function hotplugScenario(overrides: Partial<SystemConfig> = {}, blocks = 8): Scenario {
  const base = kernelScenario(overrides);
  const ram = base.config.frames;
  const space = blocks * MEMORY_BLOCK_PAGES;
  return {
    ...base,
    name: 'kernel-hotplug',
    description: `${base.description}, and ${(space * 4) / 1024} MiB of hotplug space above it`,
    config: { ...base.config, frames: ram + space },
    frames: [...base.frames, { pfn: ram, count: space, use: 'absent', sensitive: false, noDirectMap: false }],
  };
}

/** The first frame of the hotplug space. */
export const hotplugBase = (s: Scenario): number => s.frames.find((r) => r.use === 'absent')!.pfn;
