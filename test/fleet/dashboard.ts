import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type CDPSession, type Page } from 'playwright-core';

/** Debian's Chromium (scripts/chromium.sh installs it), driven by playwright-core as the dashboard's browser tests do. */
export const CHROMIUM = '/usr/bin/chromium';

export interface DashboardFigures {
  /** From navigation start to the first render that holds the cluster and every node row (the page's own figure). */
  readonly firstPaintMs: number;
  /** From goto() to that render, as an operator waits (includes loading the page's assets). */
  readonly gotoToReadyMs: number;
  /** Frame intervals (requestAnimationFrame) while updates stream: p50, p99, max, ms. */
  readonly frame: { readonly p50: number; readonly p99: number; readonly max: number; readonly count: number };
  /** The page's own render handler per update, p99 and max, ms. */
  readonly render: { readonly p99: number; readonly max: number };
  /** Deltas the page received meanwhile. */
  readonly deltas: number;
  /**
   * Main-thread time per second of streaming, ms (Chromium's Performance metrics: tasks, script, layout, style). Time
   * the page asked for, so it survives a loaded machine better than frame intervals do.
   */
  readonly mainThread: {
    readonly taskMsPerS: number;
    readonly scriptMsPerS: number;
    readonly layoutMsPerS: number;
    readonly styleMsPerS: number;
  };
  /** With `profile`: where the page's CPU went (CDP Profiler), during the first paint and while updates stream. */
  readonly profile?: { readonly firstPaint: ProfileSummary; readonly streaming: ProfileSummary };
}

/** A CPU profile reduced to the functions that took the most time: self, and inclusive (on the stack). */
export interface ProfileSummary {
  readonly totalMs: number;
  readonly self: readonly (readonly [string, number])[];
  readonly inclusive: readonly (readonly [string, number])[];
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** Sums a CDP profile's sample intervals by function (name and file:line), self and inclusive, top `top` of each. */
export function summarizeProfile(profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }, top = 18): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (n: ProfileNode) => {
    const f = n.callFrame;
    const file = f.url === '' ? '' : ` ${f.url.slice(f.url.lastIndexOf('/') + 1)}:${f.lineNumber + 1}`;
    return `${f.functionName === '' ? '(anonymous)' : f.functionName}${file}`;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const leaf = byId.get(profile.samples[i] as number);
    if (leaf === undefined) continue;
    total += ms;
    self.set(name(leaf), (self.get(name(leaf)) ?? 0) + ms);
    const onStack = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) onStack.add(name(byId.get(id) as ProfileNode));
    for (const k of onStack) inclusive.set(k, (inclusive.get(k) ?? 0) + ms);
  }
  const topOf = (m: Map<string, number>) =>
    [...m.entries()]
      .filter(([k]) => k !== '(root)' && k !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => [k, Math.round(v * 10) / 10] as const);
  return { totalMs: Math.round(total), self: topOf(self), inclusive: topOf(inclusive) };
}

async function mainThreadMs(cdp: CDPSession): Promise<Record<string, number>> {
  const { metrics } = (await cdp.send('Performance.getMetrics')) as { metrics: { name: string; value: number }[] };
  return Object.fromEntries(metrics.map((m) => [m.name, m.value * 1000]));
}

async function reloadToReady(page: Page): Promise<void> {
  await page.reload();
  await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
  await page.waitForSelector('.row[data-node-id]', { timeout: 60_000 });
}

/**
 * Opens the dashboard of a coordinator in headless Chromium, waits for its first complete render (body[data-ready]
 * and the table's rows), then records every frame interval and every render for `seconds` while the fleet's churn
 * streams deltas.
 */
export async function measureDashboard(url: string, seconds: number, options: { profile?: boolean } = {}): Promise<DashboardFigures> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/chromium.sh`);
  const userDataDir = await mkdtemp(join(tmpdir(), 'allot-fleet-chromium-'));
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    viewport: { width: 1440, height: 1100 },
  });
  try {
    const page = await browser.newPage();
    // Warm the browser (its caches, the page's assets) once, as an operator's browser is: the figure is the page's.
    await page.goto(url);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
    const cdp = await page.context().newCDPSession(page);
    const t0 = performance.now();
    await reloadToReady(page);
    const gotoToReadyMs = Math.round(performance.now() - t0);
    const firstPaintMs = await page.evaluate(() => (globalThis as unknown as { __allot: { firstRenderMs: number } }).__allot.firstRenderMs);
    await cdp.send('Performance.enable');
    const m0 = await mainThreadMs(cdp);
    const figures = await page.evaluate(async (ms: number) => {
      // Runs in the page (a browser's globals, typed here by hand: this package is typed for Node).
      const w = globalThis as unknown as {
        __allot: { deltas: number; lastRenderMs: number; frames: number };
        requestAnimationFrame(step: (now: number) => void): number;
      };
      const requestAnimationFrame = w.requestAnimationFrame.bind(w);
      const frames: number[] = [];
      const renders: number[] = [];
      const deltas0 = w.__allot.deltas;
      let lastFrames = w.__allot.frames;
      let prev = performance.now();
      const end = prev + ms;
      await new Promise<void>((resolve) => {
        const step = (now: number) => {
          frames.push(now - prev);
          prev = now;
          if (w.__allot.frames !== lastFrames) {
            lastFrames = w.__allot.frames;
            renders.push(w.__allot.lastRenderMs);
          }
          if (now < end) requestAnimationFrame(step);
          else resolve();
        };
        requestAnimationFrame(step);
      });
      return { frames, renders, deltas: w.__allot.deltas - deltas0 };
    }, seconds * 1000);
    const m1 = await mainThreadMs(cdp);
    const perS = (k: string) => Math.round(((m1[k] ?? 0) - (m0[k] ?? 0)) / seconds);
    const mainThread = {
      taskMsPerS: perS('TaskDuration'),
      scriptMsPerS: perS('ScriptDuration'),
      layoutMsPerS: perS('LayoutDuration'),
      styleMsPerS: perS('RecalcStyleDuration'),
    };
    let profile: DashboardFigures['profile'];
    if (options.profile === true) {
      // After the figures: the profiler's own cost must not be in them.
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
      await cdp.send('Profiler.start');
      await reloadToReady(page);
      const first = (await cdp.send('Profiler.stop')) as { profile: Parameters<typeof summarizeProfile>[0] };
      // The reload ended the session's profiler domain state on some versions: enable again.
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.start');
      await page.waitForTimeout(seconds * 1000);
      const streaming = (await cdp.send('Profiler.stop')) as { profile: Parameters<typeof summarizeProfile>[0] };
      profile = { firstPaint: summarizeProfile(first.profile), streaming: summarizeProfile(streaming.profile) };
    }
    const sorted = figures.frames.slice(1).sort((a, b) => a - b);
    const q = (s: number[], p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;
    const renders = figures.renders.sort((a, b) => a - b);
    return {
      firstPaintMs,
      gotoToReadyMs,
      frame: { p50: q(sorted, 0.5), p99: q(sorted, 0.99), max: sorted.at(-1) ?? Number.NaN, count: sorted.length },
      render: { p99: q(renders, 0.99), max: renders.at(-1) ?? Number.NaN },
      deltas: figures.deltas,
      mainThread,
      ...(profile === undefined ? {} : { profile }),
    };
  } finally {
    await browser.close().catch(() => undefined);
    await rm(userDataDir, { recursive: true, force: true });
  }
}
