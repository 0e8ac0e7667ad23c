// What an allocate+release pair costs on this machine when it does nothing but the bookkeeping idempotency needs:
// one awaited promise per operation, the request-id index and the release-id index with released allocations
// retained for late retries (100,000 by default, like HostState), and a capacity counter. No validation, CPU sets,
// actor mailbox, records, metrics or tenant counts. The composite does all of that besides, so this skeleton bounds
// what the composite can reach here (the 200,000 pairs/s goal of the managers issue). Prints figures; asserts nothing.

interface Held {
  id: string;
  requestId: string;
  memoryMiB: number;
  releaseRequestId: string;
}

function skeleton(retained: number) {
  const byRequest = new Map<string, Held>();
  const byRelease = new Map<string, Held>();
  const live = new Map<string, Held>();
  const ring: (Held | undefined)[] = [];
  let head = 0;
  let used = 0;
  let counter = 0;
  return {
    allocate(requestId: string, memoryMiB: number): Promise<Held | undefined> {
      const seen = byRequest.get(requestId);
      if (seen !== undefined) return Promise.resolve(seen);
      if (used + memoryMiB > Number.MAX_SAFE_INTEGER) return Promise.resolve(undefined);
      used += memoryMiB;
      counter += 1;
      const held: Held = { id: `n:${counter}`, requestId, memoryMiB, releaseRequestId: '' };
      live.set(held.id, held);
      byRequest.set(requestId, held);
      return Promise.resolve(held);
    },
    release(requestId: string, allocationId: string): Promise<Held | undefined> {
      const held = live.get(allocationId);
      if (held === undefined) return Promise.resolve(undefined);
      if (byRelease.has(requestId)) return Promise.resolve(held);
      live.delete(allocationId);
      used -= held.memoryMiB;
      held.releaseRequestId = requestId;
      byRelease.set(requestId, held);
      ring.push(held);
      if (ring.length - head > retained) {
        const oldest = ring[head] as Held;
        ring[head] = undefined;
        head += 1;
        byRequest.delete(oldest.requestId);
        byRelease.delete(oldest.releaseRequestId);
      }
      return Promise.resolve(held);
    },
  };
}

const pairs = Number(process.argv[2] ?? 300_000);
for (const retained of [100_000, 10_000, 0]) {
  const rates: number[] = [];
  for (let round = 0; round < 3; round += 1) {
    const s = skeleton(retained);
    const t0 = performance.now();
    for (let i = 0; i < pairs; i += 1) {
      const held = await s.allocate(`r${round}-${i}`, 1024);
      if (held === undefined) throw new Error('refused');
      await s.release(`x${round}-${i}`, held.id);
    }
    rates.push(pairs / ((performance.now() - t0) / 1000));
  }
  console.log(
    `bookkeeping skeleton, ${String(retained).padStart(7)} releases retained: ${rates.map((r) => Math.round(r).toLocaleString('en-US')).join(' / ')} pairs/s (3 rounds of ${pairs.toLocaleString('en-US')})`,
  );
}
