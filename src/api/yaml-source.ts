import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { FieldPath, SourcePosition } from './diagnostics.js';

/**
 * Maps field paths of one parsed YAML document back to file positions, so every diagnostic can
 * point at the exact line and column. Paths that do not exist (a missing field) resolve to the
 * deepest node that does, which is where the user has to add it.
 */
export class DocumentSource {
  constructor(
    private readonly document: Document.Parsed,
    private readonly lineCounter: LineCounter,
    readonly file: string,
  ) {}

  /**
   * The position of the value at `path`. For a mapping or list value, and with `atKey`, the
   * position of its key in the parent mapping: that is the line that names the field.
   */
  position(path: FieldPath, options: { atKey?: boolean } = {}): SourcePosition {
    let node: unknown = this.document.contents;
    let offset = rangeStart(node) ?? 0;
    for (const [index, segment] of path.entries()) {
      node = this.resolveAlias(node);
      const child = childAt(node, segment);
      if (child === undefined) break;
      const last = index === path.length - 1;
      const preferKey = last && (options.atKey === true || isBlockCollection(this.resolveAlias(child.value)));
      const start = preferKey ? (rangeStart(child.key) ?? rangeStart(child.value)) : (rangeStart(child.value) ?? rangeStart(child.key));
      if (start !== undefined) offset = start;
      node = child.value;
    }
    return this.at(offset);
  }

  /** The position of a character offset in the whole file. */
  at(offset: number): SourcePosition {
    const { line, col } = this.lineCounter.linePos(offset);
    return { file: this.file, line, column: col };
  }

  private resolveAlias(node: unknown): unknown {
    // Bounded: yaml rejects alias cycles when it parses.
    for (let hops = 0; hops < 100 && isAlias(node); hops++) {
      node = node.resolve(this.document);
    }
    return node;
  }
}

function childAt(node: unknown, segment: string | number): { key: unknown; value: unknown } | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key: unknown = pair.key;
      const name = isScalar(key) ? String(key.value) : key;
      if (name === String(segment)) return { key, value: pair.value };
    }
    return undefined;
  }
  if (isSeq(node) && typeof segment === 'number') {
    const item: unknown = node.items[segment];
    return item === undefined ? undefined : { key: item, value: item };
  }
  return undefined;
}

function isBlockCollection(node: unknown): boolean {
  return (isMap(node) || isSeq(node)) && node.flow !== true;
}

function rangeStart(node: unknown): number | undefined {
  if (node === null || typeof node !== 'object') return undefined;
  const range = (node as Partial<Pick<Node, 'range'>>).range;
  return range ? range[0] : undefined;
}
