/**
 * What the client operations (model/clients.ts and its siblings) reach of the model: a
 * ClientDraft is one copy of the model, or the model itself, with its core operations
 * and the few steps the contract names that no core operation makes. An operation of
 * several steps runs them on a copy and commits the copy only when every step
 * succeeded, so it is one atomic step of the model, as the contract's composition
 * ("as map does", "as freeFrames frees them") demands; a failed one changes nothing.
 */
import type { Vpn } from '../spec/address.ts';
import type { ClientState } from '../spec/clients.ts';
import type { PtError, Result } from '../spec/errors.ts';
import { OPERATIONS } from '../spec/operations.ts';
import type { AbstractState, FrameRun, Leaf, Prot, SystemConfig } from '../spec/state.ts';
import type { KernelEvent, PageTableSystem, Profile } from '../spec/system.ts';
import type { Entries } from './entries.ts';
import type { TableId } from './tables.ts';

/** The client operations the strict policy can refuse (their EPERM names the operation table's policyArg). */
export type ClientPolicyOp = 'vmalloc' | 'vfree' | 'kmapLocal' | 'mermapGet' | 'allocUnmapped' | 'applyToPageRange' | 'addMemory' | 'removeMemory';

export interface ClientDraft {
  /** Its core operations: the contract's "as map does", "as unmap with {flush: false}", "as freeFrames". */
  readonly sys: PageTableSystem;
  state(): AbstractState;
  clients(): ClientState;
  setClients(next: ClientState): void;
  /** init_mm's leaves and non-present entries. */
  entries(): Entries;
  setFrames(next: readonly FrameRun[]): void;
  /**
   * Leaves put into init_mm with no flush and no obligation (kmap_local, the mermap,
   * apply_to_page_range): strict judges the result as `op` (EPERM), both the pool
   * (ENOMEM). Linux: `keptAdd` are tables it allocated that no entry needs, `events` what it printed.
   */
  install(op: ClientPolicyOp, added: readonly Leaf[], linux?: { readonly keptAdd: readonly TableId[]; readonly events: readonly KernelEvent[] }): Result<void>;
  /**
   * mermap_put's and kunmap_local's clear: the entries wholly inside the range go, with
   * no flush; strict's emptied tables wait pending and, when it empties one, a flush of
   * the range is owed for `reason` (other CPUs' paging-structure caches may hold the
   * table); linux's are kept. Never refused.
   */
  clear(vpn: Vpn, pages: number, reason: string): void;
  /**
   * Run steps the strict policy does not judge one by one: an operation whose contract
   * judges it as a whole (vfree: its refusals on the state before; vm_reset_perms's
   * direct-map removal is restored by the same operation).
   */
  unjudged<T>(steps: () => T): T;
  /** arch_mermap_flush_tlb: this CPU's TLB and paging-structure caches emptied, and with them its stale mermap allocations. */
  flushCpu(cpu: number): void;
  print(e: KernelEvent): void;
  /** A WARN_ON_ONCE or pr_err_once: printed the first time its kind comes up after boot only. */
  printOnce(e: KernelEvent): void;
  /** Linux: the tables allocated though no entry needs them. */
  kept(): ReadonlySet<TableId>;
  /**
   * Linux: remove_pagetable's free_pte_table / free_pmd_table / free_pud_table of tables in
   * `kept()` (empty, still linked): they leave the pool. No flush here: the caller's
   * flush_tlb_all comes after, in the same step.
   */
  freeKept(ids: readonly TableId[]): void;
  /** The tables the pool can still hand out. */
  freeTables(): number;
  /** The prot a kernel leaf made with `prot` has, as map makes it (under linux the tables above grant no user access). */
  leafProt(prot: Prot): Prot;
}

export interface ClientsHost {
  readonly config: SystemConfig;
  readonly profile: Profile;
  /** The model itself: to read, and for the single steps that are atomic on their own. */
  current(): ClientDraft;
  /** A copy of the model; `commit` makes its state the model's. */
  draft(): ClientDraft & { commit(): void };
}

/**
 * A step's error as the operation's own: an EPERM names the argument the operation's
 * entry says (map's `prot` becomes kmapLocal's `pfn`) and keeps the invariant and where.
 */
export function asOp(op: ClientPolicyOp, e: PtError): PtError {
  if (e.errno !== 'EPERM' || e.invariant === undefined) return e;
  const arg = OPERATIONS[op].policyArg!;
  return { ...e, arg, message: `EPERM: ${arg}: ${e.message.replace(/^EPERM: [^:]*: /, '')}` };
}

/** The steps run in order until one fails: ok, or the failure as the operation's error. */
export function steps(op: ClientPolicyOp, ...list: (() => Result<unknown>)[]): Result<void> {
  for (const step of list) {
    const r = step();
    if (!r.ok) return { ok: false, error: asOp(op, r.error) };
  }
  return { ok: true, value: undefined };
}

export const err = (e: PtError): Result<never> => ({ ok: false, error: e });
