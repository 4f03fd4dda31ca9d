import type { EvalContext } from './authz-context.js';

/**
 * Candidate pruning for large policy sets. Many rules carry a condition every match must meet
 * on one request attribute — "the principal is one of these", "the path starts with /v1/x/".
 * Such a rule is filed under that attribute's values (exact values in a map, prefixes and
 * suffixes in one map per length), so a request only tries the rules filed under its own
 * values, plus the rules that could not be filed. The result is the same set of matches as
 * trying every rule, in the same order; it is just cheaper.
 */

/** A positive check's values, as the index sees them. */
export interface IndexKey {
  /** Which attribute: `principal`, `path`, `header:x-user`, … (same name, same reader). */
  readonly attribute: string;
  read(context: EvalContext): string | undefined;
  readonly exact: readonly string[];
  readonly prefixes: readonly string[];
  readonly suffixes: readonly string[];
  /** A `*` pattern: any present value. */
  readonly any: boolean;
}

/** Istio patterns → index key parts; `*` inside a value (namespace globs) is not indexable. */
export function keyFromPatterns(attribute: string, read: IndexKey['read'], patterns: readonly string[], options: { templates?: boolean } = {}): IndexKey | undefined {
  const exact: string[] = [];
  const prefixes: string[] = [];
  const suffixes: string[] = [];
  let any = false;
  for (const pattern of patterns) {
    if (options.templates === true && (pattern.includes('{*}') || pattern.includes('{**}'))) {
      // Every path a template matches starts with its literal text before the first operator.
      prefixes.push(pattern.slice(0, pattern.indexOf('{')));
    } else if (pattern === '*') any = true;
    else if (pattern.startsWith('*') && !pattern.slice(1).includes('*')) suffixes.push(pattern.slice(1));
    else if (pattern.endsWith('*') && !pattern.slice(0, -1).includes('*')) prefixes.push(pattern.slice(0, -1));
    else if (!pattern.includes('*')) exact.push(pattern);
    else return undefined;
  }
  return { attribute, read, exact, prefixes, suffixes, any };
}

/**
 * What a rule needs, for the index: each key is a condition every match meets (its values
 * ORed); the index files the rule under the key whose values are rarest across all rules.
 */
export type RuleRequirements = readonly IndexKey[];

class AttributeIndex {
  private readonly exact = new Map<string, number[]>();
  private readonly prefixes = new Map<number, Map<string, number[]>>();
  private readonly suffixes = new Map<number, Map<string, number[]>>();
  private readonly present: number[] = [];

  constructor(readonly read: IndexKey['read']) {}

  add(key: IndexKey, id: number): void {
    for (const value of key.exact) push(this.exact, value, id);
    for (const prefix of key.prefixes) push(bucket(this.prefixes, prefix.length), prefix, id);
    for (const suffix of key.suffixes) push(bucket(this.suffixes, suffix.length), suffix, id);
    if (key.any) this.present.push(id);
  }

  /** Adds the ids filed under `value` to `out`. */
  lookup(value: string, out: Set<number>): void {
    addAll(out, this.exact.get(value));
    for (const [length, map] of this.prefixes) if (value.length >= length) addAll(out, map.get(value.slice(0, length)));
    for (const [length, map] of this.suffixes) if (value.length >= length) addAll(out, map.get(value.slice(value.length - length)));
    addAll(out, this.present);
  }
}

/**
 * An ordered list of items (rules), each with an optional requirement. `candidates` returns,
 * in order, the items that may match a request: the unfiled ones and those filed under the
 * request's values.
 */
export class RuleIndex<T> {
  private readonly unfiled: number[] = [];
  private readonly indexes = new Map<string, AttributeIndex>();

  /** With few items, trying them all is as fast as looking them up. */
  static readonly MIN_ITEMS = 16;

  private constructor(private readonly items: readonly T[]) {}

  static build<T>(items: readonly T[], requirements: (item: T) => RuleRequirements): RuleIndex<T> {
    const index = new RuleIndex(items);
    const options = items.length < RuleIndex.MIN_ITEMS ? items.map(() => []) : items.map(requirements);
    // How many rules list each value: a value every rule lists (`shared`) prunes nothing.
    const frequency = new Map<string, number>();
    for (const keys of options) {
      for (const key of keys) for (const term of terms(key)) frequency.set(term, (frequency.get(term) ?? 0) + 1);
    }
    const cost = (key: IndexKey): number => terms(key).reduce((sum, term) => sum + (frequency.get(term) ?? 0), 0);
    items.forEach((_item, id) => {
      let key: IndexKey | undefined;
      for (const option of options[id] ?? []) if (key === undefined || cost(option) < cost(key)) key = option;
      // Filing a rule that nearly every request reaches would only add lookups.
      if (key !== undefined && cost(key) > items.length / 2) key = undefined;
      if (key === undefined) {
        index.unfiled.push(id);
        return;
      }
      let attribute = index.indexes.get(key.attribute);
      if (!attribute) {
        attribute = new AttributeIndex(key.read);
        index.indexes.set(key.attribute, attribute);
      }
      attribute.add(key, id);
    });
    return index;
  }

  get size(): number {
    return this.items.length;
  }

  /** Every item, in order (for explanations that must look beyond the candidates). */
  all(): readonly T[] {
    return this.items;
  }

  /** The items that may match, in their original order. */
  candidates(context: EvalContext): T[] {
    if (this.indexes.size === 0) return this.items as T[];
    const ids = new Set<number>(this.unfiled);
    for (const attribute of this.indexes.values()) {
      const value = attribute.read(context);
      if (value !== undefined) attribute.lookup(value, ids);
    }
    const sorted = [...ids].sort((a, b) => a - b);
    return sorted.map((id) => this.items[id] as T);
  }
}

/** The index entries a key creates, as strings: `path=/a`, `path^/v1/`, `path$.json`, `path*`. */
function terms(key: IndexKey): string[] {
  return [
    ...key.exact.map((v) => `${key.attribute}=${v}`),
    ...key.prefixes.map((v) => `${key.attribute}^${v}`),
    ...key.suffixes.map((v) => `${key.attribute}$${v}`),
    ...(key.any ? [`${key.attribute}*`] : []),
  ];
}

function push(map: Map<string, number[]>, key: string, id: number): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [id]);
  else if (list[list.length - 1] !== id) list.push(id);
}

function bucket(maps: Map<number, Map<string, number[]>>, length: number): Map<string, number[]> {
  let map = maps.get(length);
  if (!map) {
    map = new Map();
    maps.set(length, map);
  }
  return map;
}

function addAll(out: Set<number>, ids: readonly number[] | undefined): void {
  if (ids) for (let i = 0; i < ids.length; i++) out.add(ids[i] as number);
}
