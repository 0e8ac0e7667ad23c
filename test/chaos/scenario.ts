/**
 * One chaos scenario end to end: a fresh containerised cluster, a seeded scheduler storm with faults applied on a
 * timeline, the convergence measurement, a graceful stop, the ledger audit and the report table.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Allocation } from '@allot/core';
import { auditReplies, replayLedger, type LedgerReplay, type Verdict } from './auditor.ts';
import { Workload, type WorkloadOptions } from './clients.ts';
import { CHAOS_LABEL, docker } from './docker.ts';
import type { ChaosImages } from './images.ts';
import { ChaosCluster, HOSTS } from './topology.ts';

/** The coordinators' view must equal the agents' truth within this long after the last fault healed and the last
 * client operation was answered (whichever is later). */
export const CONVERGENCE_BOUND_MS = 10_000;

export type FaultPlan = (cluster: ChaosCluster, at: (ms: number) => Promise<void>) => Promise<void>;

export type ScenarioResult = { name: string; verdicts: Verdict[]; table: string; convergenceMs: number | undefined };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runScenario(images: ChaosImages, name: string, seed: number, faults: FaultPlan, workload: Partial<WorkloadOptions> = {}): Promise<ScenarioResult> {
  const runId = `${name}-${Date.now().toString(36)}`;
  const started = Date.now();
  let cluster: ChaosCluster | undefined;
  const tmp = await mkdtemp(join(tmpdir(), `allot-chaos-${name}-`));
  try {
    cluster = await ChaosCluster.start(images, runId);
    const c = cluster;
    const startupMs = Date.now() - started;
    const load = new Workload(c, { seed, prefix: name, workers: 6, durationMs: 20_000, opDeadlineMs: 45_000, requestTimeoutMs: 5_000, releaseProbability: 0.3, ...workload });
    const t0 = Date.now();
    let lastHeal = t0;
    const at = async (ms: number) => {
      await sleep(Math.max(0, t0 + ms - Date.now()));
    };
    const faultsDone = faults(c, at).then(() => {
      lastHeal = Date.now();
    });
    await Promise.all([load.run(), faultsDone]);
    await c.recoveriesDone();
    const quietAt = Math.max(lastHeal, load.lastAnswerAt);

    // Convergence: the agents' truth (their own usage endpoints), then the coordinators' view until they agree.
    const truth = new Map<string, { memory: number; cpu: number; count: number }>();
    const endpoint = new Map<string, Allocation[]>();
    for (const h of HOSTS) {
      const u = await retry(() => c.agent(h.nodeId, 'usage', {}), `usage of ${h.nodeId}`).catch(async (e: unknown) => {
        // An agent that never answers again: its own last words say why.
        await printLastLogs(c, h.nodeId);
        throw e;
      });
      truth.set(h.nodeId, { memory: u.memory.committed, cpu: u.cpu.committed, count: u.allocationCount });
      const listed = await retry(() => c.agent(h.nodeId, 'allocations', { status: 'live', limit: 100_000 }), `allocations of ${h.nodeId}`);
      endpoint.set(h.nodeId, listed.allocations);
    }
    const convergenceMs = await measureConvergence(c, truth, quietAt);
    const convergence: Verdict = {
      name: `coordinators' view converges (bound ${CONVERGENCE_BOUND_MS / 1000} s)`,
      ok: convergenceMs !== undefined && convergenceMs <= CONVERGENCE_BOUND_MS,
      problems: convergenceMs === undefined ? [`no agreement within ${(CONVERGENCE_BOUND_MS * 3) / 1000} s`] : convergenceMs > CONVERGENCE_BOUND_MS ? [`took ${convergenceMs} ms`] : [],
      note: `${convergenceMs ?? '-'} ms after the last heal/answer; truth: ${[...truth].map(([n, t]) => `${n} ${t.count} allocs ${t.memory} MiB ${t.cpu} vCPU`).join(', ')}`,
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

    // Graceful stop (agents flush and close their ledgers), then the ledger files out of the stopped containers.
    const exitCodes: string[] = [];
    for (const id of ['c1', 'c2']) {
      const code = await c.stopGracefully(id);
      if (code !== 0) {
        exitCodes.push(`${id} exited ${code} on SIGTERM`);
        await printLastLogs(c, id);
      }
    }
    await Promise.all(
      HOSTS.map(async (h) => {
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
    const verdicts = [
      ...auditReplies(load.ops, ledgers, endpoint),
      convergence,
      coordinatorsServe,
      { name: 'no process crashed but those killed', ok: crashes.length === 0, problems: crashes, note: c.killed.size > 0 ? `killed on purpose: ${[...c.killed].join(', ')}` : undefined } as Verdict,
    ];
    const recovered = c.recoveries.map((r) => `${r.member} ${r.ms === undefined ? 'never' : `${r.ms} ms`}`).join(', ') || '-';
    const table = formatTable(
      name,
      { 'cluster start': `${(startupMs / 1000).toFixed(1)} s`, ...load.summary(), 'ready in view after heal': recovered, convergence: convergenceMs === undefined ? 'never' : `${convergenceMs} ms` },
      verdicts,
    );
    return { name, verdicts, table, convergenceMs };
  } finally {
    await cluster?.close();
    await removeRun(runId);
    await rm(tmp, { recursive: true, force: true });
  }
}

async function retry<T>(f: () => Promise<{ ok: true; value: T } | { ok: false; error: { code: string; message: string } }>, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await f();
    if (r.ok) return r.value;
    if (Date.now() > deadline) throw new Error(`${what}: ${r.error.code}: ${r.error.message}`);
    await sleep(250);
  }
}

/** ms from `from` until the first of six consecutive `allot.sched.nodes` answers that match the truth; undefined if never. */
async function measureConvergence(c: ChaosCluster, truth: Map<string, { memory: number; cpu: number; count: number }>, from: number): Promise<number | undefined> {
  let streakStart: number | undefined;
  let streak = 0;
  const deadline = Date.now() + CONVERGENCE_BOUND_MS * 3;
  while (Date.now() < deadline) {
    const askedAt = Date.now();
    const r = await c.sched('nodes', {}, 2_000);
    const match =
      r.ok &&
      [...truth].every(([id, t]) => {
        const n = r.value.nodes.find((x) => x.nodeId === id);
        return n !== undefined && n.liveness === 'ready' && n.snapshot.memory.committed === t.memory && n.snapshot.cpu.committed === t.cpu && n.snapshot.allocationCount === t.count;
      });
    if (match) {
      streakStart ??= askedAt;
      streak += 1;
      if (streak >= 6) return Math.max(0, streakStart - from);
    } else {
      streakStart = undefined;
      streak = 0;
    }
    await sleep(50);
  }
  return undefined;
}

async function removeRun(runId: string): Promise<void> {
  const d = await docker();
  const filters = JSON.stringify({ label: [`${CHAOS_LABEL}=${runId}`] });
  for (const c of await d.listContainers({ all: true, filters })) await d.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
  for (const n of await d.listNetworks({ filters })) await d.getNetwork(n.Id).remove().catch(() => undefined);
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
