/**
 * The operation contracts as data (spec/contracts/contract.ts) against the operation
 * table they describe: one contract per operation, its signature naming the operation's
 * fields, its preconditions allowing exactly the table's outcomes, argument checks first,
 * every refusal naming an argument the operation has, EPERM the strict profile's and
 * naming the policy argument; every text in the inline subset the document renders; and
 * the prose the module headers held, found in the data.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Op } from '../spec/commands.ts';
import { CONTRACTS, CONTRACT_RULES, POLICY_ARG, type OperationContract } from '../spec/contracts/index.ts';
import { OPERATIONS, OPS } from '../spec/operations.ts';

/** Arguments a refusal names besides the operation's fields, and why. */
const KNOWN_ARGS: Readonly<Partial<Record<Op, Readonly<Record<string, string>>>>> = {
  // The page the operation would return is occupied: it names the slot, which the caller never passed.
  kmapLocal: { vpn: 'the slot it would map' },
  mermapGet: { vpn: 'the pages it would map' },
  // vmalloc's EPERM names the operation table's policyArg, the PAGE_KERNEL of its map step.
  vmalloc: { prot: 'the prot its map step maps with' },
  zapPageRange: { op: 'the operation itself, without the isolation capability' },
};

/** Operations that refuse a state with EINVAL after a state check, and why. */
const LATE_EINVAL: Readonly<Partial<Record<Op, string>>> = {
  split: 'a 4K leaf is found by the lookup that found a leaf at all (ENOENT first)',
  collapse: 'a block that cannot collapse is judged only once it is all mapped (ENOENT first)',
  kunmapLocal: 'a slot not on top is judged only once it is a slot the CPU holds (ENOENT first)',
};

const argsOf = (op: Op): Set<string> => new Set([...Object.keys(OPERATIONS[op].fields), 'tablePool', ...Object.keys(KNOWN_ARGS[op] ?? {})]);

/** Every text of a contract, by where it is. */
function texts(op: Op, c: OperationContract): [string, string][] {
  return [
    [`${op}.signature`, c.signature],
    [`${op}.summary`, c.summary],
    ...c.preconditions.map((p, i): [string, string] => [`${op}.preconditions[${i}]`, p.when]),
    ...c.post.map((p, i): [string, string] => [`${op}.post[${i}]`, p]),
    ...c.linux.map((p, i): [string, string] => [`${op}.linux[${i}]`, p]),
    ...c.sources.map((p, i): [string, string] => [`${op}.sources[${i}]`, p]),
  ];
}

const ALL_TEXTS: [string, string][] = [
  ...OPS.flatMap((op) => texts(op, CONTRACTS[op])),
  ...CONTRACT_RULES.flatMap((r): [string, string][] => [
    [`${r.id}.title`, r.title],
    ...r.paragraphs.map((p, i): [string, string] => [`${r.id}.paragraphs[${i}]`, p]),
    ...r.sources.map((p, i): [string, string] => [`${r.id}.sources[${i}]`, p]),
  ]),
];

/** What is wrong with a text as inline Markdown of the subset (`code`, **bold**, *emphasis*), or undefined. */
function subsetError(text: string): string | undefined {
  if (text.trim() !== text || text.length === 0) return 'empty, or space at an end';
  if (/\n/.test(text)) return 'a line break';
  if (((text.match(/`/g) ?? []).length % 2) !== 0) return 'an unbalanced backtick';
  const prose = text.replace(/`[^`]*`/g, 'C');
  if (/\]\(/.test(prose)) return 'a link';
  if (/^(#|- |\* |> |\|)/.test(prose)) return 'a block marker';
  const rest = prose.replace(/\*\*[^*]+\*\*/g, 'B').replace(/\*[^*\s][^*]*\*/g, 'E');
  if (rest.includes('*')) return 'an unbalanced * or **';
  return undefined;
}

describe('the subset check', () => {
  it('accepts code, bold and emphasis and refuses the rest', () => {
    expect(subsetError('`a * b` is **bold** and *emphasis*')).toBeUndefined();
    expect(subsetError('a `b')).toBe('an unbalanced backtick');
    expect(subsetError('a *b')).toBe('an unbalanced * or **');
    expect(subsetError('**a* b')).toBe('an unbalanced * or **');
    expect(subsetError('see [x](#y)')).toBe('a link');
    expect(subsetError('- a list')).toBe('a block marker');
    expect(subsetError('1. a numbered step')).toBeUndefined();
  });
});

describe('the contracts', () => {
  it('every operation has one, in the canonical order', () => {
    expect(Object.keys(CONTRACTS)).toEqual(OPS);
  });

  for (const op of OPS) {
    const c = CONTRACTS[op];
    describe(op, () => {
      it('its signature calls it with its fields', () => {
        expect(c.signature.startsWith(`${op}(`)).toBe(true);
        for (const field of Object.keys(OPERATIONS[op].fields)) expect(c.signature, field).toMatch(new RegExp(`\\b${field}\\b`));
      });

      it('its preconditions fail with exactly the outcomes the operation table allows', () => {
        const errnos = new Set(c.preconditions.map((p) => p.errno));
        expect([...errnos].sort()).toEqual(OPERATIONS[op].outcomes.filter((o) => o !== 'ok').slice().sort());
      });

      it('argument checks come first, and every refusal names an argument of the operation', () => {
        const firstState = c.preconditions.findIndex((p) => p.errno !== 'EINVAL');
        const late = firstState < 0 ? [] : c.preconditions.slice(firstState).filter((p) => p.errno === 'EINVAL');
        if (LATE_EINVAL[op] === undefined) expect(late).toEqual([]);
        else expect(late.length).toBeGreaterThan(0);
        const args = argsOf(op);
        for (const p of c.preconditions) {
          expect(p.arg, `${p.errno} ${p.when}`).toBeDefined();
          expect(args.has(p.arg!), `${p.errno} ${p.arg}`).toBe(true);
          if (p.errno === 'ENOMEM') expect(p.arg).toBe('tablePool');
        }
      });

      it('an EPERM is the strict profile\'s and names the policy argument', () => {
        for (const p of c.preconditions.filter((q) => q.errno === 'EPERM')) {
          expect(p.profile).toBe('strict');
          expect(p.arg).toBe((POLICY_ARG as Readonly<Partial<Record<Op, string>>>)[op]);
        }
      });

      it('says what it is, what it leaves and what it was read from', () => {
        expect(c.summary.length).toBeGreaterThan(20);
        expect(c.post.length).toBeGreaterThan(0);
        expect(c.sources.length).toBeGreaterThan(0);
      });
    });
  }
});

describe('the rules', () => {
  it('have unique ids fit for an anchor, a title and paragraphs', () => {
    const ids = CONTRACT_RULES.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const r of CONTRACT_RULES) {
      expect(r.id).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(r.paragraphs.length).toBeGreaterThan(0);
    }
  });

  it('cover the profiles, the errors, flushes, table lifetime, the split rule and each capability', () => {
    for (const id of ['profiles', 'errors', 'frame-condition', 'range-flushes', 'obligations', 'deferred-table-frees', 'split-rule', 'isolation-roots', 'isolation-tables', 'cpu-local', 'hotplug-memmap']) {
      expect(CONTRACT_RULES.map((r) => r.id)).toContain(id);
    }
  });

  it('a text naming a rule names one that exists', () => {
    // A rule is named by its title in emphasis; emphasis before a colon or a parenthesis is a label (*Text NX*: …).
    const titles = new Set(CONTRACT_RULES.map((r) => r.title));
    const named = ALL_TEXTS.flatMap(([where, text]) =>
      [...text.replace(/`[^`]*`/g, 'C').replace(/\*\*[^*]+\*\*/g, 'B').matchAll(/\*([A-Z][^*]*)\*(?![:(]| \()/g)].map((m) => [where, m[1]!] as const),
    );
    expect(named.length).toBeGreaterThan(10);
    for (const [where, title] of named) expect(titles.has(title), `${where}: ${title}`).toBe(true);
  });
});

describe('every text', () => {
  it('is inline Markdown of the subset', () => {
    const bad = ALL_TEXTS.flatMap(([where, text]) => {
      const e = subsetError(text);
      return e === undefined ? [] : [`${where}: ${e}: ${text}`];
    });
    expect(bad).toEqual([]);
  });
});

describe('the prose the module headers held', () => {
  const ruleText = (id: string): string => CONTRACT_RULES.find((r) => r.id === id)!.paragraphs.join(' ');
  const opText = (op: Op): string => texts(op, CONTRACTS[op]).map(([, t]) => t).join(' ');
  // One line of each old header (spot checks), where it now is.
  const lines: [string, string][] = [
    [opText('map'), 'every obligation that meets `[vpn, vpn+pages)` is flushed whole first'],
    [opText('map'), 'the MMU ANDs U over the walk'],
    [opText('unmap'), 'splitting a 1G leaf at an unaligned edge adds a PMD and a PTE table'],
    [opText('unmap'), '`WARN_ON(!pte_none && !pte_present)`'],
    [opText('protect'), 'never `global`, `present` or `kernel4k`: strict keeps the alias mapped and its page size its own'],
    [opText('protect'), 'CPA: Cannot fixup static protections for PUD split'],
    [opText('protect'), 'RAM above the ISA range, as `pat_pagerange_is_ram` counts it'],
    [opText('setDirectMapInvalid'), 'default sets P and RW'],
    [opText('setDirectMapDefault'), 'a rodata or text frame, or one executable elsewhere, is refused by P4, P3 or P2'],
    [opText('collapse'), '`collapse_pmd_page` never collapses them'],
    [opText('access'), 'of several, as a stale 4K entry under a later 2M fill, the smallest'],
    [opText('flushLocal'), 'since the other CPUs may still cache them'],
    [opText('freeFrames'), 'owed flush or not'],
    [opText('ptiClone'), 'ptspec\'s linux K3 findings in a block cloned while 4K-mapped are about the copy, not the kernel'],
    [opText('setLdt'), '`old_ldt ? !old_ldt->slot : 0`'],
    [opText('vfree'), 'the window the kernel accepts, C1 and D7 findings'],
    [opText('kunmapLocal'), 'one pair a kmap/kunmap cycle'],
    [opText('mermapGet'), 'Decided before anything changes (the series flushes, then fails)'],
    [opText('zapPageRange'), '"1) unhook page 2) TLB invalidate page 3) free page"'],
    [opText('walkPageRange'), 'With 4-level paging the folded p4d level is not visited'],
    [opText('addMemory'), '`alloc_low_page` is unchecked'],
    [opText('removeMemory'), '"For 4-level page tables we do not want to free PUDs"'],
    [ruleText('profiles'), 'the kernel\'s callers of those are void or BUG'],
    [ruleText('errors'), 'refinement compares exactly these (the message is for people)'],
    [ruleText('deferred-table-frees'), 'a level-l table with base page b covers `[b, b + pagesPerEntry(l + 1))`'],
    [ruleText('split-rule'), 'the kernel moves PAT between bit 12 and bit 7'],
    [ruleText('cpa-terms'), 'an entry that set_memory_ro then set_memory_rw left without D would not collapse in the kernel'],
    [ruleText('linux-page-tables'), 'the linux profile breaks S11 after most unmaps'],
    [ruleText('isolation-tables'), 'the KPTI pair shares every table below the pgd'],
    [ruleText('mermap-stale'), 'A flush of part of it leaves it stale'],
    [ruleText('hotplug-memmap'), 'make model and impl disagree for no fault of either'],
  ];
  it('is in the data', () => {
    for (const [text, line] of lines) expect(text).toContain(line);
  });

  it('is gone from the headers, which point to the data instead', () => {
    for (const name of ['map', 'unmap', 'protect', 'directmap', 'hugepage', 'access', 'flush', 'frames', 'isolation', 'clients', 'hotplug', 'outcome', 'linux']) {
      const source = readFileSync(new URL(`../spec/contracts/${name}.ts`, import.meta.url), 'utf8');
      const header = /^\/\*\*[\s\S]*?\*\//.exec(source)![0];
      expect(header.split('\n').length, name).toBeLessThanOrEqual(16);
      expect(header, name).toMatch(/[A-Z_]+_(CONTRACTS?|RULES)\b/);
    }
  });
});
