/**
 * Ctrl-C or a kill during a long command (`fuzz`, `zoo`): the first SIGINT or SIGTERM
 * aborts the work through an AbortSignal, so the command ends what is in flight and still
 * reports and keeps what it found; a second signal gets Node's default and the process dies.
 */
export interface Interrupt {
  readonly signal: AbortSignal;
  /** The first signal received, or null. */
  received(): NodeJS.Signals | null;
  /** Stops listening (the command is done). */
  release(): void;
}

export function onInterrupt(): Interrupt {
  const abort = new AbortController();
  let first: NodeJS.Signals | null = null;
  const handler = (s: NodeJS.Signals): void => {
    first ??= s;
    abort.abort();
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return {
    signal: abort.signal,
    received: () => first,
    release: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/** 128 + the signal's number, as a shell reports a command the signal ended. */
export function signalExitCode(s: NodeJS.Signals): number {
  return s === 'SIGTERM' ? 143 : 130;
}
