/**
 * Parses `zone=z1,rack=r7` (ALLOT_LABELS, ALLOT_SIMULATED_HOST). Whitespace around entries is ignored, empty entries
 * are skipped, a value may contain `=`. Returns the problem in words when an entry has no key or a key repeats.
 */
export function parseKeyValues(text: string): { ok: true; value: Record<string, string> } | { ok: false; problem: string } {
  const value: Record<string, string> = {};
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    if (eq <= 0) return { ok: false, problem: `"${entry}" is not key=value` };
    const key = entry.slice(0, eq).trim();
    if (Object.hasOwn(value, key)) return { ok: false, problem: `key "${key}" is given twice` };
    value[key] = entry.slice(eq + 1).trim();
  }
  return { ok: true, value };
}
