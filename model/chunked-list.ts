/**
 * A sorted list kept as a run of chunks (short sorted arrays, each non-empty, their
 * concatenation sorted), so that an insert or a removal moves the entries of one chunk
 * and not of the whole list: with tens of thousands of entries (the 4K vmalloc leaves of
 * a large machine) one splice of the flat array costs more than the command around it.
 * A position is found by a binary search over the chunks' last entries, then one inside
 * the chunk.
 *
 * Copy on write by chunk: a list edits in place only the chunks it owns (those carrying
 * its token). `clone()` copies the array of chunk references and gives both lists fresh
 * tokens, so neither owns a chunk they share: the first edit of a chunk by either side
 * copies that chunk alone, and the other side never sees it change.
 */

/** A chunk splits in two past MAX entries; one below MIN (after a removal) merges with a neighbour. */
const MAX = 512;
const MIN = 64;

/** The first index in [0, n) where `before` turns false (it is true up to some index, then false): a binary search. */
function firstNot(n: number, before: (i: number) => boolean): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface Chunk<T> {
  readonly items: T[];
  /** The token of the list that may edit `items` in place. */
  readonly owner: object;
}

export class ChunkedList<T, K> {
  private chunks: Chunk<T>[] = [];
  private token: object = {};
  private count = 0;

  /**
   * `before(item, key)`: whether the item sorts before the key; `keyOf(item)`: the key an
   * item sorts at (no two items of the list have the same key).
   */
  constructor(
    private readonly before: (item: T, key: K) => boolean,
    private readonly keyOf: (item: T) => K,
  ) {}

  get length(): number {
    return this.count;
  }

  /** Adds an item (its key not in the list). */
  insert(item: T): void {
    const key = this.keyOf(item);
    if (this.chunks.length === 0) {
      this.chunks.push({ items: [item], owner: this.token });
      this.count = 1;
      return;
    }
    // Past the last item: it goes at the end of the last chunk.
    const c = Math.min(this.chunkAt(key), this.chunks.length - 1);
    const items = this.writable(c);
    items.splice(this.lowerBound(items, key), 0, item);
    this.count++;
    if (items.length > MAX) this.chunks.splice(c + 1, 0, { items: items.splice(items.length >>> 1), owner: this.token });
  }

  /** Takes out this very item (by identity); false when the list does not hold it. */
  remove(item: T): boolean {
    const key = this.keyOf(item);
    const c = this.chunkAt(key);
    const chunk = this.chunks[c];
    if (chunk === undefined) return false;
    const i = this.lowerBound(chunk.items, key);
    if (chunk.items[i] !== item) return false;
    const items = this.writable(c);
    items.splice(i, 1);
    this.count--;
    if (items.length < MIN) this.mergeAround(c);
    return true;
  }

  /** The items from the first not before `key` on, in order, for as long as `more` says so. */
  forEachFrom(key: K, more: (item: T) => boolean): void {
    const first = this.chunkAt(key);
    for (let c = first; c < this.chunks.length; c++) {
      const items = this.chunks[c]!.items;
      for (let i = c === first ? this.lowerBound(items, key) : 0; i < items.length; i++) if (!more(items[i]!)) return;
    }
  }

  /** Every item, in order. */
  toArray(): T[] {
    return this.chunks.flatMap((c) => c.items);
  }

  /** An independent list with the same items, sharing every chunk until one side edits it. */
  clone(): ChunkedList<T, K> {
    const copy = new ChunkedList<T, K>(this.before, this.keyOf);
    copy.chunks = [...this.chunks];
    copy.count = this.count;
    this.token = {};
    return copy;
  }

  /** Index of the first chunk whose last item is not before `key` (chunks.length: none). */
  private chunkAt(key: K): number {
    return firstNot(this.chunks.length, (i) => {
      const items = this.chunks[i]!.items;
      return this.before(items[items.length - 1]!, key);
    });
  }

  /** First index of `items` not before `key`. */
  private lowerBound(items: readonly T[], key: K): number {
    return firstNot(items.length, (i) => this.before(items[i]!, key));
  }

  /** Chunk c's items, copied first unless this list owns them. */
  private writable(c: number): T[] {
    const chunk = this.chunks[c]!;
    if (chunk.owner === this.token) return chunk.items;
    const own = { items: chunk.items.slice(), owner: this.token };
    this.chunks[c] = own;
    return own.items;
  }

  /** Chunk c, grown short, joined with its neighbour (split again if that is too long); dropped when empty and alone. */
  private mergeAround(c: number): void {
    if (this.chunks.length === 1) {
      if (this.count === 0) this.chunks = [];
      return;
    }
    const left = c > 0 ? c - 1 : c;
    const joined = this.writable(left);
    joined.push(...this.chunks[left + 1]!.items);
    this.chunks.splice(left + 1, 1);
    if (joined.length > MAX) this.chunks.splice(left + 1, 0, { items: joined.splice(joined.length >>> 1), owner: this.token });
  }
}
