/**
 * What the kernel printed (linux profile, spec/contracts/linux.ts): CPA's warnings and
 * static-protection lines, in order, until takeEvents() collects them. WARN_ONCE,
 * WARN_ON_ONCE and pr_warn_once print the first time per boot only, so the kinds they
 * print are remembered for the life of the system, across takeEvents().
 */
import type { KernelEvent } from '../spec/system.ts';

export class KernelLog {
  private events: KernelEvent[] = [];
  private readonly printedOnce = new Set<KernelEvent['kind']>();

  /** Become a copy of `src`: what it printed and not yet taken, and the kinds printed once (RadixSystem.fork). */
  copyFrom(src: KernelLog): void {
    this.events = [...src.events];
    this.printedOnce.clear();
    for (const k of src.printedOnce) this.printedOnce.add(k);
  }

  /** pr_warn / WARN: printed every time. */
  print(e: KernelEvent): void {
    this.events.push(e);
  }

  /** WARN_ONCE / WARN_ON_ONCE / pr_warn_once: printed the first time this kind comes up. */
  printOnce(e: KernelEvent): void {
    if (this.printedOnce.has(e.kind)) return;
    this.printedOnce.add(e.kind);
    this.events.push(e);
  }

  /** What was printed since the last call, oldest first. */
  take(): readonly KernelEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }
}
