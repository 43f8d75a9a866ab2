/**
 * The anchors of the document's named things (operations, mutants, terms), so every
 * section links to the others the same way. Invariant and family anchors are in
 * spec-invariants.ts, beside the sections they name.
 */
import { code, type Inline } from './doc.ts';

/**
 * Anchor ids are lower case: camelCase becomes kebab-case, and a CONSTANT_NAME is marked
 * `const-`, so `pti` and `PTI` stay two anchors.
 */
const lowered = (name: string): string =>
  /^[A-Z0-9_]+$/.test(name) ? `const-${name.toLowerCase().replace(/_/g, '-')}` : name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/_/g, '-');

export const operationAnchor = (op: string): string => `op-${lowered(op)}`;
export const operationLink = (op: string): Inline => `[${code(op)}](#${operationAnchor(op)})`;

export const mutantAnchor = (name: string): string => `mutant-${name}`;
export const mutantLink = (name: string): Inline => `[${code(name)}](#${mutantAnchor(name)})`;

export const termAnchor = (name: string): string => `term-${lowered(name)}`;
export const termLink = (name: string): Inline => `[${code(name)}](#${termAnchor(name)})`;
