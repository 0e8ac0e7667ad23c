/**
 * One chaos scenario end to end: a fresh containerised cluster, a seeded scheduler storm with faults applied on a
 * timeline, the convergence measurement, a graceful stop, the ledger audit and the report table.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Allocation } from '@allot/core';
import type { HostLoss } from './lifecycle.ts';
import {
  auditReplies,
  auditReservations,
  auditTenantLimits,
  replayLedger,
  type LedgerReplay,
  type TenantLimits,
  type Verdict,
} from './auditor.ts';
import { Workload, type OpRecord, type WorkloadOptions } from './clients.ts';
import { CHAOS_LABEL, docker } from './docker.ts';
import type { ChaosImages } from './images.ts';
import { auditSecured } from './secured.ts';
import type { ChaosSecurity } from './security.ts';
import { ChaosCluster, HOSTS, type HostSpec } from './topology.ts';

/** The coordinators' view must equal the agents' truth within this long after the last fault healed and the last
 * client operation was answered (whichever is later). */
export const CONVERGENCE_BOUND_MS = 10_000;

/** Once the storm is over, each tenant's usage record must equal its live allocations within this long. */
export const QUOTA_SETTLE_BOUND_MS = 60_000;
/** A live `reserved` allocation listed more than this long after its expiresAt has outlived its expiry. */
export const EXPIRY_SLACK_MS = 2_000;

/**
 * Limits set before the storm. t0 and t1 have room for everything they ask (their limits are still checked in every
 * admission batch); t2 has a tight maxVms, so its places run into quota_exceeded while its releases make room again.
 */
export const TENANT_QUOTAS: TenantLimits[] = [
  { tenantId: 't0', maxVms: 500, maxVcpus: 2_000, maxMemoryMiB: 1_000_000 },
  { tenantId: 't1', maxVms: 500, maxVcpus: 2_000, maxMemoryMiB: 1_000_000 },
  { tenantId: 't2', maxVms: 8 },
];

type Counters = { vms: number; vcpus: number; memoryMiB: number };
type Truth = Map<string, { memory: number; cpu: number; count: number }>;

export type FaultPlan = (cluster: ChaosCluster, at: (ms: number) => Promise<void>) => Promise<void>;

/**
 * What a scenario may add: a storm that lasts as long as the fault plan (the workers stop when it is done, whatever
 * durationMs says), and verdicts and a table of its own over the operations (scenario 8's steps).
 */
export type ScenarioExtra = {
  stormUntilFaultsDone?: boolean;
  audit?: (ops: OpRecord[]) => { verdicts: Verdict[]; table: string };
  /** Verdicts and a table of its own over the agents' replayed ledgers (scenario 9's moves). */
  auditLedgers?: (ledgers: LedgerReplay[]) => { verdicts: Verdict[]; table: string };
};

export type ScenarioResult = {
  name: string;
  verdicts: Verdict[];
  table: string;
  convergenceMs: number | undefined;
  quotaSettledMs: number | undefined;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `loss`: a host the fault plan kills for good, evacuates and decommissions; it is left out of what must answer again
 * (usage, convergence, quota listing, graceful stop), its ledger is still replayed, and the lifecycle verdict replaces
 * 'nothing acknowledged is lost' (a VM may live on under its move's request id, or be given up by the decommission).
 */
export async function runScenario(
  images: ChaosImages,
  security: ChaosSecurity,
  name: string,
  seed: number,
  faults: FaultPlan,
  workload: Partial<WorkloadOptions> = {},
  loss?: HostLoss,
  extra: ScenarioExtra = {},
): Promise<ScenarioResult> {
  const hosts = HOSTS.filter((h) => h.nodeId !== loss?.nodeId);
  const runId = `${name}-${Date.now().toString(36)}`;
  const started = Date.now();
  let cluster: ChaosCluster | undefined;
  const tmp = await mkdtemp(join(tmpdir(), `allot-chaos-${name}-`));
  try {
    cluster = await ChaosCluster.start(images, runId, security, join(tmp, 'credentials'));
    const c = cluster;
    for (const quota of TENANT_QUOTAS)
      await retry(() => c.sched('quota.set', { requestId: `${name}-quota-${quota.tenantId}`, quota }), `quota.set ${quota.tenantId}`);
    const startupMs = Date.now() - started;
    const load = new Workload(c, {
      seed,
      prefix: name,
      workers: 6,
      durationMs: 20_000,
      opDeadlineMs: 45_000,
      requestTimeoutMs: 5_000,
      releaseProbability: 0.3,
      reservationProbability: 0.15,
      activateProbability: 0.5,
      reservationTtlMs: { min: 2_500, max: 4_500 },
      ...workload,
    });
    const t0 = Date.now();
    let lastHeal = t0;
    const at = async (ms: number) => {
      await sleep(Math.max(0, t0 + ms - Date.now()));
    };
    const faultsDone = faults(c, at)
      .finally(() => {
        // Also when the plan failed: workers left running would storm a cluster being torn down.
        if (extra.stormUntilFaultsDone === true) load.stop();
      })
      .then(() => {
        lastHeal = Date.now();
      });
    await Promise.all([load.run(), faultsDone]);
    await c.recoveriesDone();
    const quietAt = Math.max(lastHeal, load.lastAnswerAt);

    // Every agent answers again (an agent that never does: its own last words say why).
    for (const h of hosts) {
      await retry(() => c.agent(h.nodeId, 'usage', {}), `usage of ${h.nodeId}`).catch(async (e: unknown) => {
        await printLastLogs(c, h.nodeId);
        throw e;
      });
    }
    // Convergence: the coordinators' view against the agents' own usage, re-read every round (reservations expire
    // after the storm, so the truth still moves for a few seconds).
    const converged = await measureConvergence(c, quietAt, hosts);
    const convergenceMs = converged.ms;
    const convergence: Verdict = {
      name: `coordinators' view converges (bound ${CONVERGENCE_BOUND_MS / 1000} s)`,
      ok: convergenceMs !== undefined && convergenceMs <= CONVERGENCE_BOUND_MS,
      problems:
        convergenceMs === undefined
          ? [`no agreement within ${(CONVERGENCE_BOUND_MS * 3) / 1000} s of the last change`]
          : convergenceMs > CONVERGENCE_BOUND_MS
            ? [`took ${convergenceMs} ms`]
            : [],
      note: `${convergenceMs ?? '-'} ms after the last heal/answer/change of the agents' usage; truth: ${[...converged.truth].map(([n, t]) => `${n} ${t.count} allocs ${t.memory} MiB ${t.cpu} vCPU`).join(', ')}`,
    };

    // Quota truth: every tenant's usage record equals its live allocations on the agents, once reconciler, sweep and
    // the expiries have settled; the last listing is also what the ledgers are compared with.
    const settle = await settleQuotas(c, quietAt, hosts);
    const endpoint = settle.listing;
    const quotaVerdict: Verdict = {
      name: `quota usage = live allocations (bound ${QUOTA_SETTLE_BOUND_MS / 1000} s)`,
      ok: settle.ms !== undefined,
      problems: settle.ms === undefined ? settle.mismatches : [],
      note: `${settle.ms === undefined ? 'never' : `${settle.ms} ms`} after the last heal/answer; ${[...settle.usage].map(([t, u]) => `${t} ${u.vms} VMs ${u.vcpus} vCPU ${u.memoryMiB} MiB`).join(', ')}`,
    };

    // Every coordinator that runs again serves again: one still stuck in its start-up (waiting for JetStream, the
    // quota watch...) would be hidden by the other, which answers every request through the queue group.
    const running = await c.runningCoordinators();
    let serving: string[] = [];
    const servingDeadline = Date.now() + 30_000;
    while (Date.now() < servingDeadline) {
      serving = await c.servingCoordinators();
      if (running.every((id) => serving.includes(id))) break;
    }
    const missing = running.filter((id) => !serving.includes(id));
    for (const id of missing) await printLastLogs(c, id);
    const coordinatorsServe: Verdict = {
      name: 'every running coordinator serves',
      ok: missing.length === 0,
      problems: missing.map((id) => `${id} runs but does not answer $SRV.PING within 30 s`),
      note: `serving: ${serving.join(', ') || 'none'}`,
    };

    // Every server, also one killed and restarted, still refuses strangers and keeps tenants off the agents.
    const secured = await auditSecured(c, name);

    // Graceful stop (agents flush and close their ledgers), then the ledger files out of the stopped containers.
    const exitCodes: string[] = [];
    const coordinatorStops: string[] = [];
    for (const id of ['c1', 'c2']) {
      const code = await c.stopGracefully(id);
      if (code !== 0) {
        exitCodes.push(`${id} exited ${code} on SIGTERM`);
        await printLastLogs(c, id);
      }
      // A handle left behind by the stop (the coordinator exits anyway and names it; docs/chaos.md, scenario 4).
      const stopped = (await c.logs(id)).filter((l) => l.includes('"msg":"coordinator stopped"')).at(-1);
      const holding = stopped === undefined ? undefined : /"holding":(\[[^\]]*\])/.exec(stopped)?.[1];
      coordinatorStops.push(`${id} exit ${code}${holding === undefined ? '' : `, left holding ${holding}`}`);
    }
    await Promise.all(
      hosts.map(async (h) => {
        const code = await c.stopGracefully(h.nodeId);
        if (code !== 0) {
          exitCodes.push(`${h.nodeId} exited ${code} on SIGTERM`);
          await printLastLogs(c, h.nodeId);
        }
      }),
    );
    const ledgers: LedgerReplay[] = [];
    for (const h of HOSTS) {
      const dir = join(tmp, h.nodeId);
      await c.copyStateDir(h.nodeId, dir);
      ledgers.push(await replayLedger(dir, h));
    }
    const crashes = [...(await c.crashes()), ...exitCodes];
    loss?.endLostAllocations(ledgers);
    const replies = auditReplies(load.ops, ledgers, endpoint, loss?.nodeId);
    const verdicts = [
      ...(loss === undefined
        ? replies
        : [loss.audit(load.ops, ledgers), ...replies.filter((v) => v.name !== 'nothing acknowledged is lost')]),
      auditReservations(load.ops, ledgers, settle.overdue, loss?.nodeId),
      quotaVerdict,
      auditTenantLimits(ledgers, TENANT_QUOTAS),
      convergence,
      coordinatorsServe,
      secured,
      {
        name: 'no process crashed but those killed',
        ok: crashes.length === 0,
        problems: crashes,
        note: c.killed.size > 0 ? `killed on purpose: ${[...c.killed].join(', ')}` : undefined,
      } as Verdict,
    ];
    const ownOps = extra.audit?.(load.ops);
    const ownLedgers = extra.auditLedgers?.(ledgers);
    const ownTables = [ownOps, ownLedgers].flatMap((o) => (o === undefined ? [] : [o.table]));
    for (const o of [ownOps, ownLedgers]) if (o !== undefined) verdicts.push(...o.verdicts);
    const recovered = c.recoveries.map((r) => `${r.member} ${r.ms === undefined ? 'never' : `${r.ms} ms`}`).join(', ') || '-';
    const table = formatTable(
      name,
      {
        'cluster start': `${(startupMs / 1000).toFixed(1)} s`,
        ...load.summary(),
        'ready in view after heal': recovered,
        convergence: convergenceMs === undefined ? 'never' : `${convergenceMs} ms`,
        'quota settled': settle.ms === undefined ? 'never' : `${settle.ms} ms`,
        'coordinators stopped': coordinatorStops.join('; '),
        'scenario duration': `${((Date.now() - started) / 1000).toFixed(1)} s`,
      },
      verdicts,
    );
    return { name, verdicts, table: [...ownTables, table].join('\n'), convergenceMs, quotaSettledMs: settle.ms };
  } finally {
    const tearDown = Date.now();
    await cluster?.close();
    const closed = Date.now();
    await removeRun(runId);
    await rm(tmp, { recursive: true, force: true });
    console.log(
      `${name}: teardown ${((Date.now() - tearDown) / 1000).toFixed(1)} s (connections closed in ${((closed - tearDown) / 1000).toFixed(1)} s)`,
    );
  }
}

async function retry<T>(
  f: () => Promise<{ ok: true; value: T } | { ok: false; error: { code: string; message: string } }>,
  what: string,
): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await f();
    if (r.ok) return r.value;
    if (Date.now() > deadline) throw new Error(`${what}: ${r.error.code}: ${r.error.message}`);
    await sleep(250);
  }
}

/** Each agent's own committed memory, CPU and allocation count; undefined when one does not answer. */
async function readTruth(c: ChaosCluster, hosts: HostSpec[]): Promise<Truth | undefined> {
  const truth: Truth = new Map();
  for (const h of hosts) {
    const u = await c.agent(h.nodeId, 'usage', {}, 2_000);
    if (!u.ok) return undefined;
    truth.set(h.nodeId, { memory: u.value.memory.committed, cpu: u.value.cpu.committed, count: u.value.allocationCount });
  }
  return truth;
}

/**
 * ms from `from` (or from the last change of the agents' truth seen after it) until the first of six consecutive rounds
 * in which `allot.sched.nodes` matches the truth read in that round; undefined if never.
 */
async function measureConvergence(c: ChaosCluster, from: number, hosts: HostSpec[]): Promise<{ ms: number | undefined; truth: Truth }> {
  let streakStart: number | undefined;
  let streak = 0;
  let lastChange = from;
  let previous: string | undefined;
  let truth: Truth = new Map();
  const started = Date.now();
  while (Date.now() < Math.min(started + 60_000, Math.max(started, lastChange) + CONVERGENCE_BOUND_MS * 3)) {
    const askedAt = Date.now();
    const read = await readTruth(c, hosts);
    const r = await c.sched('nodes', {}, 2_000);
    if (read !== undefined) {
      const key = JSON.stringify([...read]);
      if (previous !== undefined && key !== previous) lastChange = Math.max(lastChange, askedAt);
      previous = key;
      truth = read;
    }
    const match =
      read !== undefined &&
      r.ok &&
      [...read].every(([id, t]) => {
        const n = r.value.nodes.find((x) => x.nodeId === id);
        return (
          n !== undefined &&
          n.liveness === 'ready' &&
          n.snapshot.memory.committed === t.memory &&
          n.snapshot.cpu.committed === t.cpu &&
          n.snapshot.allocationCount === t.count
        );
      });
    if (match) {
      streakStart ??= askedAt;
      streak += 1;
      if (streak >= 6) return { ms: Math.max(0, streakStart - lastChange), truth };
    } else {
      streakStart = undefined;
      streak = 0;
    }
    await sleep(50);
  }
  return { ms: undefined, truth };
}

const sameCounters = (a: Counters | undefined, b: Counters | undefined) =>
  (a?.vms ?? 0) === (b?.vms ?? 0) && (a?.vcpus ?? 0) === (b?.vcpus ?? 0) && (a?.memoryMiB ?? 0) === (b?.memoryMiB ?? 0);

/**
 * Waits (QUOTA_SETTLE_BOUND_MS) until, in two consecutive rounds, every tenant's usage (`quota.get`) equals the sum of
 * its live allocations listed by all agents (page by page) and no reservation is still held. Every round also notes
 * live reservations listed more than EXPIRY_SLACK_MS past their expiresAt. `ms` counts from `from`.
 */
async function settleQuotas(
  c: ChaosCluster,
  from: number,
  hosts: HostSpec[],
): Promise<{
  ms: number | undefined;
  listing: Map<string, Allocation[]>;
  usage: Map<string, Counters>;
  mismatches: string[];
  overdue: string[];
}> {
  const overdue = new Map<string, string>();
  let listing = new Map<string, Allocation[]>();
  let usage = new Map<string, Counters>();
  let mismatches: string[] = ['never listed every agent'];
  let streakStart: number | undefined;
  const deadline = Date.now() + QUOTA_SETTLE_BOUND_MS;
  while (Date.now() < deadline) {
    const listedAt = Date.now();
    const round = new Map<string, Allocation[]>();
    for (const h of hosts) {
      const listed = await c.listAllocations(h.nodeId);
      if (listed.ok) round.set(h.nodeId, listed.value);
    }
    const live = new Map<string, Counters>();
    let held = 0;
    for (const a of [...round.values()].flat()) {
      const sum = live.get(a.tenantId) ?? { vms: 0, vcpus: 0, memoryMiB: 0 };
      live.set(a.tenantId, { vms: sum.vms + 1, vcpus: sum.vcpus + a.granted.vcpus, memoryMiB: sum.memoryMiB + a.granted.memoryMiB });
      if (a.status !== 'reserved') continue;
      held += 1;
      if (a.expiresAt !== undefined && a.expiresAt < listedAt - EXPIRY_SLACK_MS)
        overdue.set(a.id, `${a.nodeId}/${a.id} (${a.requestId}) listed reserved ${listedAt - a.expiresAt} ms after its expiresAt`);
    }
    const quotas = new Map<string, Counters>();
    for (const q of TENANT_QUOTAS) {
      const got = await c.sched('quota.get', { tenantId: q.tenantId });
      if (got.ok) quotas.set(q.tenantId, got.value.usage);
    }
    mismatches = [];
    if (round.size < hosts.length) mismatches.push(`listed ${round.size} of ${hosts.length} agents`);
    if (held > 0) mismatches.push(`${held} reservations still held`);
    for (const q of TENANT_QUOTAS) {
      const u = quotas.get(q.tenantId);
      const l = live.get(q.tenantId);
      if (u === undefined) mismatches.push(`quota.get ${q.tenantId} failed`);
      else if (!sameCounters(u, l))
        mismatches.push(
          `${q.tenantId}: usage ${u.vms} VMs ${u.vcpus} vCPU ${u.memoryMiB} MiB, live ${l?.vms ?? 0} VMs ${l?.vcpus ?? 0} vCPU ${l?.memoryMiB ?? 0} MiB`,
        );
    }
    listing = round;
    usage = quotas;
    if (mismatches.length === 0) {
      if (streakStart !== undefined)
        return { ms: Math.max(0, streakStart - from), listing, usage, mismatches, overdue: [...overdue.values()] };
      streakStart = listedAt;
    } else streakStart = undefined;
    await sleep(500);
  }
  return { ms: undefined, listing, usage, mismatches, overdue: [...overdue.values()] };
}

async function removeRun(runId: string): Promise<void> {
  const d = await docker();
  const filters = JSON.stringify({ label: [`${CHAOS_LABEL}=${runId}`] });
  for (const c of await d.listContainers({ all: true, filters }))
    await d
      .getContainer(c.Id)
      .remove({ force: true, v: true })
      .catch(() => undefined);
  for (const n of await d.listNetworks({ filters }))
    await d
      .getNetwork(n.Id)
      .remove()
      .catch(() => undefined);
}

function formatTable(name: string, figures: Record<string, string | number>, verdicts: Verdict[]): string {
  const lines = [`\n=== chaos scenario: ${name}`];
  const w = Math.max(...Object.keys(figures).map((k) => k.length), ...verdicts.map((v) => v.name.length));
  for (const [k, v] of Object.entries(figures)) lines.push(`  ${k.padEnd(w)}  ${v}`);
  lines.push(`  ${'-'.repeat(w)}`);
  for (const v of verdicts) {
    lines.push(`  ${v.name.padEnd(w)}  ${v.ok ? 'PASS' : 'FAIL'}${v.note === undefined ? '' : `  (${v.note})`}`);
    for (const p of v.problems.slice(0, 10)) lines.push(`  ${' '.repeat(w)}    ! ${p}`);
    if (v.problems.length > 10) lines.push(`  ${' '.repeat(w)}    ! ... ${v.problems.length - 10} more`);
  }
  return lines.join('\n');
}

/** A member's own last words, when a check about it failed. */
async function printLastLogs(c: ChaosCluster, member: string): Promise<void> {
  console.log(`--- last log lines of ${member}\n${(await c.logs(member)).slice(-40).join('\n')}`);
}
