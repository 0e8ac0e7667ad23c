/**
 * Scenario 8's own verdicts on hand-made steps and operations (no engine): a placement lost to a restart, a graceful
 * stop that exits non-zero and an upgrade that left a process behind each fail, so a passing run is evidence.
 */
import { describe, expect, it } from 'vitest';
import type { OpRecord } from './clients.ts';
import { RollingRun } from './rolling.ts';
import type { ServiceSeen } from './topology.ts';

const START = { agent: 'a:start', coordinator: 'c:start', version: '0.2.0', protocolVersion: 1 };
const NEXT = { agent: 'a:next', coordinator: 'c:next', version: '0.2.0-next', protocolVersion: 2 };
const seen = (next: string[], old: string[]): ServiceSeen[] => [
  ...next.map((member) => ({ member, version: NEXT.version })),
  ...old.map((member) => ({ member, version: '0.2.0' })),
];

function place(at: number, outcome: OpRecord['outcome'], codes: (string | 'ok')[] = ['ok']): OpRecord {
  return {
    kind: 'place',
    requestId: `p-${at}-${codes.join('-')}`,
    startedAt: at,
    endedAt: at + 10,
    outcome,
    ...(outcome === 'acked' ? {} : { code: codes.at(-1) }),
    replies: codes.map((c, i) => (c === 'ok' ? { at: at + i, ok: true } : { at: at + i, ok: false, code: c })),
  };
}

/** Three steps: a1 restarted (0-1000), a1 upgraded (1000-2000), a2 upgraded (2000-3000), seeing `lastSeen` at the end. */
function run(lastSeen = seen(['a1', 'a2'], [])): RollingRun {
  const r = new RollingRun(['a1', 'a2'], START, [NEXT]);
  r.steps.push({ label: 'restart a1', startedAt: 0, endedAt: 1_000, exitCode: 0, downMs: 500, seen: seen([], ['a1', 'a2']) });
  r.steps.push({
    label: 'upgrade a1 to 0.2.0-next',
    startedAt: 1_000,
    endedAt: 2_000,
    exitCode: 0,
    downMs: 500,
    seen: seen(['a1'], ['a2']),
  });
  r.steps.push({ label: 'upgrade a2 to 0.2.0-next', startedAt: 2_000, endedAt: 3_000, exitCode: 0, downMs: 500, seen: lastSeen });
  return r;
}
/** One acknowledged place in each of run()'s steps. */
const eachStep = [place(100, 'acked'), place(1_100, 'acked'), place(2_100, 'acked')];

const verdict = (r: RollingRun, ops: OpRecord[], name: RegExp) => r.audit(ops).verdicts.find((v) => name.test(v.name));

describe('scenario 8 verdicts', () => {
  it('pass when every place of every step is acknowledged or correctly refused (capacity, quota), retries allowed', () => {
    const ops = [
      place(10, 'acked', ['timeout', 'ok']),
      place(20, 'refused', ['insufficient_capacity']),
      place(1_010, 'acked'),
      place(1_020, 'refused', ['quota_exceeded']),
      place(2_100, 'acked'),
    ];
    const placements = verdict(run(), ops, /placements succeed/);
    expect(placements?.ok).toBe(true);
    expect(run().figures(ops)[0]).toMatchObject({ places: 2, acked: 1, successRate: 1, firstTry: 0, errorReplies: { timeout: 1 } });
    // The retried timeout is named in the table, with when it came and what it said.
    expect(run().audit(ops).table).toContain('restart a1: p-10-timeout-ok (acked), started +10 ms: +10 ms timeout:  | +11 ms ok');
  });

  it('fail when a place in a step timed out or was refused unavailable', () => {
    const timedOut = verdict(run(), [...eachStep, place(20, 'timed_out', ['timeout', 'timeout'])], /placements/);
    expect(timedOut?.ok).toBe(false);
    expect(timedOut?.problems[0]).toMatch(/^restart a1: success 50\.0%/);
    const unavailable = verdict(run(), [...eachStep, place(1_010, 'refused', ['unavailable'])], /placements/);
    expect(unavailable?.problems).toEqual([expect.stringMatching(/^upgrade a1 to 0\.2\.0-next: success 50\.0%/)]);
  });

  it('fail when a step saw no placement at all (the storm stalled)', () => {
    expect(verdict(run(), [place(10, 'acked'), place(2_100, 'acked')], /placements/)?.problems).toEqual([
      'upgrade a1 to 0.2.0-next: no placement started in the step',
    ]);
  });

  it('fail when a graceful stop exits non-zero', () => {
    const r = run();
    (r.steps[0] as { exitCode?: number }).exitCode = 1;
    expect(verdict(r, eachStep, /placements/)?.problems).toEqual(['restart a1: the graceful stop exited 1']);
  });

  it('fail when a process still announces the old release at the end, or two releases never ran side by side', () => {
    const ops = eachStep;
    const behind = verdict(run(seen(['a1'], ['a2'])), ops, /upgraded/);
    expect(behind?.ok).toBe(false);
    expect(behind?.problems[0]).toMatch(/1 of 2 processes announce 0\.2\.0-next/);
    const r = new RollingRun(['a1'], NEXT, [NEXT]);
    r.steps.push({ label: 'upgrade a1 to 0.2.0-next', startedAt: 0, endedAt: 1_000, exitCode: 0, seen: seen(['a1'], []) });
    expect(verdict(r, [place(10, 'acked')], /upgraded/)?.problems).toEqual(['no step ran two releases side by side']);
    expect(verdict(run(), ops, /upgraded/)?.ok).toBe(true);
  });

  it('fail when the cluster did not start on the first release, or one upgrade of several left a process behind', () => {
    const previous = { agent: 'a:prev', coordinator: 'c:prev', version: '0.2.0-prev.abc', protocolVersion: 1 };
    const versions = (v: Record<string, string>): ServiceSeen[] => Object.entries(v).map(([member, version]) => ({ member, version }));
    const chain = (afterFirst: ServiceSeen[]) => {
      const r = new RollingRun(['a1', 'a2'], previous, [START, NEXT]);
      const step = (label: string, at: number, s: ServiceSeen[]) =>
        r.steps.push({ label, startedAt: at, endedAt: at + 1_000, exitCode: 0, downMs: 500, seen: s });
      step('storm, nothing restarted', 0, versions({ a1: previous.version, a2: previous.version }));
      step('upgrade a1 to 0.2.0', 1_000, versions({ a1: '0.2.0', a2: previous.version }));
      step('upgrade a2 to 0.2.0', 2_000, afterFirst);
      step('upgrade a1 to 0.2.0-next', 3_000, versions({ a1: NEXT.version, a2: '0.2.0' }));
      step('upgrade a2 to 0.2.0-next', 4_000, versions({ a1: NEXT.version, a2: NEXT.version }));
      return r;
    };
    const ops = [1, 2, 3, 4, 5].map((i) => place(i * 1_000 - 900, 'acked'));
    expect(verdict(chain(versions({ a1: '0.2.0', a2: '0.2.0' })), ops, /upgraded/)?.ok).toBe(true);
    expect(verdict(chain(versions({ a1: '0.2.0', a2: previous.version })), ops, /upgraded/)?.problems).toEqual([
      'after the upgrade to 0.2.0 1 of 2 processes announce 0.2.0: 0.2.0: a1; 0.2.0-prev.abc: a2',
    ]);
    const notStarted = run();
    (notStarted.steps[0] as { seen: ServiceSeen[] }).seen = seen(['a1'], ['a2']);
    expect(verdict(notStarted, eachStep, /upgraded/)?.problems[0]).toBe(
      'after the start 1 of 2 processes announce 0.2.0: 0.2.0-next: a1; 0.2.0: a2',
    );
  });
});
