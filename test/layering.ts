/** The import rules (docs/ARCHITECTURE.md, "Layers": data flows one way; the data is docs/layers.ts LAYERS) and their checker. */
import { dirname, join, normalize } from 'node:path/posix';
import { LAYERS, type Layer } from '../docs/layers.ts';

export { LAYERS, type Layer } from '../docs/layers.ts';

// `from '…'` (also the closing line of a multi-line import), `import('…')` and a bare `import '…'`.
const IMPORT = /\bfrom\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/g;

/** Rule violations in one source file, `file` relative to the project root (posix). */
export function importViolations(file: string, text: string): string[] {
  const layer = file.split('/')[0] as Layer;
  const allowed: readonly string[] = LAYERS[layer] ?? [];
  const out: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    for (const m of line.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (!spec.startsWith('.')) continue;
      const target = normalize(join(dirname(file), spec));
      const targetLayer = target.split('/')[0]!;
      if (targetLayer !== layer && !allowed.includes(targetLayer)) {
        out.push(`${where} imports ${target}, but ${layer}/ may import only ${allowed.join(', ') || 'nothing of ours'}`);
      }
    }
    if (layer !== 'cli' && layer !== 'test' && /\bprocess\.argv\b/.test(line)) out.push(`${where} uses process.argv, which only cli/ may read`);
    if (layer !== 'cli' && layer !== 'test' && /\bprocess\.exit\b/.test(line)) out.push(`${where} uses process.exit, which only cli/ may call`);
  });
  return out;
}

/**
 * The values impl/ may import from spec/: the trusted exports (spec/README.md, "Trusted
 * exports"), by the module that defines them. Model and impl share them, so refinement
 * cannot check them; everything else the spec computes (leaf sizes, alias ranges,
 * permissions, TLB and obligation updates, frame runs, policy decisions) the impl must
 * decide on its own, or a bug there would sit on both sides unseen. Type imports are free.
 */
export const TRUSTED: Readonly<Record<string, readonly string[]>> = {
  'spec/address.ts': [
    'PAGE_SHIFT', 'PAGE_SIZE', 'PTRS_PER_TABLE', 'VPN_BITS', 'VPN_LIMIT', 'PAGE_SIZES', 'PAGES', 'levelName', 'leafLevel',
    'pagesPerEntry', 'tableIndex', 'vaBits', 'lowerHalfEnd', 'upperHalfStart', 'isCanonical', 'isCanonicalRange', 'isKernelHalf',
    'isAligned', 'parseHex64', 'addrToPage', 'hexToVpn', 'pageToAddr', 'vpnToHex', 'pfnToHex', 'vpnSpan', 'pfnSpan', 'X86_64_LAYOUT_4LEVEL',
    'X86_64_LAYOUT_5LEVEL', 'kernelLayout',
  ],
  'spec/state.ts': ['CACHE_MODES', 'CACHED_TABLE_STATES', 'X86_KERNEL_PAT', 'INIT_MM', 'PAGE_KERNEL', 'PAGE_KERNEL_EXEC', 'PAGE_KERNEL_RO', 'PAGE_KERNEL_ROX'],
  'spec/errors.ts': ['ok', 'OK', 'fail'],
  'spec/contracts/args.ts': ['ptError', 'checkRoot', 'checkRootIn', 'checkVpnFor', 'checkKernelVpn', 'checkKernelPages', 'checkPfnRange', 'checkFrameCount', 'checkProt'],
  'spec/roots.ts': ['PTI_USER_ROOT', 'ASI_GLOBAL_ROOT', 'processRootIds', 'pidOfRoot', 'slotPages', 'LDT_SLOT_PAGES', 'ldtRemap', 'ldtSlotVpn', 'LDT_PROT', 'mirrorsOf', 'ptiAllowlist'],
  'spec/contracts/isolation.ts': [
    'checkPid', 'checkUserRange', 'validateExitProcess', 'validateMapUser', 'validateUnmapUser', 'validatePtiClone', 'PAGEBLOCK_PAGES', 'validateAsiRange', 'validateSetLdt',
  ],
  'spec/clients.ts': [
    'vmallocRegion', 'lazyMaxPages', 'KM_MAX_IDX', 'FIXADDR_TOP', 'FIX_KMAP_BEGIN', 'kmapSlotVpn', 'kmapRegion', 'kmapSlotOf', 'mermapBase',
    'MERMAP_CPU_PAGES', 'MERMAP_USABLE_PAGES', 'MERMAP_ALLOCS', 'mermapSlice', 'mermapRegion', 'mermapCpuOf', 'emptyClients', 'pageblockOf',
    'PAGES_PER_SECTION', 'SECTION_MEMMAP_PAGES', 'MEMORY_BLOCK_PAGES', 'MEMMAP_PAGES', 'vmemmapVpn',
  ],
  'spec/contracts/hotplug.ts': ['validateHotplug'],
  'spec/contracts/clients.ts': [
    'WALK_MAX_PAGES', 'checkCpu', 'validateVmalloc', 'validateVfree', 'validateKmapLocal', 'validateCpuPage', 'validateMermapGet', 'validateAllocUnmapped',
    'validateApply', 'validateWalk', 'validateZap',
  ],
  'spec/contracts/map.ts': ['validateMap'],
  'spec/contracts/unmap.ts': ['validateUnmap'],
  'spec/contracts/protect.ts': ['validateProtect'],
  'spec/contracts/directmap.ts': ['validateSetDirectMap'],
  'spec/contracts/hugepage.ts': ['validateSplit', 'validateCollapse'],
  'spec/contracts/access.ts': ['validateTranslate', 'validateAccess', 'validateFlush', 'validateFlushLocal'],
  'spec/contracts/frames.ts': ['validateFrames'],
  'spec/contracts/outcome.ts': ['POLICY_ARG', 'STRICT_POLICY', 'policyError'],
  'spec/contracts/linux.ts': ['kernelImage', 'TLB_SINGLE_PAGE_FLUSH_CEILING', 'kernelEventText'],
};

/** Whether `name` imported from spec module `target` is trusted; a barrel (`…/index.ts`) passes on what the modules below it trust. */
function isTrusted(target: string, name: string): boolean {
  if (TRUSTED[target]?.includes(name)) return true;
  if (!target.endsWith('/index.ts')) return false;
  const dir = dirname(target) + '/';
  return Object.entries(TRUSTED).some(([module, names]) => module.startsWith(dir) && names.includes(name));
}

// Comments and string literals, in one pass so that neither hides the other's delimiters.
const LEXEMES = /\/\*[\s\S]*?\*\/|\/\/[^\n]*|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g;

/** `text` with its comments blanked, and its string literals too when `strings`; newlines stay, so do offsets and line numbers. */
function blanked(text: string, strings: boolean): string {
  return text.replace(LEXEMES, (t) => (t.startsWith('/') || strings ? t.replace(/[^\n]/g, ' ') : t));
}

// `import <clause> from '…'` and `export <clause> from '…'`, over several lines; group 1 is `type` for a type-only one.
const DECLARATION = /\b(?:import|export)\s+(type\s+)?([^;'"]*?)\s*from\s*['"]([^'"]+)['"]/g;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Value imports of impl/ from spec/ that are not trusted exports, `file` relative to the project root (posix). */
export function trustedImportViolations(file: string, text: string): string[] {
  if (file.split('/')[0] !== 'impl') return [];
  const code = blanked(text, false);
  const lineOf = (at: number): number => code.slice(0, at).split('\n').length;
  const out: string[] = [];
  const flag = (at: number, what: string): void => {
    out.push(`${file}:${lineOf(at)} ${what}`);
  };
  const take = (at: number, target: string, name: string): void => {
    if (!isTrusted(target, name)) flag(at, `imports ${name} from ${target}, which is not a trusted export: the impl must decide that on its own`);
  };
  const specModule = (path: string): string | null => {
    const target = path.startsWith('.') ? normalize(join(dirname(file), path)) : '';
    return target.startsWith('spec/') ? target : null;
  };
  for (const m of code.matchAll(DYNAMIC)) {
    const target = specModule(m[1]!);
    if (target !== null) flag(m.index, `imports ${target} dynamically, so the names it uses cannot be checked`);
  }
  for (const m of code.matchAll(DECLARATION)) {
    const target = specModule(m[3]!);
    if (target === null || m[1] !== undefined) continue;
    const clause = m[2]!.trim();
    // Named: `{ a, b as c, type T }`; the name that counts is the exported one, before `as`.
    for (const item of /\{([^}]*)\}/.exec(clause)?.[1]!.split(',') ?? []) {
      const named = item.trim();
      if (named !== '' && !named.startsWith('type ')) take(m.index, target, named.split(/\s+as\s+/)[0]!);
    }
    // Then a default import and/or `* as ns` (or a bare `*` re-export).
    for (const part of clause.replace(/\{[^}]*\}/, '').split(',').map((x) => x.trim()).filter((x) => x !== '')) {
      const ns = /^\*\s+as\s+([\w$]+)$/.exec(part)?.[1];
      if (part === '*') flag(m.index, `re-exports all of ${target}, more than its trusted exports`);
      else if (ns === undefined) take(m.index, target, 'default');
      else {
        for (const u of namespaceUses(blanked(text, true), m.index + m[0].length, ns)) {
          if (u.name !== null) take(u.at, target, u.name);
          else flag(u.at, `uses the namespace ${ns} of ${target} as a value, so the names it reaches cannot be checked`);
        }
      }
    }
  }
  return out;
}

/**
 * The uses of namespace `ns` in `code` after offset `from`: `ns.name`, or a destructuring
 * `{ a, b: c } = ns` (one use per name), or anything else (name null: the whole module is
 * handed on).
 */
function namespaceUses(code: string, from: number, ns: string): { readonly at: number; readonly name: string | null }[] {
  const out: { at: number; name: string | null }[] = [];
  const use = new RegExp(`(\\{[^{}]*\\}\\s*=\\s*)?(?<![\\w$.])${ns.replaceAll('$', '\\$')}(?![\\w$])(\\s*\\.\\s*([\\w$]+))?`, 'g');
  for (const m of code.slice(from).matchAll(use)) {
    const at = from + m.index;
    if (m[3] !== undefined) out.push({ at, name: m[3] });
    else if (m[1] === undefined) out.push({ at, name: null });
    else for (const item of m[1].replace(/[{}=]/g, '').split(',')) if (item.trim() !== '') out.push({ at, name: item.split(':')[0]!.trim() });
  }
  return out;
}
