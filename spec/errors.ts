/**
 * Typed errors. Every operation returns a result or one of these; a failed operation
 * changes nothing.
 *
 * The contract of an error is its errno, its `arg` and, for EPERM, its `invariant`:
 * refinement compares exactly these three, so an implementation must produce the same
 * ones as the model. Which argument each errno names is fixed (spec/contracts/README.md):
 * EINVAL the first argument whose validator fails (the validators of spec/contracts run in
 * the order root, vpn, pages, pfn/count, prot/change, maxPage/size); EEXIST and ENOENT
 * `vpn` (`pfn` for set_direct_map_*); EPERM the argument carrying the refused intent
 * (`POLICY_ARG[op]`) and the first strict-policy invariant (`STRICT_POLICY` order) the
 * result would break; ENOMEM `tablePool`. The message is for people and is not compared.
 *
 * Trusted: the error shape and its constructors are shared by model and impl and are
 * not checked by refinement.
 */
export type Errno = 'EINVAL' | 'EEXIST' | 'ENOENT' | 'ENOMEM' | 'EPERM' | 'EFAULT' | 'EBUSY';
export const ERRNOS: readonly Errno[] = ['EINVAL', 'EEXIST', 'ENOENT', 'ENOMEM', 'EPERM', 'EFAULT', 'EBUSY'];

export const ERRNO_MEANING: Readonly<Record<Errno, string>> = {
  EINVAL: 'bad argument (unaligned, non-canonical, out of range, not representable)',
  EEXIST: 'the range overlaps an existing mapping',
  ENOENT: 'the range (or part of it) is not mapped',
  ENOMEM: 'no frame left for a page table',
  EPERM: 'refused by policy: it would break a security invariant',
  EFAULT: 'the kernel met a page with no entry (CPA: called for zero pte)',
  EBUSY: 'a frame already has a memory type reserved (reserve_ram_pages_type)',
};

export interface PtError {
  readonly errno: Errno;
  /** The argument at fault, by its parameter name (`vpn`, `pages`, `prot`, …). */
  readonly arg: string;
  /** EPERM only: the id of the strict-policy invariant the refused result would break. */
  readonly invariant?: string;
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
