/**
 * A quick end-to-end check of the encoding layer a user can run anywhere: the kernel's
 * protection values and a deterministic sweep of encode/decode round trips at every
 * level. It stays as `ptspec selfcheck` when the fuzz campaign becomes the main job.
 */
import {
  __PAGE_KERNEL, __PAGE_KERNEL_EXEC, __PAGE_KERNEL_LARGE, __PAGE_KERNEL_RO, __PAGE_KERNEL_ROX, _KERNPG_TABLE,
  _PAGE_TABLE, PAGE_SHARED, decodeLeaf, encodeLeaf, entryToHex, type Entry, type X86Leaf,
} from '../impl/arch/x86_64/entry.ts';
import { PAGES } from '../spec/address.ts';

export interface SelfcheckReport {
  readonly checked: number;
  readonly failed: number;
  readonly lines: readonly string[];
}

const KERNEL_VALUES: readonly [string, Entry, string][] = [
  ['__PAGE_KERNEL', __PAGE_KERNEL, '0x8000000000000163'],
  ['__PAGE_KERNEL_EXEC', __PAGE_KERNEL_EXEC, '0x0000000000000163'],
  ['__PAGE_KERNEL_RO', __PAGE_KERNEL_RO, '0x8000000000000121'],
  ['__PAGE_KERNEL_ROX', __PAGE_KERNEL_ROX, '0x0000000000000121'],
  ['__PAGE_KERNEL_LARGE', __PAGE_KERNEL_LARGE, '0x80000000000001e3'],
  ['_KERNPG_TABLE', _KERNPG_TABLE, '0x0000000000000063'],
  ['_PAGE_TABLE', _PAGE_TABLE, '0x0000000000000067'],
  ['PAGE_SHARED', PAGE_SHARED, '0x8000000000000027'],
];

/** xorshift32: deterministic on every machine, no dependency for 20 lines of sweep. */
function* xorshift(seed: number): Generator<number> {
  let x = seed >>> 0 || 1;
  for (;;) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    yield x;
  }
}

export function selfcheck(rounds = 100_000): SelfcheckReport {
  const lines: string[] = [];
  let failed = 0;
  for (const [name, entry, want] of KERNEL_VALUES) {
    const got = entryToHex(entry);
    const okay = got === want;
    if (!okay) failed++;
    lines.push(`${okay ? 'ok  ' : 'FAIL'} ${name.padEnd(20)} ${got}${okay ? '' : ` (kernel: ${want})`}`);
  }
  const rng = xorshift(0x5eed);
  const next = () => rng.next().value as number;
  let roundTripFailures = 0;
  for (let i = 0; i < rounds; i++) {
    const level = ((i % 3) + 1) as 1 | 2 | 3;
    const align = PAGES[level === 1 ? '4K' : level === 2 ? '2M' : '1G'];
    const bits = next();
    const leaf: X86Leaf = {
      pfn: Math.floor(((next() * 256 + (next() & 0xff)) % 2 ** 40) / align) * align,
      rw: (bits & 1) !== 0, user: (bits & 2) !== 0, pwt: (bits & 4) !== 0, pcd: (bits & 8) !== 0,
      pat: (bits & 16) !== 0, accessed: (bits & 32) !== 0, dirty: (bits & 64) !== 0, global: (bits & 128) !== 0,
      nx: (bits & 256) !== 0, softw: (bits >>> 9) & 7, softwHigh: (bits >>> 12) & 3, pkey: (bits >>> 14) & 15,
    };
    const e = encodeLeaf(level, leaf);
    if (JSON.stringify(decodeLeaf(level, e.lo, e.hi)) !== JSON.stringify(leaf)) roundTripFailures++;
  }
  failed += roundTripFailures;
  lines.push(`${roundTripFailures === 0 ? 'ok  ' : 'FAIL'} encode/decode round trip of ${rounds} random 4K/2M/1G leaves: ${roundTripFailures} mismatches`);
  lines.push(failed === 0 ? 'selfcheck passed' : `selfcheck FAILED: ${failed} problems`);
  return { checked: KERNEL_VALUES.length + rounds, failed, lines };
}
