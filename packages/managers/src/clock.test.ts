import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { unwrap } from '@allot/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readBootId, systemClock } from './clock.ts';
import { ManagerFactory } from './factory.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('the system clock', () => {
  it('does not expire a reservation early when the wall clock steps forward', async () => {
    const memory = unwrap(new ManagerFactory().host('n1').memory({ capacity: 4096 }).build());
    const held = unwrap(
      await memory.reserve({ requestId: 'hold', tenantId: 't1', resources: { memoryMiB: 1024, vcpus: 0 }, reservation: { ttlMs: 60_000 } }),
    );
    // Only Date is faked: the step an NTP correction or `date -s` makes, while monotonic time goes on as before.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 2 * 3_600_000 });
    unwrap(await memory.allocate({ requestId: 'other', tenantId: 't1', resources: { memoryMiB: 1024, vcpus: 0 } }));
    expect(unwrap(await memory.getAllocations({ requestId: 'hold' })).map((a) => a.status)).toEqual(['reserved']);
    expect(systemClock.now()).toBeLessThan(held.expiresAt ?? 0);
    await memory.stop();
  });
});

describe("the system clock's monotonic time and boot id", () => {
  it('is the host-wide monotonic clock: a process started later in the same boot reads on from it', () => {
    const before = systemClock.monotonic();
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(Number(process.hrtime.bigint() / 1000n) / 1000))']);
    const after = systemClock.monotonic();
    const read = Number(child.stdout.toString());
    expect(read).toBeGreaterThanOrEqual(before);
    expect(read).toBeLessThanOrEqual(after);
  });

  it.runIf(existsSync('/proc/sys/kernel/random/boot_id'))("names the kernel's boot", () => {
    expect(systemClock.bootId).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  });

  it('has no boot id where the kernel offers none', () => {
    expect(readBootId('/nonexistent/boot_id')).toBeUndefined();
  });
});
