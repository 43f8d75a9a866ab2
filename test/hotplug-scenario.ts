/** The hotplug machine the suites share, now declared in fuzz/ where the mutant zoo needs it too. */
export { hotplugBase, hotplugScenario } from '../fuzz/hotplug-scenario.ts';
