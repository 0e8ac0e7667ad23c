import { decode, encode, TenantQuotaSchema, unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { MAX_RECENT_RELEASES, MAX_RECORD_BYTES, MAX_TRACKED_PLACEMENTS, newQuotaRecord, recordPlacement, recordRelease, TenantQuotaRecordSchema, withQuota } from './record.ts';

const quota = TenantQuotaSchema.parse({ tenantId: 'acme', maxVms: 3, maxVcpus: 8 });
const vm = { nodeId: 'n1', memoryMiB: 2048, vcpus: 4 };

describe('tenant quota record', () => {
  it('counts a placement once however often it is retried', () => {
    const once = unwrap(recordPlacement(newQuotaRecord(quota), 'req-1', vm));
    const again = recordPlacement(once, 'req-1', vm);
    expect(again).toEqual({ ok: true, value: once });
    expect(again.ok && again.value).toBe(once);
    expect(once.usage).toEqual({ vms: 1, vcpus: 4, memoryMiB: 2048, vmsPerNode: { n1: 1 } });
  });

  it('refuses a reused request id with a different placement as a conflict', () => {
    const once = unwrap(recordPlacement(newQuotaRecord(quota), 'req-1', vm));
    const r = recordPlacement(once, 'req-1', { ...vm, vcpus: 2 });
    expect(!r.ok && r.error.code).toBe('conflict');
  });

  it('refuses a placement over the quota and leaves the record as it was', () => {
    const once = unwrap(recordPlacement(newQuotaRecord(quota), 'req-1', vm));
    const twice = unwrap(recordPlacement(once, 'req-2', vm));
    const r = recordPlacement(twice, 'req-3', vm);
    expect(!r.ok && r.error.details).toMatchObject({ limit: 'maxVcpus', current: 8, requested: 4, limitValue: 8 });
    expect(twice.usage.vcpus).toBe(8);
  });

  it('releases what was counted once however often the release is retried', () => {
    const placed = unwrap(recordPlacement(newQuotaRecord(quota), 'req-1', vm));
    const released = unwrap(recordRelease(placed, 'req-1'));
    expect(released.usage).toEqual({ vms: 0, vcpus: 0, memoryMiB: 0, vmsPerNode: {} });
    const again = recordRelease(released, 'req-1');
    expect(again.ok && again.value).toBe(released);
  });

  it('treats the release of a placement it never counted as a no-op', () => {
    const placed = unwrap(recordPlacement(newQuotaRecord(quota), 'req-1', vm));
    const r = recordRelease(placed, 'never-placed');
    expect(r.ok && r.value).toBe(placed);
  });

  it('does not count again a late retry of a placement already released', () => {
    const placed = unwrap(recordPlacement(newQuotaRecord(quota), 'req-1', vm));
    const released = unwrap(recordRelease(placed, 'req-1'));
    const late = recordPlacement(released, 'req-1', vm);
    expect(late.ok && late.value).toBe(released);
  });

  it('remembers a bounded number of releases', () => {
    let record = newQuotaRecord(TenantQuotaSchema.parse({ tenantId: 'acme' }));
    for (let i = 0; i < MAX_RECENT_RELEASES + 10; i += 1) {
      record = unwrap(recordPlacement(record, `r${i}`, vm));
      record = unwrap(recordRelease(record, `r${i}`));
    }
    expect(record.recentlyReleased).toHaveLength(MAX_RECENT_RELEASES);
    expect(record.recentlyReleased[0]).toBe('r10');
  });

  it('refuses invalid ids and figures with invalid_request naming the field, changing nothing', () => {
    const record = newQuotaRecord(quota);
    const badId = recordPlacement(record, 'has space', vm);
    expect(!badId.ok && badId.error).toMatchObject({ code: 'invalid_request', details: { field: 'requestId' } });
    const badFigures = recordPlacement(record, 'req-1', { ...vm, memoryMiB: -5 });
    expect(!badFigures.ok && badFigures.error).toMatchObject({ code: 'invalid_request', details: { field: 'placement.memoryMiB' } });
    expect(record.usage.vms).toBe(0);
  });

  it('survives a msgpack round trip through its schema', () => {
    let record = unwrap(recordPlacement(newQuotaRecord(quota), 'req-1', vm));
    record = unwrap(recordPlacement(record, 'req-2', { nodeId: 'n2', memoryMiB: 512, vcpus: 1 }));
    record = unwrap(recordRelease(record, 'req-1'));
    expect(unwrap(decode(TenantQuotaRecordSchema, encode(record)))).toEqual(record);
  });

  it('rejects a stored record whose usage does not add up to its live placements', () => {
    const record = unwrap(recordPlacement(newQuotaRecord(quota), 'req-1', vm));
    const tampered = { ...record, usage: { ...record.usage, vcpus: 1 } };
    const r = decode(TenantQuotaRecordSchema, encode(tampered));
    expect(!r.ok && r.error.message).toContain('usage');
  });

  it('takes a new quota but keeps the usage, and refuses another tenant\'s quota', () => {
    const record = unwrap(recordPlacement(newQuotaRecord(quota), 'req-1', vm));
    const lowered = unwrap(withQuota(record, TenantQuotaSchema.parse({ tenantId: 'acme', maxVcpus: 2 })));
    expect(lowered.usage).toBe(record.usage);
    expect(recordPlacement(lowered, 'req-2', vm).ok).toBe(false);
    const other = withQuota(record, TenantQuotaSchema.parse({ tenantId: 'other' }));
    expect(!other.ok && other.error.code).toBe('invalid_request');
  });
});

describe('tenant quota record size', () => {
  it('fits NATS\' default 1 MiB payload when full, with the longest ids and every VM on its own node', () => {
    const rates = (['second', 'minute', 'hour'] as const).map((per) => ({ count: 1_000_000_000, per }));
    const max = 1 << 30;
    const full = TenantQuotaSchema.parse({ tenantId: 't'.repeat(64), maxVms: max, maxVcpus: max, maxMemoryMiB: max, maxVmsPerNode: max, priority: 1000, placeRates: rates, releaseRates: rates });
    const live = Array.from({ length: MAX_TRACKED_PLACEMENTS }, (_, i) => ({ requestId: String(i).padStart(128, 'r'), nodeId: String(i).padStart(64, 'n'), memoryMiB: max, vcpus: 65_536 }));
    const record = {
      ...newQuotaRecord(full),
      usage: { vms: live.length, vcpus: live.length * 65_536, memoryMiB: live.length * max, vmsPerNode: Object.fromEntries(live.map((p) => [p.nodeId, 1])) },
      live,
      recentlyReleased: Array.from({ length: MAX_RECENT_RELEASES }, (_, i) => String(i).padStart(128, 'x')),
    };
    expect(TenantQuotaRecordSchema.safeParse(record).success).toBe(true);
    expect(encode(record).byteLength).toBeLessThanOrEqual(MAX_RECORD_BYTES);
  });

  it('refuses a placement past the tracked maximum with quota_exceeded naming that limit', () => {
    const quota = TenantQuotaSchema.parse({ tenantId: 'acme' });
    const live = Array.from({ length: MAX_TRACKED_PLACEMENTS }, (_, i) => ({ requestId: `r${i}`, nodeId: 'n1', memoryMiB: 1, vcpus: 1 }));
    const n = live.length;
    const record = { ...newQuotaRecord(quota), usage: { vms: n, vcpus: n, memoryMiB: n, vmsPerNode: { n1: n } }, live };
    const r = recordPlacement(record, 'one-more', vm);
    expect(!r.ok && r.error).toMatchObject({ code: 'quota_exceeded', details: { limit: 'maxTrackedPlacements', limitValue: MAX_TRACKED_PLACEMENTS } });
  });
});
