/**
 * Where each config value came from (the file, an environment variable, a default), so that a problem can say
 * `(from ALLOT_MEMORY_OVERCOMMIT)`. Keys are dotted paths; a value replaced by an override forgets its old source.
 */
export class Provenance {
  readonly #sources = new Map<string, string>();

  /** Records every object and leaf of a parsed file under `prefix`. Arrays are leaves: their items share a source. */
  recordTree(value: unknown, source: string, prefix: readonly string[] = []): void {
    if (prefix.length > 0) this.#sources.set(prefix.join('.'), source);
    if (isPlainObject(value)) for (const [key, child] of Object.entries(value)) this.recordTree(child, source, [...prefix, key]);
  }

  /** One override: the path and everything under it now come from `source`. */
  override(path: readonly string[], source: string): void {
    const key = path.join('.');
    for (const existing of [...this.#sources.keys()])
      if (existing === key || existing.startsWith(`${key}.`)) this.#sources.delete(existing);
    this.#sources.set(key, source);
  }

  /**
   * The sources behind a problem at `path`: the value there and everything under it (a problem on an object, such
   * as "choose one way to authenticate", comes from all of its keys), else the nearest enclosing value, else default.
   */
  sourcesOf(path: readonly string[]): string[] {
    const key = path.join('.');
    const found = new Set<string>();
    for (const [existing, source] of this.#sources) if (key === '' || existing === key || existing.startsWith(`${key}.`)) found.add(source);
    if (found.size > 0) return [...found];
    for (let n = path.length - 1; n > 0; n--) {
      const source = this.#sources.get(path.slice(0, n).join('.'));
      if (source !== undefined) return [source];
    }
    return ['default'];
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Sets a nested key, creating the objects on the way (replacing a non-object found there). */
export function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (!isPlainObject(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  const last = path[path.length - 1];
  if (last !== undefined) node[last] = value;
}
