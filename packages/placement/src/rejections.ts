/** Per-reason rejection counts, and the sentence people read. */
export class RejectionTally {
  readonly counts: Record<string, number> = {};

  add(reason: string, n = 1): void {
    if (n <= 0) return;
    this.counts[reason] = (this.counts[reason] ?? 0) + n;
  }
}

/** Reasons sorted by count, highest first, then by name (the kube-scheduler order). */
export function sortedReasons(rejected: Readonly<Record<string, number>>): [string, number][] {
  return Object.entries(rejected)
    .filter(([, n]) => n > 0)
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0));
}

/** `0/5 nodes are available: 3 Insufficient memory, 2 node cordoned.` */
export function unavailableMessage(total: number, rejected: Readonly<Record<string, number>>): string {
  const parts = sortedReasons(rejected).map(([reason, n]) => `${n} ${reason}`);
  return parts.length === 0 ? `0/${total} nodes are available.` : `0/${total} nodes are available: ${parts.join(', ')}.`;
}
