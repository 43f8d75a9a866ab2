/**
 * Argument checks shared by every operation contract, run in the order the core
 * operations check them (first failure wins; outcome.ts, the errors rule): root → vpn →
 * pages → pfn/count → prot → maxPage/size. Each returns the `PtError` (EINVAL, naming
 * the argument) or null, so the model and any implementation refuse exactly the same
 * calls with the same errno and arg; beside them, each check as the contracts state it
 * (contract.ts `Precondition`), so every contract that runs one says it in the same words.
 *
 * Only init_mm exists while the isolation capability is absent, so every root but
 * INIT_MM is EINVAL; every address argument must lie in the kernel half, because the
 * core operations edit init_mm's kernel mappings only (user mappings are `mapUser`).
 */
import { PAGE_SIZES, VPN_LIMIT, isCanonical, isKernelHalf, pfnSpan, pfnToHex, vpnToHex, type PageSize, type Pfn, type Vpn } from '../address.ts';
import type { Errno, PtError } from '../errors.ts';
import { CACHE_MODES, INIT_MM, x86Representable, type Prot, type RootId, type SystemConfig } from '../state.ts';
import type { Precondition } from './contract.ts';

/** A `PtError` with the message format of `fail()` in errors.ts. Trusted: shared by model and impl, not checked by refinement. */
export function ptError(errno: Errno, arg: string, message: string): PtError {
  return { errno, arg, message: `${errno}: ${arg}: ${message}` };
}

/** root: init_mm, the only root without the isolation capability. Trusted: shared by model and impl, not checked by refinement. */
export function checkRoot(root: RootId): PtError | null {
  return root === INIT_MM ? null : ptError('EINVAL', 'root', `root ${root} does not exist (only init_mm, root ${INIT_MM}, without the isolation capability)`);
}

/**
 * root for translate and access: one the state has (`roots`; init_mm alone without the
 * isolation capability). Trusted: shared by model and impl, not checked by refinement.
 */
export function checkRootIn(root: RootId, roots: ReadonlySet<RootId>): PtError | null {
  if (roots.size <= 1) return checkRoot(root);
  return roots.has(root) ? null : ptError('EINVAL', 'root', `root ${root} does not exist`);
}

/**
 * vpn for translate and access: a process's roots walk both halves (any canonical page),
 * every other root the kernel half. Trusted: shared by model and impl, not checked by refinement.
 */
export function checkVpnFor(config: SystemConfig, root: RootId, vpn: Vpn): PtError | null {
  if (root < 3) return checkKernelVpn(config, vpn);
  if (!Number.isInteger(vpn)) return ptError('EINVAL', 'vpn', `${vpn} is not a page number (an integer: the address >> 12)`);
  return isCanonical(vpn, config.levels) ? null : ptError('EINVAL', 'vpn', `${addressOf(vpn)} (page ${vpn}) is not a canonical address for ${config.levels}-level paging`);
}

/** The address of an integer page number, negative ones included (the fuzzer sends them). */
function addressOf(vpn: number): string {
  return vpn < 0 ? `-${vpnToHex(-vpn)}` : vpnToHex(vpn);
}

/** vpn: an integer page number, canonical for the paging mode, in the kernel half. Trusted: shared by model and impl, not checked by refinement. */
export function checkKernelVpn(config: SystemConfig, vpn: Vpn, arg = 'vpn'): PtError | null {
  if (!Number.isInteger(vpn)) return ptError('EINVAL', arg, `${vpn} is not a page number (an integer: the address >> 12)`);
  if (!isCanonical(vpn, config.levels)) return ptError('EINVAL', arg, `${addressOf(vpn)} (page ${vpn}) is not a canonical address for ${config.levels}-level paging`);
  if (!isKernelHalf(vpn, config.levels)) return ptError('EINVAL', arg, `${vpnToHex(vpn)} (page ${vpn}) is in the user half; core operations edit the kernel half only`);
  return null;
}

/** pages: an integer ≥ 1 such that [vpn, vpn+pages) stays inside the kernel half (which ends at VPN_LIMIT). Trusted: shared by model and impl, not checked by refinement. */
export function checkKernelPages(vpn: Vpn, pages: number, arg = 'pages'): PtError | null {
  if (!Number.isInteger(pages) || pages < 1) return ptError('EINVAL', arg, `${pages} is not a page count ≥ 1`);
  if (vpn + pages > VPN_LIMIT) return ptError('EINVAL', arg, `range of ${pages} pages from ${vpnToHex(vpn)} runs past the end of the kernel half`);
  return null;
}

/** pfn: an integer frame such that [pfn, pfn+count) lies in simulated memory [0, config.frames). Trusted: shared by model and impl, not checked by refinement. */
export function checkPfnRange(config: SystemConfig, pfn: Pfn, count: number, arg = 'pfn'): PtError | null {
  if (!Number.isInteger(pfn) || pfn < 0) return ptError('EINVAL', arg, `${pfn} is not a frame number (an integer ≥ 0: the physical address >> 12)`);
  if (pfn >= config.frames) return ptError('EINVAL', arg, `frame ${pfnToHex(pfn)} (pfn ${pfn}) is outside memory [0x0, ${pfnToHex(config.frames)})`);
  if (pfn + count > config.frames) return ptError('EINVAL', arg, `frames ${pfnSpan(pfn, count)} run past the end of memory at ${pfnToHex(config.frames)} (${config.frames} frames)`);
  return null;
}

/** count (set_direct_map_*): an integer ≥ 1 with [pfn, pfn+count) inside memory. Trusted: shared by model and impl, not checked by refinement. */
export function checkFrameCount(config: SystemConfig, pfn: Pfn, count: number, arg = 'count'): PtError | null {
  if (!Number.isInteger(count) || count < 1) return ptError('EINVAL', arg, `${count} is not a frame count ≥ 1`);
  if (pfn + count > config.frames) return ptError('EINVAL', arg, `frames ${pfnSpan(pfn, count)} run past the end of memory at ${pfnToHex(config.frames)} (${config.frames} frames)`);
  return null;
}

/** prot: a known cache mode, and representable with x86's single NX bit (execUser = user && execKernel). Trusted: shared by model and impl, not checked by refinement. */
export function checkProt(prot: Prot, arg = 'prot'): PtError | null {
  if (!CACHE_MODES.includes(prot.cache)) return ptError('EINVAL', arg, `unknown cache mode ${String(prot.cache)}`);
  if (!x86Representable(prot)) return ptError('EINVAL', arg, 'execUser must equal user && execKernel (x86 has one NX bit)');
  return null;
}

/** Leaf sizes this CPU can map: 4K always, 2M with PSE, 1G with GB pages. */
export function sizeSupported(config: SystemConfig, size: PageSize): boolean {
  return size === '4K' || (size === '2M' ? config.features.pse : config.features.gbpages);
}

export function isPageSize(size: unknown): size is PageSize {
  return (PAGE_SIZES as readonly unknown[]).includes(size);
}

/** An argument check as a contract states it: EINVAL naming `arg`. */
export const einval = (arg: string, when: string): Precondition => ({ errno: 'EINVAL', arg, when });

/** checkRoot. */
export const ROOT_ARG = einval('root', '`root` is not init_mm (0)');
/** checkKernelVpn. */
export const KERNEL_VPN_ARG = einval('vpn', 'not an integer canonical page number in the kernel half');
/** checkKernelPages. */
export const KERNEL_PAGES_ARG = einval('pages', 'not an integer ≥ 1, or the range leaves the kernel half');
/** checkPfnRange of one frame. */
export const FRAME_ARG = einval('pfn', 'not an integer frame in `[0, config.frames)`');
/** checkPfnRange of `pages` frames. */
export const FRAMES_ARG = einval('pfn', '`[pfn, pfn+pages)` not inside memory `[0, config.frames)`');
/** checkFrameCount. */
export const FRAME_COUNT_ARG = einval('count', 'not an integer ≥ 1, or `[pfn, pfn+count)` runs past memory');
/** checkProt. */
export const PROT_ARG = einval('prot', 'unknown cache mode, or not x86-representable (`execUser ≠ user && execKernel`)');
