/**
 * The 30-character flag column of printk_prot (arch/x86/mm/dump_pagetables.c) and its
 * meaning as an abstract `Prot`.
 *
 * Column, in order: `USR `/4 spaces, `RW `/`ro `, `PWT `, `PCD `, `PSE ` (pgd..pmd only:
 * bit 7 is PAT on a pte), `PAT ` (bit 7 on a pte, bit 12 on a pmd/pud leaf), `GLB `,
 * `NX `/`x  `. A non-present entry prints 30 spaces.
 */
import { X86_KERNEL_PAT, type CacheMode, type Prot } from '../../spec/state.ts';
import type { DumpLevel, PtFlags } from './types.ts';

export const FLAG_COLUMN_WIDTH = 30;
const BLANK_COLUMN = ' '.repeat(FLAG_COLUMN_WIDTH);

/** The flag column exactly as the kernel prints it. */
export function flagsText(f: PtFlags | null): string {
  if (f === null) return BLANK_COLUMN;
  return (
    (f.user ? 'USR ' : '    ') +
    (f.rw ? 'RW ' : 'ro ') +
    (f.pwt ? 'PWT ' : '    ') +
    (f.pcd ? 'PCD ' : '    ') +
    (f.pse ? 'PSE ' : '    ') +
    (f.pat ? 'PAT ' : '    ') +
    (f.global ? 'GLB ' : '    ') +
    (f.nx ? 'NX ' : 'x  ')
  );
}

/** The slots of the column in print order; each token may appear once, in this order. */
const SLOTS: readonly (readonly string[])[] = [['USR'], ['RW', 'ro'], ['PWT'], ['PCD'], ['PSE'], ['PAT'], ['GLB'], ['NX', 'x']];

/**
 * Flags from the whitespace-separated tokens of the column (the tokens are unambiguous,
 * so copies whose spacing was mangled still parse). Empty = not present. Returns a
 * reason string when the tokens cannot be what printk_prot printed.
 */
export function parseFlagTokens(tokens: readonly string[], level: DumpLevel): PtFlags | null | string {
  if (tokens.length === 0) return null;
  // chosen[i]: the token printed in slot i, '' when the slot is blank.
  const chosen = ['', '', '', '', '', '', '', ''];
  let slot = 0;
  for (const tok of tokens) {
    while (slot < SLOTS.length && !SLOTS[slot]!.includes(tok)) slot++;
    if (slot === SLOTS.length) {
      const known = SLOTS.some((s) => s.includes(tok));
      return known ? `flag ${tok} out of order (the kernel prints USR RW|ro PWT PCD PSE PAT GLB NX|x)` : `unknown flag ${JSON.stringify(tok)}`;
    }
    chosen[slot++] = tok;
  }
  const [user, rw, pwt, pcd, pse, pat, global, nx] = chosen as [string, string, string, string, string, string, string, string];
  if (rw === '') return 'present entry without RW or ro';
  if (nx === '') return 'present entry without NX or x';
  const f: PtFlags = {
    user: user !== '', rw: rw === 'RW', pwt: pwt !== '', pcd: pcd !== '', pse: pse !== '', pat: pat !== '', global: global !== '', nx: nx === 'NX',
  };
  if (f.pse && level === 'pte') return 'PSE printed on a pte (bit 7 of a pte is PAT; printk_prot never prints PSE there)';
  if (f.pat && (level === 'pgd' || level === 'p4d')) return `PAT printed on a ${level} entry (printk_prot prints PAT only on pte, pmd and pud)`;
  return f;
}

/** The kernel's PAT MSR programming: index PAT*4 + PCD*2 + PWT selects the mode. */
const PAT_INDEX_MODE = X86_KERNEL_PAT;

function cacheMode(f: PtFlags): CacheMode {
  return PAT_INDEX_MODE[(f.pat ? 4 : 0) + (f.pcd ? 2 : 0) + (f.pwt ? 1 : 0)]!;
}

/** The first PAT index with this mode: the encoding the kernel's __cachemode2pte_tbl uses. */
function cacheIndex(mode: CacheMode): number {
  return PAT_INDEX_MODE.indexOf(mode);
}

/**
 * The abstract protection of a leaf with these printed flags. It is exact only where the
 * walk's upper levels do not restrict the leaf (ptdump prints the leaf's own bits); x86
 * has one NX bit, so user execute follows from user access.
 */
export function flagsToProt(f: PtFlags): Prot {
  const exec = !f.nx;
  return { write: f.rw, user: f.user, execKernel: exec, execUser: exec && f.user, global: f.global, cache: cacheMode(f) };
}

/** The printed flags of a leaf with protection `p` at `level` (pte, pmd or pud). */
export function protToFlags(p: Prot, level: DumpLevel): PtFlags {
  const i = cacheIndex(p.cache);
  return {
    user: p.user,
    rw: p.write,
    pwt: (i & 1) !== 0,
    pcd: (i & 2) !== 0,
    pse: level !== 'pte',
    pat: (i & 4) !== 0,
    global: p.global,
    nx: !p.execKernel,
  };
}

export function flagsEqual(a: PtFlags | null, b: PtFlags | null): boolean {
  if (a === null || b === null) return a === b;
  return (
    a.user === b.user && a.rw === b.rw && a.pwt === b.pwt && a.pcd === b.pcd &&
    a.pse === b.pse && a.pat === b.pat && a.global === b.global && a.nx === b.nx
  );
}

/** Permission class for summaries: `RW NX`, `ro x`, `USR RW x`, … */
export function permissionClass(f: PtFlags): string {
  return `${f.user ? 'USR ' : ''}${f.rw ? 'RW' : 'ro'} ${f.nx ? 'NX' : 'x'}`;
}

/** The kernel's W+X rule (note_page → note_wx): RW set and NX clear. */
export function isWx(f: PtFlags | null): boolean {
  return f !== null && f.rw && !f.nx;
}
