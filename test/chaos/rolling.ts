/**
 * Scenario 8: a rolling restart, then a rolling upgrade, of every agent and both coordinators under a placement storm.
 * One process at a time, as kubelet or Nomad roll a fleet: graceful stop (SIGTERM), then the same container started
 * again (restart) or a new one from a later release's image on the same state directory (upgrade: from the previous
 * release to this tree, then to the next), and the next step only once it serves again. Each step is a window of the storm; the placements started in it are counted
 * (acknowledged, refused by code, given up) with every error reply by code, and judged against the bounds below.
 */
import type { OpRecord } from './clients.ts';
import type { Verdict } from './auditor.ts';
import type { AppImages } from './images.ts';
import type { FaultPlan } from './scenario.ts';
import type { ChaosCluster, ServiceSeen } from './topology.ts';

/**
 * The bound on each step's success rate: acknowledged placements over placements whose answer was not a correct
 * refusal (insufficient_capacity, quota_exceeded are the scheduler working). A graceful stop drains: the stopping
 * process finishes what it holds, the coordinators stop choosing an agent that said it is leaving, and a client's
 * retry with the same request id reaches the other coordinator; so every placement of every step must succeed.
 */
const STEP_SUCCESS_BOUND = 1;
/** The storm without any restart, before the first step and after the last: the baseline and the all-upgraded state. */
const QUIET_MS = 4_000;
/** Codes that say the cluster could not serve the attempt (as opposed to a correct no: capacity, quota). */
const AVAILABILITY = new Set(['timeout', 'unavailable', 'internal']);
/** Each step's window runs on this long after the process serves again: placements right after a start count too. */
const SETTLE_MS = 1_000;
/** The step column's width in the table ('upgrade c2 to 0.2.0-prev.7bcd952'). */
const STEP_WIDTH = 34;

function upgradeLabel(member: string, to: AppImages): string {
  return `upgrade ${member} to ${to.version}`;
}

type Step = {
  label: string;
  startedAt: number;
  endedAt: number;
  /** The graceful stop's exit code (restart and upgrade steps). */
  exitCode?: number;
  /** ms from SIGTERM until the process served again. */
  downMs?: number;
  /** What answered the services ping at the end of the step, with the release each announced. */
  seen: ServiceSeen[];
};

type StepFigures = {
  places: number;
  acked: number;
  refused: Record<string, number>;
  timedOut: number;
  /** Every error reply by code, retries included (a retried timeout shows here even when the place was acked). */
  errorReplies: Record<string, number>;
  /** The same for the releases and activates started in the step (retried until acknowledged). */
  otherErrorReplies: Record<string, number>;
  /** Places answered ok on their first attempt. */
  firstTry: number;
  /** acked / (places - correct refusals); 1 when there were none. */
  successRate: number;
};

export class RollingRun {
  readonly steps: Step[] = [];
  readonly #order: string[];
  readonly #start: AppImages;
  readonly #upgrades: AppImages[];

  /**
   * `order`: the members in the order they are rolled; `start`: the release the cluster runs at first; `upgrades`: the
   * releases it is upgraded to, one rolling upgrade each, in turn.
   */
  constructor(order: string[], start: AppImages, upgrades: AppImages[]) {
    this.#order = order;
    this.#start = start;
    this.#upgrades = upgrades;
  }

  /** The fault plan: quiet storm, restart each in turn, upgrade each in turn (per release), quiet storm. */
  plan(): FaultPlan {
    return async (c, at) => {
      await at(0);
      await this.#quiet(c, 'storm, nothing restarted');
      for (const m of this.#order) await this.#roll(c, `restart ${m}`, m, () => this.#restart(c, m));
      for (const to of this.#upgrades) for (const m of this.#order) await this.#roll(c, upgradeLabel(m, to), m, () => c.upgrade(m, to));
      await this.#quiet(c, 'storm, all upgraded');
    };
  }

  async #quiet(c: ChaosCluster, label: string): Promise<void> {
    const startedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    const seen = await this.#allSeen(c);
    this.steps.push({ label, startedAt, endedAt: Date.now(), seen });
  }

  /** The services ping until every rolled process answers it (a reply can miss one round on a loaded machine), 10 s at most. */
  async #allSeen(c: ChaosCluster): Promise<ServiceSeen[]> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const seen = await c.servicesSeen();
      if (this.#order.every((m) => seen.some((s) => s.member === m)) || Date.now() > deadline) return seen;
    }
  }

  async #restart(c: ChaosCluster, m: string): Promise<number> {
    const code = await c.stopGracefully(m);
    await c.restart(m);
    return code;
  }

  async #roll(c: ChaosCluster, label: string, m: string, replace: () => Promise<number>): Promise<void> {
    const startedAt = Date.now();
    const exitCode = await replace();
    await c.waitServing(m, startedAt);
    const downMs = Date.now() - startedAt;
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const seen = await this.#allSeen(c);
    this.steps.push({ label, startedAt, endedAt: Date.now(), exitCode, downMs, seen });
  }

  /** The figures of the places started in each step's window. */
  figures(ops: OpRecord[]): StepFigures[] {
    return this.steps.map((step) => {
      const places = ops.filter((o) => o.kind === 'place' && o.startedAt >= step.startedAt && o.startedAt < step.endedAt);
      const refused: Record<string, number> = {};
      const errorReplies: Record<string, number> = {};
      for (const o of places) {
        if (o.outcome === 'refused') refused[o.code ?? '?'] = (refused[o.code ?? '?'] ?? 0) + 1;
        for (const r of o.replies) if (!r.ok) errorReplies[r.code ?? '?'] = (errorReplies[r.code ?? '?'] ?? 0) + 1;
      }
      const otherErrorReplies: Record<string, number> = {};
      for (const o of ops)
        if (o.kind !== 'place' && o.startedAt >= step.startedAt && o.startedAt < step.endedAt)
          for (const r of o.replies)
            if (!r.ok) otherErrorReplies[`${o.kind} ${r.code ?? '?'}`] = (otherErrorReplies[`${o.kind} ${r.code ?? '?'}`] ?? 0) + 1;
      const acked = places.filter((o) => o.outcome === 'acked').length;
      const correctNo = (refused['insufficient_capacity'] ?? 0) + (refused['quota_exceeded'] ?? 0);
      const judged = places.length - correctNo;
      return {
        places: places.length,
        acked,
        refused,
        timedOut: places.filter((o) => o.outcome === 'timed_out').length,
        errorReplies,
        otherErrorReplies,
        firstTry: places.filter((o) => o.replies[0]?.ok === true).length,
        successRate: judged === 0 ? 1 : acked / judged,
      };
    });
  }

  /** The per-step table and the verdicts: every step above the bound, graceful stops exit 0, the upgrade really ran. */
  audit(ops: OpRecord[]): { verdicts: Verdict[]; table: string } {
    const figures = this.figures(ops);
    const codes = (r: Record<string, number>) =>
      Object.entries(r)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || '-';
    const releases = (seen: ServiceSeen[]) => {
      const by = new Map<string, string[]>();
      for (const s of seen) by.set(s.version, [...(by.get(s.version) ?? []), s.member]);
      return [...by].map(([v, ms]) => `${v}: ${ms.join(' ')}`).join('; ');
    };
    const lines = ['\n=== rolling restart and upgrade, per step (places started in the step)'];
    lines.push(
      `  ${'step'.padEnd(STEP_WIDTH)} ${'window'.padStart(7)} ${'down'.padStart(7)} ${'places'.padStart(6)} ${'acked'.padStart(5)} ${'success'.padStart(7)} ${'1st try'.padStart(7)}  refused | error replies by code | release/activate error replies | releases answering`,
    );
    const problems: string[] = [];
    this.steps.forEach((step, i) => {
      const f = figures[i] as StepFigures;
      lines.push(
        `  ${step.label.padEnd(STEP_WIDTH)} ${`${((step.endedAt - step.startedAt) / 1000).toFixed(1)}s`.padStart(7)} ${(step.downMs === undefined ? '-' : `${(step.downMs / 1000).toFixed(1)}s`).padStart(7)} ${String(f.places).padStart(6)} ${String(f.acked).padStart(5)} ${`${(100 * f.successRate).toFixed(1)}%`.padStart(7)} ${`${f.places === 0 ? '-' : ((100 * f.firstTry) / f.places).toFixed(1)}%`.padStart(7)}  ${codes(f.refused)} | ${codes(f.errorReplies)} | ${codes(f.otherErrorReplies)} | ${releases(step.seen)}`,
      );
      if (f.places === 0) problems.push(`${step.label}: no placement started in the step`);
      else if (f.successRate < STEP_SUCCESS_BOUND)
        problems.push(
          `${step.label}: success ${(100 * f.successRate).toFixed(1)}% < ${100 * STEP_SUCCESS_BOUND}% (refused ${codes(f.refused)}, ${f.timedOut} timed out)`,
        );
      if (step.exitCode !== undefined && step.exitCode !== 0) problems.push(`${step.label}: the graceful stop exited ${step.exitCode}`);
    });
    // Each release in turn: announced by every process before the first restart, and after its rolling upgrade's last step.
    const upgradeProblems = [
      { after: 'the start', step: this.steps[0], version: this.#start.version },
      ...this.#upgrades.map((to) => ({
        after: `the upgrade to ${to.version}`,
        step: this.steps.find((s) => s.label === upgradeLabel(this.#order.at(-1) ?? '', to)),
        version: to.version,
      })),
    ].flatMap(({ after, step, version }) => {
      const announcing = step?.seen.filter((s) => s.version === version).length ?? 0;
      return announcing === this.#order.length
        ? []
        : [`after ${after} ${announcing} of ${this.#order.length} processes announce ${version}: ${releases(step?.seen ?? [])}`];
    });
    // Every place that met an availability error on some attempt (even if a retry got the ok): when, and who said so.
    const traced = this.steps.flatMap((step) =>
      ops
        .filter((o) => o.kind === 'place' && o.startedAt >= step.startedAt && o.startedAt < step.endedAt)
        .filter((o) => o.replies.some((r) => !r.ok && AVAILABILITY.has(r.code ?? '')))
        .map(
          (o) =>
            `  ${step.label}: ${o.requestId} (${o.outcome}${o.nodeId === undefined ? '' : ` on ${o.nodeId}`}), started +${o.startedAt - step.startedAt} ms: ${o.replies
              .map((r) => `+${r.at - step.startedAt} ms ${r.ok ? 'ok' : `${r.code}: ${r.message ?? ''}`}`)
              .join(' | ')}`,
        ),
    );
    if (traced.length > 0) lines.push('  places that met a timeout, unavailable or internal on some attempt:', ...traced.slice(0, 20));
    // Activates and releases refused for good (an activate after its reservation expired is refused not_found).
    const refusedOthers = this.steps.flatMap((step) =>
      ops
        .filter((o) => o.kind !== 'place' && o.outcome === 'refused' && o.startedAt >= step.startedAt && o.startedAt < step.endedAt)
        .map((o) => `  ${step.label}: ${o.kind} ${o.requestId}: ${o.code ?? '?'}: ${o.replies.at(-1)?.message ?? ''}`),
    );
    if (refusedOthers.length > 0) lines.push('  activates and releases refused:', ...refusedOthers.slice(0, 20));
    const mixed = this.steps.filter((s) => new Set(s.seen.map((x) => x.version)).size > 1).length;
    const all = figures.reduce((n, f) => n + f.places, 0);
    const worst = Math.min(...figures.map((f) => f.successRate));
    return {
      table: lines.join('\n'),
      verdicts: [
        {
          name: `placements succeed in every step (bound ${100 * STEP_SUCCESS_BOUND}%)`,
          ok: problems.length === 0,
          problems,
          note: `${this.steps.length} steps, ${all} places, worst step ${(100 * worst).toFixed(1)}%`,
        },
        {
          name: 'every process upgraded to each release in turn, two releases side by side meanwhile',
          ok: upgradeProblems.length === 0 && mixed > 0,
          problems: [...upgradeProblems, ...(mixed > 0 ? [] : ['no step ran two releases side by side'])],
          note: `${[this.#start, ...this.#upgrades].map((r) => `${r.version} (protocol ${r.protocolVersion})`).join(' -> ')}; ${mixed} steps with two releases answering`,
        },
      ],
    };
  }
}
