/** Display only: the accounting stays in integer MiB and vCPUs; these turn it into something a person reads at a glance. */

/** MiB as MiB below 1 GiB, as GiB (one decimal when not whole) from 1 GiB, as TiB from 1 TiB. */
export function formatMiB(mib: number): string {
  if (mib < 1024) return `${mib} MiB`;
  if (mib < 1024 * 1024) return `${trimDecimal(mib / 1024)} GiB`;
  return `${trimDecimal(mib / (1024 * 1024))} TiB`;
}

function trimDecimal(n: number): string {
  const fixed = n.toFixed(1);
  return fixed.endsWith('.0') ? fixed.slice(0, -2) : fixed;
}

/** committed/effective/used in one cell, in one unit so the three compare at a glance. */
export function formatMemoryTriple(committed: number, effective: number, used: number): string {
  const biggest = Math.max(committed, effective, used);
  if (biggest < 1024) return `${committed}/${effective}/${used} MiB`;
  return `${trimDecimal(committed / 1024)}/${trimDecimal(effective / 1024)}/${trimDecimal(used / 1024)} GiB`;
}

/** A per mille figure as a percentage with one decimal at most. */
export function formatPermille(permille: number): string {
  return `${trimDecimal(permille / 10)}%`;
}

/** How long ago, in the largest unit that fits: `4s ago`, `3m ago`, `2h ago`, `5d ago`. */
export function formatAge(ms: number): string {
  if (ms < 0) return 'now';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** Labels as `zone=z1,rack=r1`, sorted by key, `-` when none. */
export function formatLabels(labels: Readonly<Record<string, string>>): string {
  const entries = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}
