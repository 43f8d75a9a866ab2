/**
 * Readable text for commands, leaves and outcomes, as a kernel developer reads them:
 * hex virtual addresses as ptdump prints them, physical addresses as %pa, sizes in K/M/G.
 * Used by failure details and reports only (never on the hot path).
 */
import { vpnToHex, pfnToHex, PAGE_SIZE } from '../spec/address.ts';
import type { Command } from '../spec/commands.ts';
import { OPERATIONS, fieldsOf, type FieldKind } from '../spec/operations.ts';
import { protToString, type Leaf, type Prot } from '../spec/state.ts';
import type { ProtChange } from '../spec/system.ts';

/** Pages as bytes with the largest exact unit (513 pages = 2052K), as ptdump sizes ranges. */
export function formatLen(pages: number): string {
  if (!Number.isInteger(pages) || pages < 1) return `${pages}pages`;
  let n = pages * PAGE_SIZE;
  let unit = 0;
  const units = ['B', 'K', 'M', 'G', 'T', 'P'];
  while (n % 1024 === 0 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return `${n}${units[unit]}`;
}

/** A page number as a hex VA when it is one, else the raw (invalid) value. */
function va(vpn: number): string {
  return Number.isInteger(vpn) && vpn >= 0 && vpn < 2 ** 52 ? vpnToHex(vpn) : String(vpn);
}

function pa(pfn: number): string {
  return Number.isInteger(pfn) && pfn >= 0 ? pfnToHex(pfn) : String(pfn);
}

function formatChange(c: ProtChange): string {
  const parts: string[] = [];
  if (c.write !== undefined) parts.push(c.write ? '+RW' : '-RW');
  if (c.exec !== undefined) parts.push(c.exec ? '+x' : '+NX');
  if (c.global !== undefined) parts.push(c.global ? '+GLB' : '-GLB');
  if (c.cache !== undefined) parts.push(c.cache);
  if (c.present !== undefined) parts.push(c.present ? '+P' : '-P');
  if (c.kernel4k !== undefined) parts.push('+4K');
  return parts.length === 0 ? '(none)' : parts.join(',');
}

/** How a field of each kind prints: `name=value`, a bare value, or nothing (the label shows it). */
function formatField(kind: FieldKind, value: unknown): string | null {
  switch (kind) {
    case 'root': return `root=${String(value)}`;
    case 'vpn': case 'userVpn': return `va=${va(value as number)}`;
    case 'pfn': return `pa=${pa(value as number)}`;
    case 'pages': return `len=${formatLen(value as number)}`;
    case 'count': return `count=${String(value)}`;
    case 'cpu': return `cpu=${String(value)}`;
    case 'pid': return `pid=${String(value)}`;
    case 'prot': return `prot=${protToString(value as Prot)}`;
    case 'change': return `change=${formatChange(value as ProtChange)}`;
    case 'maxPage': return `maxPage=${String(value)}`;
    case 'hugeSize': return `size=${String(value)}`;
    case 'cloneLevel': return `level=${String(value)}`;
    case 'accessKind': case 'accessMode': return String(value);
    case 'flush': case 'lazy': return null;
    case 'alias': return value === true ? 'alias' : null;
    case 'collapse': return value === true ? 'collapse' : null;
    case 'huge': return value === true ? 'huge' : null;
    case 'resetPerms': return value === true ? 'VM_FLUSH_RESET_PERMS' : null;
  }
}

/** One command on one line, fields in table order: `map root=0 va=0xffff… pa=0x… len=2M prot=RW GLB NX WB`. */
export function formatCommand(c: Command): string {
  const entry = OPERATIONS[c.op] as { readonly label?: (c: Command) => string };
  const parts = [entry.label?.(c) ?? c.op];
  for (const [name, kind] of fieldsOf(c.op)) {
    const value = (c as unknown as Record<string, unknown>)[name];
    const text = value === undefined ? null : formatField(kind, value);
    if (text !== null) parts.push(text);
  }
  return parts.join(' ');
}

/** `2M 0xffff888000200000 -> 0x200000 RW GLB NX WB`. */
export function formatLeaf(l: Leaf): string {
  return `${l.size} ${vpnToHex(l.vpn)} -> ${pfnToHex(l.pfn)} ${protToString(l.prot)}`;
}
