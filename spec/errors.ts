/**
 * Typed errors. Every operation returns a result or one of these; a failed operation
 * changes nothing. Model and impl must agree on the errno (the message is for people
 * and may differ, but must name the argument at fault).
 */
export type Errno = 'EINVAL' | 'EEXIST' | 'ENOENT' | 'ENOMEM' | 'EPERM';
export const ERRNOS: readonly Errno[] = ['EINVAL', 'EEXIST', 'ENOENT', 'ENOMEM', 'EPERM'];

export const ERRNO_MEANING: Readonly<Record<Errno, string>> = {
  EINVAL: 'bad argument (unaligned, non-canonical, out of range, not representable)',
  EEXIST: 'the range overlaps an existing mapping',
  ENOENT: 'the range (or part of it) is not mapped',
  ENOMEM: 'no frame left for a page table',
  EPERM: 'refused by policy: it would break a security invariant',
};

export interface PtError {
  readonly errno: Errno;
  /** The argument at fault, by its parameter name (`vpn`, `pages`, `prot`, …). */
  readonly arg: string;
  readonly message: string;
}

export type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: PtError };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const OK: Result<void> = { ok: true, value: undefined };

export function fail<T = never>(errno: Errno, arg: string, message: string): Result<T> {
  return { ok: false, error: { errno, arg, message: `${errno}: ${arg}: ${message}` } };
}

/** `ok` or the errno, for comparing model and impl outcomes and for coverage counts. */
export function outcome(r: Result<unknown>): 'ok' | Errno {
  return r.ok ? 'ok' : r.error.errno;
}
