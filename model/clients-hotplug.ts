/**
 * Memory hotplug (spec/contracts/hotplug.ts) on the model, through the clients' host
 * (model/clients-host.ts): addMemory and removeMemory of whole memory blocks on a draft of
 * the model.
 *
 * addMemory makes the blocks' frames data (memory, not free yet), fills each block's direct
 * map and maps its struct pages on its first frames (install: judged by the strict policy,
 * held to the pool), then onlines every block as freeFrames frees its frames past the
 * memmap (so strict judges the onlining as a free: D4, D6, D7, C1). Strict installs every
 * block's leaves at once and commits only when all of it succeeded; linux goes block by
 * block and keeps what the kernel leaves after a failed block: its direct map, with the
 * blocks before it removed again, and the warnings it printed (once each after boot).
 *
 * removeMemory unmaps the vmemmap and the direct map of each block (strict: as unmap
 * unmaps them; linux: remove_pagetable's walk, the present leaves wholly inside by the
 * host's clear, then the empty tables below the top-level entries' ones that the walk met
 * freed), flushes everything and makes the frames absent.
 */
import { pagesPerEntry, pfnSpan, pfnToHex, vpnSpan, type Level, type PagingLevels, type Pfn, type Vpn } from '../spec/address.ts';
import { MEMMAP_PAGES, MEMORY_BLOCK_PAGES, memoryBlocks, vmemmapVpn } from '../spec/clients.ts';
import { directMapVpn } from '../spec/contracts/directmap.ts';
import { validateHotplug } from '../spec/contracts/hotplug.ts';
import { PAGEBLOCK_PAGES } from '../spec/contracts/isolation.ts';
import { fail, OK, type Result } from '../spec/errors.ts';
import { PAGE_KERNEL, type FrameRun, type Leaf, type SystemConfig } from '../spec/state.ts';
import { asOp, err, type ClientDraft, type ClientsHost } from './clients-host.ts';
import { populateLeaves } from './clients-apply.ts';
import { entriesMeeting, pagesWithEntry } from './entries.ts';
import { firstFrameNot, setFacts, setFrameUse } from './frames.ts';
import { intersecting, leafEnd, makeLeaf } from './leaves.ts';
import { tableAt, type TableId } from './tables.ts';

const SLOT = 512;

export function addMemory(host: ClientsHost, pfn: Pfn, count: number): Result<void> {
  const { config } = host;
  const bad = validateHotplug(config, pfn, count);
  if (bad) return err(bad);
  const now = host.current();
  const busy = firstFrameNot(now.state().frames, pfn, count, 'absent');
  if (busy !== undefined) return fail('EEXIST', 'pfn', `frame ${pfnToHex(busy)} of ${pfnSpan(pfn, count)} is memory already (register_memory_resource: the range is busy)`);
  const blocks = memoryBlocks(pfn, count);
  const taken = blocks.find((b) => pagesWithEntry(now.entries(), vmemmapVpn(config.levels, b), MEMMAP_PAGES) > 0);
  if (taken !== undefined) return fail('EEXIST', 'pfn', `the struct pages of the block at ${pfnToHex(taken)} are mapped already at ${vpnSpan(vmemmapVpn(config.levels, taken), MEMMAP_PAGES)}`);
  return host.profile === 'strict' ? addStrict(host, pfn, count, blocks) : addLinux(host, pfn, count, blocks);
}

/** Memory before anything maps it (D8), in use until it is onlined (D4 counts free frames only). */
const asData = (d: ClientDraft, pfn: Pfn, count: number): void => d.setFrames(setFrameUse(d.state().frames, pfn, count, 'data'));

/** online_pages of every block, as freeFrames of its frames past the memmap: strict judges it as a free. */
function online(d: ClientDraft, blocks: readonly Pfn[]): Result<void> {
  for (const b of blocks) {
    const r = d.sys.freeFrames(b + MEMMAP_PAGES, MEMORY_BLOCK_PAGES - MEMMAP_PAGES);
    if (!r.ok) return r;
  }
  return OK;
}

/**
 * Every block's leaves in one install (its EPERM, for the leaves, comes before its ENOMEM),
 * then the onlining. Where the leaves do not fit, the onlining is judged on a draft of its
 * own: a refusal by the policy still comes before ENOMEM, and the new leaves map no frame
 * the onlining frees but at its own direct-map page.
 */
function addStrict(host: ClientsHost, pfn: Pfn, count: number, blocks: readonly Pfn[]): Result<void> {
  const d = host.draft();
  asData(d, pfn, count);
  const { config } = host;
  const mapped = d.install('addMemory', [...blocks.flatMap((b) => directMapFill(config, d, b)), ...blocks.flatMap((b) => memmapLeaves(config, d, b))]);
  if (!mapped.ok) {
    if (mapped.error.errno !== 'ENOMEM') return mapped;
    const alone = host.draft();
    asData(alone, pfn, count);
    const refused = online(alone, blocks);
    return refused.ok ? mapped : refused;
  }
  const onlined = online(d, blocks);
  if (!onlined.ok) return onlined;
  record(d, blocks);
  return OK;
}

/**
 * Block by block, each step's result kept: arch_add_memory does not undo
 * init_memory_mapping when add_pages fails, and remove_memory_blocks_and_altmaps removes
 * the blocks added before the one that failed; the frames stay absent.
 */
function addLinux(host: ClientsHost, pfn: Pfn, count: number, blocks: readonly Pfn[]): Result<void> {
  const d = host.draft();
  asData(d, pfn, count);
  const { config } = host;
  for (const [k, b] of blocks.entries()) {
    const mapped = d.install('addMemory', directMapFill(config, d, b));
    if (!mapped.ok) return failLinux(host, d, pfn, count, blocks.slice(0, k), mapped);
    if (!config.features.pse) d.printOnce({ kind: 'vmemmap-no-altmap', vpn: vmemmapVpn(config.levels, b), pages: MEMMAP_PAGES, pfn: b });
    const done = config.features.pse ? d.install('addMemory', memmapLeaves(config, d, b))
      : fail('ENOMEM', 'tablePool', `vmemmap_populate: no cpu support for altmap allocations (no PSE) for the block at ${pfnToHex(b)}`);
    if (done.ok) continue;
    // __add_pages failed after init_memory_mapping: add_pages warns, and the block's direct map stays.
    d.printOnce({ kind: 'add-pages-failed', vpn: directMapVpn(config.levels, b), pages: MEMORY_BLOCK_PAGES, pfn: b });
    return failLinux(host, d, pfn, count, blocks.slice(0, k), done);
  }
  // Linux refuses no free.
  online(d, blocks);
  record(d, blocks);
  return OK;
}

/**
 * What linux keeps of a failed add_memory: the frames absent again, the blocks added
 * before the failed one removed again (remove_memory_blocks_and_altmaps), the rest of the
 * draft (the failed block's direct map, what the kernel printed) committed.
 */
function failLinux(host: ClientsHost, d: ClientDraft & { commit(): void }, pfn: Pfn, count: number, before: readonly Pfn[], failed: Result<void>): Result<void> {
  d.setFrames(setFrameUse(d.state().frames, pfn, count, 'absent'));
  if (before.length > 0) removeBlocks(host, d, before);
  d.commit();
  return failed;
}

/** The blocks recorded (ClientState.memory, sorted), and the draft adopted. */
function record(d: ClientDraft & { commit(): void }, blocks: readonly Pfn[]): void {
  d.setClients({ ...d.clients(), memory: [...d.clients().memory, ...blocks].sort((x, y) => x - y) });
  d.commit();
}

/**
 * Whether a 2M leaf goes into the 2M slot at vpn: the CPU has PSE and the pmd entry is
 * none, no entry there and no PTE table (linux keeps the ones its vunmaps empty; phys_pmd_init
 * and vmemmap_populate_hugepages fill such a table with 4K entries instead).
 */
function slotIsNone(config: SystemConfig, d: ClientDraft, vpn: Vpn): boolean {
  return config.features.pse && entriesMeeting(d.entries(), vpn, SLOT).length === 0 && !d.kept().has(tableAt(1, vpn));
}

/**
 * init_memory_mapping of block `b` (phys_pmd_init / phys_pte_init after boot): a 2M
 * PAGE_KERNEL leaf in each 2M slot whose pmd is none, 4K leaves on every other page
 * without an entry; the entries there stay.
 */
function directMapFill(config: SystemConfig, d: ClientDraft, b: Pfn): Leaf[] {
  const e = d.entries();
  const prot = d.leafProt(PAGE_KERNEL);
  const out: Leaf[] = [];
  for (let slot = 0; slot < MEMORY_BLOCK_PAGES; slot += SLOT) {
    const vpn = directMapVpn(config.levels, b + slot);
    if (slotIsNone(config, d, vpn)) out.push(makeLeaf(vpn, b + slot, '2M', prot));
    else out.push(...populateLeaves(e, vpn, vpn + SLOT, b + slot, prot));
  }
  return out;
}

/**
 * vmemmap_populate with block `b`'s altmap: its struct pages on its first MEMMAP_PAGES
 * frames, one 2M leaf where the pmd is none (with PSE), else 4K leaves (strict without PSE;
 * linux into a PTE table it kept there, vmemmap_populate_basepages from the altmap).
 */
function memmapLeaves(config: SystemConfig, d: ClientDraft, b: Pfn): Leaf[] {
  const vpn = vmemmapVpn(config.levels, b);
  const prot = d.leafProt(PAGE_KERNEL);
  if (slotIsNone(config, d, vpn)) return [makeLeaf(vpn, b, '2M', prot)];
  return Array.from({ length: MEMMAP_PAGES }, (_, i) => makeLeaf(vpn + i, b + i, '4K', prot));
}

export function removeMemory(host: ClientsHost, pfn: Pfn, count: number): Result<void> {
  const bad = validateHotplug(host.config, pfn, count);
  if (bad) return err(bad);
  const now = host.current();
  const clients = now.clients();
  const blocks = memoryBlocks(pfn, count);
  const missing = blocks.find((b) => !clients.memory.includes(b));
  if (missing !== undefined) return fail('ENOENT', 'pfn', `the memory block at ${pfnToHex(missing)} was not hot-added`);
  const frames = now.state().frames;
  for (const b of blocks) {
    const used = firstFrameNot(frames, b + MEMMAP_PAGES, MEMORY_BLOCK_PAGES - MEMMAP_PAGES, 'free');
    if (used !== undefined) return fail('EBUSY', 'pfn', `frame ${pfnToHex(used)} of the block at ${pfnToHex(b)} is in use: offline_pages cannot offline it`);
  }
  const pooled = clients.unmapped.find((pb) => pb + PAGEBLOCK_PAGES > pfn && pb < pfn + count);
  if (pooled !== undefined) return fail('EBUSY', 'pfn', `the pageblock at ${pfnToHex(pooled)} belongs to the __GFP_UNMAPPED pool`);
  const d = host.draft();
  const removed = removeBlocks(host, d, blocks);
  if (!removed.ok) return removed;
  const gone = new Set(blocks);
  d.setFrames(setFacts(d.state().frames, pfn, count, (r): FrameRun => ({ ...r, use: 'absent', noDirectMap: false })));
  d.setClients({ ...d.clients(), memory: d.clients().memory.filter((b) => !gone.has(b)) });
  d.commit();
  return OK;
}

/**
 * arch_remove_memory of each block: vmemmap_free of its struct pages, then
 * kernel_physical_mapping_remove of its direct map (strict: unmap, whose EPERM is
 * removeMemory's; linux: the present leaves wholly inside, which cannot fail), then one
 * flush_tlb_all.
 */
function removeBlocks(host: ClientsHost, d: ClientDraft, blocks: readonly Pfn[]): Result<void> {
  const { levels } = host.config;
  for (const b of blocks) {
    for (const [vpn, pages] of [[vmemmapVpn(levels, b), MEMMAP_PAGES], [directMapVpn(levels, b), MEMORY_BLOCK_PAGES]] as const) {
      if (host.profile === 'linux') {
        clearPresent(d, vpn, pages);
        d.freeKept(emptyTablesMet(levels, d.kept(), vpn, pages));
      } else if (pagesWithEntry(d.entries(), vpn, pages) > 0) {
        const r = d.sys.unmap(0, vpn, pages);
        if (!r.ok) return err(asOp('removeMemory', r.error));
      }
    }
  }
  return d.sys.flushAll();
}

/**
 * remove_pagetable's clear under linux: the present leaves wholly inside [vpn, vpn+pages)
 * go, a run of adjacent ones at a time (no non-present entry lies between two adjacent
 * leaves); non-present entries and leaves cut by the range stay.
 */
// What the clear owes (removeMemory) is discharged by the flush_tlb_all that ends the same step.
function clearPresent(d: ClientDraft, vpn: Vpn, pages: number): void {
  const leaves = d.entries().leaves;
  const [lo, hi] = intersecting(leaves, vpn, pages);
  const inside = leaves.slice(lo, hi).filter((l) => l.vpn >= vpn && leafEnd(l) <= vpn + pages);
  let run: { vpn: Vpn; end: Vpn } | undefined;
  for (const l of inside) {
    if (run !== undefined && run.end === l.vpn) run.end = leafEnd(l);
    else {
      if (run !== undefined) d.clear(run.vpn, run.end - run.vpn, 'removeMemory');
      run = { vpn: l.vpn, end: leafEnd(l) };
    }
  }
  if (run !== undefined) d.clear(run.vpn, run.end - run.vpn, 'removeMemory');
}

/**
 * The tables remove_pagetable frees after its clear of [vpn, vpn+pages): free_pte_table,
 * free_pmd_table and (5-level) free_pud_table free every table below the ones the
 * top-level entries point to whose parent entry the walk met (its span meets the range)
 * and whose entries are all none, from the bottom up. Here: the kept tables there (the
 * clear's, and those a vunmap kept before), each once every kept table below it went too.
 */
function emptyTablesMet(levels: PagingLevels, kept: ReadonlySet<TableId>, vpn: Vpn, pages: number): TableId[] {
  const freed = new Set<TableId>();
  for (let level = 1; level <= levels - 2; level++) {
    const span = pagesPerEntry((level + 1) as Level);
    const below = pagesPerEntry(level as Level);
    for (let at = vpn - (vpn % span); at < vpn + pages; at += span) {
      const id = tableAt(level as Level, at);
      if (!kept.has(id)) continue;
      // A kept table below it that stays (its span outside the range) keeps its entry from being none.
      const stays = level > 1 && Array.from({ length: 512 }, (_, i) => tableAt((level - 1) as Level, at + i * below)).some((c) => kept.has(c) && !freed.has(c));
      if (!stays) freed.add(id);
    }
  }
  return [...freed];
}
