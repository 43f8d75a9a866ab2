/**
 * One input line: strip what surrounds ptdump text in the places people copy it from,
 * and say what the rest is.
 *
 * Prefix, in order: indentation and e-mail quotes (`> `); a grep file prefix
 * (`current_kernel:` for a match, `current_kernel-` for a -A/-B context line; the name is
 * the view); then any number of log prefixes: dmesg timestamps `[    0.123456] `, other
 * bracketed groups (`[13:20:20.389][Moby ][Info ] `), printk levels `<6>`, syslog
 * `Nov 26 09:00:00 host kernel: `, and the `x86/mm: ` or `arm64/mm: ` of the W+X checker.
 *
 * Payload kinds: a payload starting with `0x` and 8+ hex digits is a range line and must
 * parse; `---[` a marker; `...` a gap; the W+X checker's messages a verdict; `#…` a
 * comment; grep's `--` a separator; anything else is kept as text.
 */
import type { KernelVerdict } from './types.ts';

export type LineClass =
  | { readonly kind: 'blank' }
  | { readonly kind: 'separator' }
  | { readonly kind: 'comment' }
  | { readonly kind: 'text' }
  | { readonly kind: 'verdict'; readonly view: string; readonly verdict: KernelVerdict }
  | { readonly kind: 'range'; readonly view: string; readonly payload: string }
  | { readonly kind: 'marker'; readonly view: string; readonly name: string }
  | { readonly kind: 'skipped'; readonly view: string; readonly count: number | null }
  | { readonly kind: 'elision'; readonly view: string };

const LOG_PREFIXES: readonly RegExp[] = [
  /^\[[^\]]*\]\s*/, // dmesg timestamp or any bracketed log field
  /^<\d>\s*/, // printk level
  /^[A-Z][a-z]{2}\s+\d{1,2}\s+\d\d:\d\d:\d\d\s+\S+\s+kernel:\s*/, // syslog
  /^kernel:\s*/,
  /^(?:x86|arm64)\/mm:\s*/,
];

function stripLogPrefixes(s: string): string {
  for (;;) {
    const before = s;
    for (const re of LOG_PREFIXES) s = s.replace(re, '');
    if (s === before) return s;
  }
}

const RANGE = /^0x[0-9a-fA-F]{8}/;
const MARKER = /^---\[ .* \]---\s*$/;
/** `...` alone (an elision) or the kernel's `... N entries skipped ...` (checked in full later). */
const GAP = /^\.\.\.(?:\s*$| \d+ entr)/;

function isPtdumpPayload(s: string): boolean {
  return RANGE.test(s) || MARKER.test(s) || GAP.test(s) || verdictOf(s) !== null;
}

function verdictOf(s: string): KernelVerdict | null {
  let m: RegExpExecArray | null;
  if ((m = /^Found insecure W\+X mapping at address (\S+)/.exec(s))) return { type: 'found', address: m[1]! };
  if (/^Checked W\+X mappings: passed, no W\+X pages found\.?\s*$/.test(s)) return { type: 'passed' };
  if ((m = /^Found non-UXN mapping at address (\S+)/.exec(s))) return { type: 'found-non-uxn', address: m[1]! };
  if ((m = /^Checked W\+X mappings: FAILED, (\d+) W\+X pages? found(?:, (\d+) non-UXN pages? found)?\.?\s*$/.exec(s))) {
    return m[2] === undefined ? { type: 'failed', pages: Number(m[1]) } : { type: 'failed', pages: Number(m[1]), nonUxn: Number(m[2]) };
  }
  if (/^Checking user space page tables\s*$/.test(s)) return { type: 'checking-user' };
  if ((m = /^PCI BIOS W\+X mapping (\d+) pages\s*$/.exec(s))) return { type: 'pci-bios', pages: Number(m[1]) };
  return null;
}

/**
 * Split `rest` (indentation already gone) into a grep file name and the payload. The
 * first `:`/`-` of the leading word after which a ptdump payload follows ends the name,
 * so file names with dashes work and a bare range line (whose address contains a dash)
 * is never mistaken for a prefix.
 */
function splitGrepPrefix(rest: string): { view: string; payload: string } {
  const direct = stripLogPrefixes(rest);
  if (isPtdumpPayload(direct)) return { view: '', payload: direct };
  const word = /^[^\s[\]]+/.exec(rest)?.[0] ?? '';
  for (let i = 0; i < word.length; i++) {
    const c = word[i];
    if (c !== ':' && c !== '-') continue;
    const payload = stripLogPrefixes(rest.slice(i + 1));
    // A file name has a letter or digit: `------------[ cut here ]` is a WARN banner, not a prefix.
    if (/[A-Za-z0-9]/.test(word.slice(0, i)) && isPtdumpPayload(payload)) {
      const name = word.slice(0, i);
      return { view: name.slice(name.lastIndexOf('/') + 1), payload };
    }
  }
  return { view: '', payload: direct };
}

export function classifyLine(raw: string): LineClass {
  const line = raw.replace(/\r$/, '');
  if (line.trim() === '') return { kind: 'blank' };
  const rest = line.replace(/^\s*(?:>\s?)*\s*/, '');
  if (rest.startsWith('#')) return { kind: 'comment' };
  if (rest.trimEnd() === '--') return { kind: 'separator' };
  const { view, payload } = splitGrepPrefix(rest);
  if (RANGE.test(payload)) return { kind: 'range', view, payload: payload.trimEnd() };
  const verdict = verdictOf(payload);
  if (verdict !== null) return { kind: 'verdict', view, verdict };
  if (MARKER.test(payload)) return { kind: 'marker', view, name: /^---\[ (.*) \]---/.exec(payload)![1]! };
  if (GAP.test(payload)) {
    if (/^\.\.\.\s*$/.test(payload)) return { kind: 'elision', view };
    const m = /^\.\.\. (\d+) entr(?:y|ies) skipped \.\.\.\s*$/.exec(payload);
    return { kind: 'skipped', view, count: m ? Number(m[1]) : null };
  }
  return { kind: 'text' };
}
