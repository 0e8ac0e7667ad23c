/** Figures for people: MiB as GiB/TiB, vCPUs as integers, ages as "3 s ago". */

export function mib(v: number): string {
  if (v >= 1024 * 1024) return `${(v / (1024 * 1024)).toFixed(1)} TiB`;
  if (v >= 1024) return `${(v / 1024).toFixed(v >= 100 * 1024 ? 0 : 1)} GiB`;
  return `${v} MiB`;
}

/** used / committed / effective in one unit, the unit once: "3.0 / 8.0 / 60 GiB". */
export function mibTriple(a: number, b: number, c: number): string {
  if (c < 1024) return `${a} / ${b} / ${c} MiB`;
  const g = (v: number) => (v / 1024).toFixed(c >= 100 * 1024 ? 0 : 1);
  return `${g(a)} / ${g(b)} / ${g(c)} GiB`;
}

export function pct(part: number, whole: number): string {
  if (whole <= 0) return '–';
  const p = (part / whole) * 100;
  return `${p >= 10 ? p.toFixed(0) : p.toFixed(1)}%`;
}

export function ago(ms: number): string {
  if (ms < 0) ms = 0;
  if (ms < 1_000) return 'now';
  if (ms < 60_000) return `${Math.floor(ms / 1_000)} s ago`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ago`;
  return `${Math.floor(ms / 3_600_000)} h ago`;
}

export function clock(at: number): string {
  const d = new Date(at);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** Compact core list: [0,1,2,3,8,9] -> "0-3,8-9". */
export function coreList(ids: readonly number[]): string {
  const sorted = [...ids].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** A stable hue per allocation id, so its cores and its legend entry share a colour. */
export function hueOf(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) % 360;
}

/** document.createElement with a class and text, the page's only DOM helper. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className !== undefined) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}
