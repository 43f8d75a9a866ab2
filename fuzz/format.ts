/**
 * Readable text for commands, leaves and outcomes, as a kernel developer reads them:
 * hex virtual addresses as ptdump prints them, physical addresses as %pa, sizes in K/M/G.
 * Used by failure details and reports only (never on the hot path).
 */
import { vpnToHex, pfnToHex, PAGE_SIZE } from '../spec/address.ts';
import type { Command } from '../spec/commands.ts';
import { protToString, type Leaf } from '../spec/state.ts';
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
  return parts.length === 0 ? '(none)' : parts.join(',');
}

/** One command on one line: `map root=0 va=0xffff… pa=0x… len=2M prot=RW GLB NX WB`. */
export function formatCommand(c: Command): string {
  switch (c.op) {
    case 'map':
      return `map root=${c.root} va=${va(c.vpn)} pa=${pa(c.pfn)} len=${formatLen(c.pages)} prot=${protToString(c.prot)}${c.maxPage === undefined ? '' : ` maxPage=${c.maxPage}`}`;
    case 'unmap': return `unmap root=${c.root} va=${va(c.vpn)} len=${formatLen(c.pages)}`;
    case 'protect': return `protect va=${va(c.vpn)} len=${formatLen(c.pages)} change=${formatChange(c.change)}${c.alias === true ? ' alias' : ''}`;
    case 'setDirectMapInvalid': return `set_direct_map_invalid${c.flush ? '' : '_noflush'} pa=${pa(c.pfn)} count=${c.count}`;
    case 'setDirectMapDefault': return `set_direct_map_default${c.flush ? '' : '_noflush'} pa=${pa(c.pfn)} count=${c.count}`;
    case 'split': return `split root=${c.root} va=${va(c.vpn)}`;
    case 'collapse': return `collapse root=${c.root} va=${va(c.vpn)} size=${c.size}`;
    case 'translate': return `translate root=${c.root} va=${va(c.vpn)}`;
    case 'access': return `access cpu=${c.cpu} root=${c.root} va=${va(c.vpn)} ${c.kind} ${c.mode}`;
    case 'flush': return `flush va=${va(c.vpn)} len=${formatLen(c.pages)}`;
    case 'flushAll': return 'flushAll';
    case 'ptiClone': return `ptiClone va=${va(c.vpn)} len=${formatLen(c.pages)} level=${c.level}`;
    case 'asiMap': return `asiMap va=${va(c.vpn)} len=${formatLen(c.pages)}`;
    case 'asiUnmap': return `asiUnmap va=${va(c.vpn)} len=${formatLen(c.pages)}`;
    case 'createProcess': return 'createProcess';
    case 'exitProcess': return `exitProcess pid=${c.pid}`;
    case 'mapUser': return `mapUser pid=${c.pid} va=${va(c.vpn)} pa=${pa(c.pfn)} len=${formatLen(c.pages)} prot=${protToString(c.prot)}`;
    case 'unmapUser': return `unmapUser pid=${c.pid} va=${va(c.vpn)} len=${formatLen(c.pages)}`;
  }
}

/** `2M 0xffff888000200000 -> 0x200000 RW GLB NX WB`. */
export function formatLeaf(l: Leaf): string {
  return `${l.size} ${vpnToHex(l.vpn)} -> ${pfnToHex(l.pfn)} ${protToString(l.prot)}`;
}
