/**
 * The committed site, docs/html/, in a real browser: Debian's Chromium, headless, driven
 * by playwright-core, every page opened from file:// as a reader opens it. Checks that
 * nothing logs an error or fails to load, that every in-document link lands on an
 * element with its id, that every figure renders, and that the search finds P1 by its
 * id and by "W+X". Slow (a browser start and a page load per page): .ci/run runs it with
 * the slow suites, after installing chromium where missing.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SITE = fileURLToPath(new URL('../docs/html/', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
/** What this machine's Chromium needs: no sandbox (a container), no GPU, nothing fetched behind our back. */
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** The invariant the search must find, as its section heading names it (by id or by name). */
const P1_HEADING = /\bP1\b|no_leaf_writable_and_executable/;

/** What one loaded page showed: its problems, its ids with their headings, its links, its figures. */
interface PageFacts {
  readonly problems: string[];
  /** Every id on the page, with the text of the heading of the element that holds it. */
  readonly headings: Map<string, string>;
  readonly hrefs: string[];
  /** Figures that did not render, by src or by a description of the inline svg. */
  readonly blankFigures: string[];
  readonly figures: number;
}

let context: BrowserContext;
let profile: string;
const facts = new Map<string, PageFacts>();

const urlOf = (file: string): string => pathToFileURL(join(SITE, file)).href;

/** Opens a page of the site, recording console errors, page errors, failed and off-disk requests. */
async function open(file: string, problems: string[]): Promise<Page> {
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`failed request: ${r.url()} (${r.failure()?.errorText ?? 'unknown'})`));
  page.on('request', (r) => {
    if (!/^(file|data):/.test(r.url())) problems.push(`request off the file system: ${r.url()}`);
  });
  await page.goto(urlOf(file), { waitUntil: 'load' });
  return page;
}

async function load(file: string): Promise<PageFacts> {
  const problems: string[] = [];
  const page = await open(file, problems);
  // Each callback runs in the page (the project compiles without the DOM's types, so they are typed loosely).
  const headings = await page.locator('[id]').evaluateAll((els) =>
    els.map((el) => {
      const h = el.matches('h1, h2, h3, h4, h5, h6') ? el : el.querySelector(':scope > :is(h1, h2, h3, h4, h5, h6)');
      return [el.id, h?.textContent ?? ''] as [string, string];
    }),
  );
  const hrefs = await page.locator('a[href]').evaluateAll((as) => as.map((a) => a.getAttribute('href') as string));
  const images = await page.locator('img').evaluateAll((imgs) => imgs.map((img) => ({ src: img.getAttribute('src') as string, drawn: img.complete && img.naturalWidth > 0 })));
  const svgs = await page.locator('svg:not(svg svg)').evaluateAll((all) =>
    all.map((svg) => {
      const box = svg.getBoundingClientRect();
      return { src: `inline svg in #${svg.closest('[id]')?.id ?? '?'}`, drawn: box.width > 0 && box.height > 0 };
    }),
  );
  await page.close();
  const figures = [...images, ...svgs];
  return { problems, headings: new Map(headings), hrefs, blankFigures: figures.filter((f) => !f.drawn).map((f) => f.src), figures: figures.length };
}

/** The page file and id an in-site href points at; null for an https link. */
function target(from: string, href: string): { file: string; id: string | undefined } | null {
  if (href.startsWith('https://')) return null;
  const [file, id] = href.split('#') as [string, string | undefined];
  return { file: file === '' ? from : file, id };
}

/** Types the query into index.html's search box and returns the result links' hrefs. */
async function search(query: string): Promise<string[]> {
  const problems: string[] = [];
  const page = await open('index.html', problems);
  await page.locator('#search_box').pressSequentially(query);
  await page.locator('#search_results a').first().waitFor({ timeout: 10_000 });
  const hrefs = await page.locator('#search_results a').evaluateAll((as) => as.map((a) => a.getAttribute('href') as string));
  await page.close();
  expect(problems).toEqual([]);
  return hrefs;
}

/** Whether one of the hrefs leads to the section of invariant P1. */
function findsP1(hrefs: readonly string[]): boolean {
  return hrefs.some((href) => {
    const t = target('index.html', href);
    return t !== null && t.id !== undefined && P1_HEADING.test(facts.get(t.file)?.headings.get(t.id) ?? '');
  });
}

describe('docs/html in headless Chromium', () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install --no-install-recommends chromium); .ci/run does so where missing`);
    }
    if (!existsSync(join(SITE, 'index.html'))) throw new Error(`${SITE}index.html is missing: generate the site with \`ptspec docs\` and commit it`);
    profile = mkdtempSync(join(tmpdir(), 'ptspec-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
    const pages = readdirSync(SITE).filter((f) => f.endsWith('.html')).sort();
    for (const file of pages) facts.set(file, await load(file));
  }, 240_000);

  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('opens index.html and a page per section, each without console errors, page errors or failed requests', () => {
    expect(facts.size).toBeGreaterThan(1);
    const problems = [...facts].flatMap(([file, f]) => f.problems.map((p) => `${file}: ${p}`));
    expect(problems).toEqual([]);
  });

  it('resolves every link to #id or page.html#id to an element with that id on that page', () => {
    const broken: string[] = [];
    let followed = 0;
    for (const [file, f] of facts) {
      for (const href of f.hrefs) {
        const t = target(file, href);
        if (t === null) continue;
        const on = facts.get(t.file);
        if (on === undefined) broken.push(`${file}: ${href} (no page ${t.file})`);
        else if (t.id !== undefined && !on.headings.has(t.id)) broken.push(`${file}: ${href} (no id ${t.id} on ${t.file})`);
        followed++;
      }
    }
    expect(broken).toEqual([]);
    expect(followed).toBeGreaterThan(facts.size);
  });

  it('renders every figure', () => {
    const blank = [...facts].flatMap(([file, f]) => f.blankFigures.map((b) => `${file}: ${b}`));
    expect(blank).toEqual([]);
    expect([...facts.values()].reduce((n, f) => n + f.figures, 0)).toBeGreaterThan(0);
  });

  it('finds invariant P1 when "W+X" or "P1" is typed into the search box', async () => {
    for (const query of ['W+X', 'P1']) expect(findsP1(await search(query)), `search for ${query}`).toBe(true);
  });
});
