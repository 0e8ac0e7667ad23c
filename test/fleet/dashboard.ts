import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

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
}

/**
 * Opens the dashboard of a coordinator in headless Chromium, waits for its first complete render (body[data-ready]
 * and the table's rows), then records every frame interval and every render for `seconds` while the fleet's churn
 * streams deltas.
 */
export async function measureDashboard(url: string, seconds: number): Promise<DashboardFigures> {
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
    const t0 = performance.now();
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
    await page.waitForSelector('.row[data-node-id]', { timeout: 60_000 });
    const gotoToReadyMs = Math.round(performance.now() - t0);
    const firstPaintMs = await page.evaluate(() => (globalThis as unknown as { __allot: { firstRenderMs: number } }).__allot.firstRenderMs);
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
    const sorted = figures.frames.slice(1).sort((a, b) => a - b);
    const q = (s: number[], p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;
    const renders = figures.renders.sort((a, b) => a - b);
    return {
      firstPaintMs,
      gotoToReadyMs,
      frame: { p50: q(sorted, 0.5), p99: q(sorted, 0.99), max: sorted.at(-1) ?? Number.NaN, count: sorted.length },
      render: { p99: q(renders, 0.99), max: renders.at(-1) ?? Number.NaN },
      deltas: figures.deltas,
    };
  } finally {
    await browser.close().catch(() => undefined);
    await rm(userDataDir, { recursive: true, force: true });
  }
}
