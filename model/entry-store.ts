/**
 * init_mm's entries as the model keeps them, so that an operation costs what it touches
 * and not the whole map: the two sorted lists of model/entries.ts (leaves and non-present
 * entries), edited in place, with two indexes kept beside them, the table counts of the
 * footprint (model/tables.ts TableCounts, over both lists) and the frame index of the
 * leaves outside the direct map (model/frame-index.ts).
 *
 * An operation reads a window: the entries of both lists meeting the ranges it can
 * change, cut out as short sorted lists. It computes their replacement with the plain
 * list functions of model/leaves.ts, as it would on the whole map (no entry outside the
 * window meets its ranges, so it finds the same entries), and `apply` splices the result
 * back where the window came from and updates the indexes by the entries that changed.
 * An edit can be undone (a refused candidate is judged applied, then taken back).
 *
 * The lists are handed out by `snapshot` (abstract() and clone share them); the next edit
 * then copies them first, so a snapshot never changes.
 */
import type { PagingLevels, Vpn } from '../spec/address.ts';
import type { Leaf } from '../spec/state.ts';
import type { Entries } from './entries.ts';
import { FrameIndex } from './frame-index.ts';
import { intersecting, leafEnd } from './leaves.ts';
import { TableCounts, type TableId } from './tables.ts';

export interface Range {
  readonly vpn: Vpn;
  readonly pages: number;
}

/** Where one piece of a window came from: indices [lo, hi) of its list, and the pages [from, to) its entries and range span. */
interface Pick {
  readonly lo: number;
  readonly hi: number;
  readonly from: Vpn;
  readonly to: Vpn;
}

type ListName = 'leaves' | 'nonPresent';

/** The entries meeting some ranges, cut out of both lists, and where they go back. */
export interface Window {
  readonly entries: Entries;
  readonly picks: Readonly<Record<ListName, readonly Pick[]>>;
  /** The store's edit count when the window was cut: it is valid only until the next edit. */
  readonly version: number;
}

/** What the store's entries after an edit are, for a window: absent, a list unchanged. */
export interface WindowEdit {
  readonly leaves?: readonly Leaf[];
  readonly nonPresent?: readonly Leaf[];
}

/**
 * How one list was changed, for undo: spliced in place (each splice as made, the last
 * piece first), or rebuilt (the list before, which the rebuild left as it was).
 */
type ListChange =
  | { readonly list: ListName; readonly splices: readonly { readonly at: number; readonly removed: readonly Leaf[]; readonly added: number }[] }
  | { readonly list: ListName; readonly before: Leaf[] };

/** An applied edit, for undo: how each list changed, and the entries that went out and came in. */
export interface Applied {
  readonly changes: readonly ListChange[];
  readonly removed: Entries;
  readonly added: Entries;
}

/**
 * Up to this many pieces a list is spliced in place, each splice moving the entries
 * after it; past it, or with more entries in or out than a spread of arguments can carry
 * (the splice, or its undo), it is rebuilt in one pass.
 */
const MAX_SPLICES = 16;
const SPREAD_LIMIT = 4096;

/** `list` with each pick's entries replaced by its piece, in one pass. */
function rebuilt(list: readonly Leaf[], picks: readonly Pick[], pieces: readonly (readonly Leaf[])[]): Leaf[] {
  const out: Leaf[] = [];
  let from = 0;
  picks.forEach((p, i) => {
    for (let j = from; j < p.lo; j++) out.push(list[j]!);
    for (const e of pieces[i]!) out.push(e);
    from = p.hi;
  });
  for (let j = from; j < list.length; j++) out.push(list[j]!);
  return out;
}

/** The old and new entries of an index, the ones in both (put back unchanged) skipped. */
function changed(out: readonly Leaf[], inn: readonly Leaf[], remove: (e: Leaf) => void, add: (e: Leaf) => void): void {
  const stays = new Set(out);
  const arrives = new Set(inn);
  for (const e of out) if (!arrives.has(e)) remove(e);
  for (const e of inn) if (!stays.has(e)) add(e);
}

/** Ranges sorted and merged where they overlap or touch. */
function mergeRanges(ranges: readonly Range[]): Range[] {
  const sorted = ranges.filter((r) => r.pages > 0).sort((a, b) => a.vpn - b.vpn);
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last.vpn + last.pages >= r.vpn) out[out.length - 1] = { vpn: last.vpn, pages: Math.max(last.vpn + last.pages, r.vpn + r.pages) - last.vpn };
    else out.push(r);
  }
  return out;
}

/** The picks of one list for merged ranges: each range's entries, merged where an entry meets two ranges. */
function picksOf(list: readonly Leaf[], ranges: readonly Range[]): Pick[] {
  const out: Pick[] = [];
  for (const r of ranges) {
    const [lo, hi] = intersecting(list, r.vpn, r.pages);
    const from = lo < hi ? Math.min(r.vpn, list[lo]!.vpn) : r.vpn;
    const to = lo < hi ? Math.max(r.vpn + r.pages, leafEnd(list[hi - 1]!)) : r.vpn + r.pages;
    const last = out[out.length - 1];
    if (last !== undefined && lo < last.hi) out[out.length - 1] = { lo: last.lo, hi: Math.max(last.hi, hi), from: last.from, to: Math.max(last.to, to) };
    else out.push({ lo, hi, from, to });
  }
  return out;
}

export class EntryStore {
  private lists: Record<ListName, Leaf[]> = { leaves: [], nonPresent: [] };
  /** The lists are shared with a snapshot or a clone: copy them before the next edit. */
  private shared = false;
  private edits = 0;
  readonly tables: TableCounts;
  readonly aliases: FrameIndex;

  constructor(
    private readonly levels: PagingLevels,
    tables?: TableCounts,
    aliases?: FrameIndex,
  ) {
    this.tables = tables ?? new TableCounts(levels);
    this.aliases = aliases ?? FrameIndex.empty(levels);
  }

  /** The entries as they stand, valid until the next edit: to read, never to keep. */
  get entries(): Entries {
    return this.lists;
  }

  /** How many edits the store has had: a lookup made for one version is stale at the next. */
  get version(): number {
    return this.edits;
  }

  /** The entries as they stand, never changed by a later edit. */
  snapshot(): Entries {
    this.shared = true;
    return { leaves: this.lists.leaves, nonPresent: this.lists.nonPresent };
  }

  /** An independent store with the same entries: the lists shared until either side edits, the counts copied. */
  clone(): EntryStore {
    const copy = new EntryStore(this.levels, this.tables.clone(), this.aliases.clone());
    copy.lists = this.lists;
    copy.shared = true;
    this.shared = true;
    return copy;
  }

  /** The entries of both lists meeting the ranges (and only those), each list in vpn order. */
  window(ranges: readonly Range[]): Window {
    const merged = mergeRanges(ranges);
    const picks = { leaves: picksOf(this.lists.leaves, merged), nonPresent: picksOf(this.lists.nonPresent, merged) };
    const cut = (name: ListName): Leaf[] => picks[name].flatMap((p) => this.lists[name].slice(p.lo, p.hi));
    return { entries: { leaves: cut('leaves'), nonPresent: cut('nonPresent') }, picks, version: this.edits };
  }

  /**
   * The window's entries replaced by `next`: each list's new entries go back where the
   * window's piece covering their first page came from. An entry outside every piece is
   * a bug of the operation (it changed a page it did not ask for): thrown.
   */
  apply(w: Window, next: WindowEdit): Applied {
    if (w.version !== this.edits) throw new Error('entry store: the window is stale (the store changed since it was cut)');
    this.own();
    const changes: ListChange[] = [];
    const removed = { leaves: next.leaves === undefined ? [] : w.entries.leaves, nonPresent: next.nonPresent === undefined ? [] : w.entries.nonPresent };
    const added = { leaves: next.leaves ?? [], nonPresent: next.nonPresent ?? [] };
    for (const name of ['leaves', 'nonPresent'] as const) {
      const after = next[name];
      if (after === undefined) continue;
      const picks = w.picks[name];
      const pieces = picks.map((): Leaf[] => []);
      let p = 0;
      for (const e of after) {
        while (p < picks.length && picks[p]!.to <= e.vpn) p++;
        const pick = picks[p];
        if (pick === undefined || e.vpn < pick.from) throw new Error(`entry store: an entry at vpn ${e.vpn} lies outside the window`);
        pieces[p]!.push(e);
      }
      const list = this.lists[name];
      if (picks.length > MAX_SPLICES || Math.max(after.length, w.entries[name].length) > SPREAD_LIMIT) {
        this.lists[name] = rebuilt(list, picks, pieces);
        changes.push({ list: name, before: list });
        continue;
      }
      // From the last piece back, so the indices of the earlier ones still hold.
      const splices: { at: number; removed: Leaf[]; added: number }[] = [];
      for (let i = picks.length - 1; i >= 0; i--) {
        const { lo, hi } = picks[i]!;
        splices.push({ at: lo, removed: list.splice(lo, hi - lo, ...pieces[i]!), added: pieces[i]!.length });
      }
      changes.push({ list: name, splices });
    }
    this.reindex(removed, added);
    this.edits++;
    return { changes, removed, added };
  }

  /** Take back an edit, the last one applied not yet undone. */
  undo(a: Applied): void {
    this.own();
    for (const c of a.changes) {
      if ('before' in c) {
        this.lists[c.list] = c.before;
        continue;
      }
      // In the reverse order of the splices: each then finds the indices it was made at.
      const list = this.lists[c.list];
      for (let i = c.splices.length - 1; i >= 0; i--) list.splice(c.splices[i]!.at, c.splices[i]!.added, ...c.splices[i]!.removed);
    }
    this.reindex(a.added, a.removed);
    this.edits++;
  }

  /** The footprint the entries would have with the window's entries replaced by `next`, the store left as it is. */
  footprintAfter(w: Window, next: WindowEdit): number {
    const edited = (['leaves', 'nonPresent'] as const).filter((name) => next[name] !== undefined);
    return this.tables.footprintAfter(edited.flatMap((name) => w.entries[name]), edited.flatMap((name) => next[name]!));
  }

  /** Whether some entry needs the table (the footprint's notion). */
  needs(id: TableId): boolean {
    return this.tables.needs(id);
  }

  private own(): void {
    if (!this.shared) return;
    this.lists = { leaves: [...this.lists.leaves], nonPresent: [...this.lists.nonPresent] };
    this.shared = false;
  }

  /**
   * The indexes after `out` left and `inn` came: the table counts cover both lists, so an
   * entry moving between them keeps its tables; the frame index only the leaves.
   */
  private reindex(out: Entries, inn: Entries): void {
    // Leaves alone in and out (no non-present entry moved): both indexes by one comparison.
    if (out.nonPresent.length === 0 && inn.nonPresent.length === 0) {
      const remove = (e: Leaf): void => {
        this.tables.remove(e);
        this.aliases.remove(e);
      };
      const add = (e: Leaf): void => {
        this.tables.add(e);
        this.aliases.add(e);
      };
      changed(out.leaves, inn.leaves, remove, add);
      return;
    }
    changed([...out.leaves, ...out.nonPresent], [...inn.leaves, ...inn.nonPresent], (e) => this.tables.remove(e), (e) => this.tables.add(e));
    changed(out.leaves, inn.leaves, (e) => this.aliases.remove(e), (e) => this.aliases.add(e));
  }
}
