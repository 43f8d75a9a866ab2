// The site's search, in the page without a server: window.PTSPEC_SEARCH_INDEX comes from
// search-index.js (a script, since file:// pages cannot fetch). Every term of the query
// must occur in a section's id, title or text; sections whose title or id holds a term as
// a whole word (P1 but not P10, W+X, no_leaf_writable_and_executable) come first.
(function () {
  'use strict';
  const input = document.getElementById('search_box');
  const list = document.getElementById('search_results');
  if (!input || !list) return;
  const LIMIT = 20;
  const entries = (window.PTSPEC_SEARCH_INDEX || []).map((e, order) => ({
    entry: e,
    order,
    head: `${e.id} ${e.title}`.toLowerCase(),
    body: e.text.toLowerCase(),
  }));

  const isWordChar = (c) => c !== undefined && /[a-z0-9_]/.test(c);

  /** Whether `term` occurs in `hay` with no letter, digit or `_` touching it on either side. */
  function hasWord(hay, term) {
    for (let at = hay.indexOf(term); at >= 0; at = hay.indexOf(term, at + 1)) {
      if (!isWordChar(hay[at - 1]) && !isWordChar(hay[at + term.length])) return true;
    }
    return false;
  }

  /** The score of one section for the terms, 0 when some term occurs nowhere in it. */
  function score(s, terms) {
    let total = 0;
    for (const t of terms) {
      if (hasWord(s.head, t)) total += 100;
      else if (s.head.includes(t)) total += 30;
      else if (hasWord(s.body, t)) total += 5;
      else if (s.body.includes(t)) total += 1;
      else return 0;
    }
    return total;
  }

  /** About 90 characters of the text around the first term found in it. */
  function snippet(s, terms) {
    const text = s.entry.text;
    const at = terms.map((t) => s.body.indexOf(t)).find((i) => i >= 0) ?? 0;
    const from = Math.max(0, at - 30);
    const to = Math.min(text.length, from + 90);
    return `${from > 0 ? '…' : ''}${text.slice(from, to)}${to < text.length ? '…' : ''}`;
  }

  function show() {
    const terms = input.value.toLowerCase().split(/\s+/).filter((t) => t !== '');
    list.replaceChildren();
    list.hidden = terms.length === 0;
    if (terms.length === 0) return;
    const found = entries
      .map((s) => ({ s, score: score(s, terms) }))
      .filter((r) => r.score > 0)
      .sort((a, b) => b.score - a.score || a.s.order - b.s.order)
      .slice(0, LIMIT);
    if (found.length === 0) {
      const li = document.createElement('li');
      li.className = 'none';
      li.textContent = 'No section matches.';
      list.append(li);
      return;
    }
    for (const { s } of found) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = s.entry.href;
      a.textContent = s.entry.title;
      li.append(a);
      if (s.entry.where) {
        const where = document.createElement('span');
        where.className = 'where';
        where.textContent = s.entry.where;
        li.append(where);
      }
      if (s.entry.text) {
        const text = document.createElement('span');
        text.className = 'snippet';
        text.textContent = snippet(s, terms);
        li.append(text);
      }
      list.append(li);
    }
  }

  input.addEventListener('input', show);
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      const first = list.querySelector('a');
      if (first) window.location.href = first.href;
    } else if (event.key === 'Escape') {
      input.value = '';
      show();
    }
  });
})();
