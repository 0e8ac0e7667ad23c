/// <reference lib="dom" />
// (page.evaluate callbacks run in the browser: they need the DOM types)
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ClusterView, startHttpServer, syntheticSnapshot, type DashboardServer } from '@allot/coordinator';
import type { NodeRow } from '@allot/protocol/http';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, freePort, registerCleanup, startLocalCluster, waitFor, type LocalCluster } from '../harness/index.ts';

/*
 * The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core; scripts/chromium.sh
 * installs it) against a real local cluster: nats-server, three agent processes on simulated hosts (16 cores on two
 * NUMA nodes) and a coordinator process serving the page. Each test leaves a screenshot in test-results/dashboard/.
 * The last test serves 1,000 synthetic nodes from an in-process server to check the table stays virtualised and fast.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIST = join(ROOT, 'apps/dashboard/dist');
const SHOTS = join(ROOT, 'test-results/dashboard');
const CLI = join(ROOT, 'apps/cli/src/main.ts');
const CHROMIUM = '/usr/bin/chromium';
const HEARTBEAT_MS = 500;

const run = promisify(execFile);
const silent = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Parameters<typeof startHttpServer>[1]['logger'];

let cluster: LocalCluster;
let browser: BrowserContext;
let page: Page;
let url: string;
const DASHBOARD_TOKEN = 'dashboard-test-token-0123';

/** `allot place ...` as an operator would type it; the reply's JSON. */
async function cliPlace(args: string[]): Promise<{ nodeId: string; cpuset: number[]; allocation: { id: string } }> {
  const { stdout } = await run(process.execPath, [CLI, 'place', '--server', cluster.server.url, '--json', ...args], {
    cwd: ROOT,
    timeout: 30_000,
  });
  return JSON.parse(stdout) as { nodeId: string; cpuset: number[]; allocation: { id: string } };
}

const shot = (name: string, p: Page = page) => p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

/**
 * A count on the nodes card: the coordinator sends the cluster summary at most once a second (DashboardModel's
 * summaryEveryMs), so it may follow the row that changed it by up to a second.
 */
async function expectCount(label: string, value: string): Promise<void> {
  const selector = `[data-card="nodes"] [data-count="${label}"] .value`;
  await page
    .waitForFunction(([s, v]) => document.querySelector(s)?.textContent === v, [selector, value] as const, { timeout: 3_000 })
    .catch(() => undefined);
  expect(await page.textContent(selector)).toBe(value);
}

async function newPage(): Promise<Page> {
  const p = await browser.newPage();
  p.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  return p;
}

beforeAll(async () => {
  if (!existsSync(join(DIST, 'index.html'))) {
    // scripts/test.sh builds first (turbo run build); a lone `vitest run` of this file builds here.
    await run(process.execPath, [join(ROOT, 'apps/dashboard/node_modules/vite/bin/vite.js'), 'build'], {
      cwd: join(ROOT, 'apps/dashboard'),
      timeout: 120_000,
    });
  }
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/chromium.sh`);
  mkdirSync(SHOTS, { recursive: true });
  const port = await freePort();
  cluster = await startLocalCluster({
    agents: [
      {
        nodeId: 'n1',
        simulatedHost: { cores: 16, memoryMiB: 65_536, numaNodes: 2, sockets: 2 },
        cpuOvercommit: 4,
        labels: { zone: 'a', pool: 'main' },
      },
      {
        nodeId: 'n2',
        simulatedHost: { cores: 16, memoryMiB: 65_536, numaNodes: 2, sockets: 2 },
        cpuOvercommit: 4,
        labels: { zone: 'b', pool: 'main' },
      },
      { nodeId: 'n3', simulatedHost: { cores: 8, memoryMiB: 32_768 }, cpuOvercommit: 2, labels: { zone: 'c', pool: 'edge' } },
    ],
    heartbeatMs: HEARTBEAT_MS,
    coordinatorConfig: {
      liveness: { suspectAfterMs: 3 * HEARTBEAT_MS, lostAfterMs: 60_000, checkEveryMs: 100 },
      http: { host: '127.0.0.1', port, seriesEveryMs: 1_000, token: DASHBOARD_TOKEN },
    },
  });
  url = `http://127.0.0.1:${port}`;
  const userDataDir = await mkdtemp(join(tmpdir(), 'allot-chromium-'));
  // A fresh profile (--user-data-dir) per run, given the way playwright wants it: launchPersistentContext.
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    viewport: { width: 1440, height: 1100 },
  });
  registerCleanup('chromium', async () => {
    await browser.close().catch(() => undefined);
    await rm(userDataDir, { recursive: true, force: true });
  });
  page = await newPage();
}, 180_000);

afterAll(async () => {
  await cleanupAll();
});

describe('the dashboard against a real local cluster', () => {
  it('loads: every node, the cluster figures and the chart, in well under a second', async () => {
    const t0 = Date.now();
    // The token once in the URL: the server keeps it in a cookie and redirects to the page without it.
    await page.goto(`${url}/?token=${DASHBOARD_TOKEN}`);
    expect(new URL(page.url()).search).toBe('');
    await page.waitForSelector('body[data-ready="1"]');
    await page.waitForSelector('.row[data-node-id="n3"]');
    const loadMs = Date.now() - t0;
    const nav = await page.evaluate(() => {
      const e = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      return { domContentLoaded: Math.round(e.domContentLoadedEventEnd), load: Math.round(e.loadEventEnd) };
    });
    console.log(
      `dashboard: cold browser: first full render ${loadMs} ms after goto (DOMContentLoaded ${nav.domContentLoaded} ms, load ${nav.load} ms)`,
    );
    // Warm (the browser running, the assets cached as a returning operator has them): navigation to drawn page.
    const warm: number[] = [];
    for (let i = 0; i < 3; i++) {
      await page.reload();
      await page.waitForSelector('body[data-ready="1"]');
      warm.push(await page.evaluate(() => (window as unknown as { __allot: { firstRenderMs: number } }).__allot.firstRenderMs));
    }
    console.log(`dashboard: warm reloads: first full render at ${warm.join(', ')} ms after navigation start`);
    expect(loadMs).toBeLessThan(5_000); // a cold headless Chromium on a loaded 2-core machine
    expect(Math.min(...warm)).toBeLessThan(1_000);
    await page.waitForSelector('.row[data-node-id="n3"]');
    const rows = await page.$$eval('.spacer > .row', (els) =>
      els.map((e) => [(e as HTMLElement).dataset['nodeId'], (e as HTMLElement).dataset['liveness']]),
    );
    expect(rows.sort()).toEqual([
      ['n1', 'ready'],
      ['n2', 'ready'],
      ['n3', 'ready'],
    ]);
    expect(await page.textContent('[data-card="nodes"] [data-count="ready"] .value')).toBe('3');
    expect(await page.textContent('#conn')).toContain('live');
    // Filter by label: zone=c leaves n3.
    await page.fill('#f-label', 'zone=c');
    await waitFor(async () => (await page.$$('.spacer > .row')).length === 1, { timeoutMs: 2_000, message: 'the label filter' });
    await page.fill('#f-label', '');
    await waitFor(async () => (await page.$$('.spacer > .row')).length === 3, { timeoutMs: 2_000, message: 'the filter cleared' });
    await page.waitForSelector('#chart canvas');
    await shot('01-loaded');
  });

  it('shows a placement made with the CLI on its node within two seconds, and in the event feed', async () => {
    const quota = await cluster.sched('quota.set', {
      requestId: 'dash-quota-acme',
      quota: { tenantId: 'acme', maxVms: 10, maxVcpus: 32, maxMemoryMiB: 65_536 },
    });
    expect(quota.ok).toBe(true);
    const before = await page.textContent('.row[data-node-id="n2"] .c-allocs');
    expect(before).toBe('0');
    const t0 = Date.now();
    const placed = await cliPlace([
      '--tenant',
      'acme',
      '--memory',
      '8G',
      '--vcpus',
      '6',
      '--strategy',
      'manual',
      '--node',
      'n2',
      '--request-id',
      'dash-place-1',
    ]);
    expect(placed.nodeId).toBe('n2');
    const t1 = Date.now();
    await page.waitForFunction(() => document.querySelector('.row[data-node-id="n2"] .c-allocs')?.textContent === '1', undefined, {
      timeout: 2_000,
    });
    console.log(`dashboard: placement on n2 shown ${Date.now() - t1} ms after the CLI answered (the CLI itself took ${t1 - t0} ms)`);
    expect(await page.textContent('.row[data-node-id="n2"] .c-memory .num')).toMatch(/ \/ 8\.0 \/ /);
    await page.waitForSelector('.event[data-kind="allocated"]', { timeout: 2_000 });
    expect(await page.textContent('.event[data-kind="allocated"]')).toContain('n2');
    await page.waitForSelector('.tenant-table tr[data-tenant="acme"]', { timeout: 2_000 });
    // Quota use against each limit, as the quota service counts it.
    await page.waitForFunction(
      () => document.querySelector('.tenant-table tr[data-tenant="acme"]')?.textContent?.includes('6 / 32'),
      undefined,
      { timeout: 2_000 },
    );
    expect(await page.textContent('.tenant-table tr[data-tenant="acme"]')).toContain('1 / 10');
    await shot('02-placed');
  });

  it('shows an exclusive allocation on the cores its cpuset names in the per-core heatmap', async () => {
    const placed = await cliPlace([
      '--tenant',
      'pinned',
      '--memory',
      '4G',
      '--vcpus',
      '4',
      '--exclusive',
      '--numa',
      'require',
      '--strategy',
      'manual',
      '--node',
      'n1',
      '--request-id',
      'dash-excl-1',
    ]);
    expect(placed.nodeId).toBe('n1');
    expect(placed.cpuset).toHaveLength(4);
    await page.click('.row[data-node-id="n1"]');
    await page.waitForSelector('#detail[data-node="n1"] .heatmap');
    const id = placed.allocation.id;
    await waitFor(async () => (await page.$$(`.core[data-alloc="${id}"]`)).length === 4, {
      timeoutMs: 3_000,
      message: 'the exclusive cores in the heatmap',
    });
    const cores = await page.$$eval(`.core[data-alloc="${id}"]`, (els) => els.map((e) => Number((e as HTMLElement).dataset['core'])));
    expect(cores.sort((a, b) => a - b)).toEqual([...placed.cpuset].sort((a, b) => a - b));
    expect(await page.$$eval('.core[data-role="exclusive"]', (els) => els.length)).toBe(4);
    // The allocation list came from the agent (through the coordinator) and names the same cores.
    await page.waitForSelector(`.alloc-table tr[data-allocation-id="${id}"]`, { timeout: 3_000 });
    expect(await page.textContent(`.legend [data-alloc="${id}"]`)).toContain('pinned');
    await shot('03-heatmap');
  });

  it('shows a move in flight with both halves (the source and its held destination) and its events, until it is aborted', async () => {
    const placed = await cliPlace([
      '--tenant',
      'acme',
      '--memory',
      '2G',
      '--vcpus',
      '1',
      '--strategy',
      'manual',
      '--node',
      'n2',
      '--request-id',
      'dash-move-vm',
    ]);
    const moved = await cluster.sched('move', { requestId: 'dash-mv-1', allocationId: placed.allocation.id, tenantId: 'acme', to: 'n1' });
    expect(moved.ok).toBe(true);
    await page.waitForSelector('#moves li[data-state="held"]', { timeout: 5_000 });
    const text = await page.textContent('#moves li[data-state="held"]');
    expect(text).toContain(`${placed.allocation.id} → n1`);
    expect(text).toContain('reserved');
    await page.waitForSelector('.event[data-kind="move_started"]', { timeout: 3_000 });
    await shot('03b-move-in-flight');
    const aborted = await cluster.sched('move.abort', { requestId: 'dash-mv-1', allocationId: placed.allocation.id, tenantId: 'acme' });
    expect(aborted.ok).toBe(true);
    await page.waitForFunction(() => document.querySelector('#moves li[data-state="held"]') === null, undefined, { timeout: 8_000 });
    await page.waitForSelector('.event[data-kind="move_aborted"]', { timeout: 3_000 });
  });

  it("shows a tainted node's taint as key=value:effect, with the operator's reason on hover, and drops it when untainted", async () => {
    const taint = { key: 'maintenance', value: 'bios', effect: 'NoSchedule', reason: 'firmware update until Friday' };
    const tainted = await cluster.sched('node.taint', { requestId: 'dash-taint-n2', nodeId: 'n2', taint });
    expect(tainted.ok).toBe(true);
    const chip = '.row[data-node-id="n2"] .c-taints .taint[data-taint="maintenance"]';
    await page.waitForSelector(chip, { timeout: 5_000 });
    expect(await page.textContent(chip)).toBe('maintenance=bios:NoSchedule');
    expect(await page.getAttribute(chip, 'title')).toBe('firmware update until Friday');
    expect(await page.textContent('.row[data-node-id="n1"] .c-taints')).toBe('');
    await shot('04-taint');
    const untainted = await cluster.sched('node.untaint', { requestId: 'dash-untaint-n2', nodeId: 'n2', key: 'maintenance' });
    expect(untainted.ok).toBe(true);
    await page.waitForSelector(chip, { state: 'detached', timeout: 5_000 });
  });

  it('turns a killed agent suspect on the page', async () => {
    await cluster.agents.get('n3')?.kill();
    const t0 = Date.now();
    await page.waitForSelector('.row[data-node-id="n3"][data-liveness="suspect"]', { timeout: 5_000 });
    console.log(`dashboard: n3 suspect on the page ${Date.now() - t0} ms after SIGKILL (suspect after ${3 * HEARTBEAT_MS} ms of silence)`);
    expect(await page.textContent('.row[data-node-id="n3"] .c-status')).toContain('suspect');
    await expectCount('suspect', '1');
    await page.waitForSelector('.event[data-kind="node_suspect"]', { timeout: 3_000 });
    await shot('04-suspect');
  });

  it('shows a cordoned node draining and a decommissioned one that still holds a VM as decommissioned, with their counts', async () => {
    const cordoned = await cluster.sched('cordon', { requestId: 'dash-cordon-n2', nodeId: 'n2' });
    expect(cordoned.ok).toBe(true);
    await page.waitForSelector('.row[data-node-id="n2"][data-state="draining"]', { timeout: 5_000 });
    expect(await page.textContent('.row[data-node-id="n2"] .c-status')).toContain('draining');
    const placed = await cluster.sched('place', {
      request: { requestId: 'dash-on-n1', tenantId: 'dash', resources: { memoryMiB: 1024, vcpus: 1 } },
      placement: { strategy: 'manual', nodeId: 'n1' },
    });
    expect(placed.ok).toBe(true);
    const d = await cluster.sched('node.decommission', { requestId: 'dash-decom-n1', nodeId: 'n1' }, 30_000);
    expect(d.ok && d.value.removed).toBe(false);
    await page.waitForSelector('.row[data-node-id="n1"][data-state="decommissioned"]', { timeout: 5_000 });
    expect(await page.textContent('.row[data-node-id="n1"] .c-status')).toContain('decommissioned');
    await expectCount('decommissioned', '1');
    await expectCount('draining', '1');
    await shot('05-draining-decommissioned');
  });
});

describe('the dashboard with 1,000 nodes', () => {
  let server: DashboardServer;
  let churn: ReturnType<typeof setInterval>;
  /** Starts the churn again (it runs from the start; a test stops it with clearInterval(churn)). */
  let startChurn: () => void;
  let p1000: Page;

  beforeAll(async () => {
    const view = new ClusterView({ lostAfterMs: 600_000, suspectAfterMs: 120_000 });
    const zones = ['a', 'b', 'c', 'd'];
    const node = (i: number, seq: number) =>
      syntheticSnapshot({
        nodeId: `node-${String(i).padStart(4, '0')}`,
        seq,
        cores: 64,
        numaNodes: 4,
        memoryMiB: 524_288,
        memoryCommitted: ((i * 7919 + seq * 131) % 480) * 1024,
        memoryUsed: ((i * 104729 + seq * 17) % 400) * 1024,
        vcpusCommitted: (i * 31 + seq) % 200,
        exclusive: i % 3 === 0 ? { [`alloc-${i}-a`]: [8, 9, 10, 11], [`alloc-${i}-b`]: [40, 41] } : {},
        reservedCores: [0, 1],
        labels: { zone: zones[i % 4] as string, rack: `r${i % 40}` },
        tenants: { [`tenant-${i % 25}`]: { vms: 1 + (i % 5), vcpus: 4, memoryMiB: 8192 } },
        health:
          i % 97 === 0 ? { status: 'degraded', reasons: ['memory committed above 95% of effective capacity'] } : { status: 'healthy' },
        cordoned: i % 150 === 0,
      });
    for (let i = 0; i < 1_000; i++) view.apply(node(i, 1));
    const started = await startHttpServer(
      { view },
      { host: '127.0.0.1', port: 0, logger: silent, dashboardDir: DIST, seriesEveryMs: 1_000 },
    );
    if (!started.ok) throw new Error(started.error.message);
    server = started.value;
    // Churn: 50 nodes change every 100 ms (500 snapshots a second).
    let seq = 1;
    startChurn = () => {
      churn = setInterval(() => {
        seq += 1;
        for (let k = 0; k < 50; k++) view.apply(node((seq * 50 + k) % 1_000, seq));
      }, 100);
    };
    startChurn();
    p1000 = await newPage();
  });

  afterAll(async () => {
    clearInterval(churn);
    await server?.stop();
  });

  it('renders only the visible rows, scrolls to the end, sorts and stays responsive while the cluster churns', async () => {
    const t0 = Date.now();
    await p1000.goto(server.url);
    await p1000.waitForSelector('body[data-ready="1"]');
    await p1000.waitForSelector('.spacer > .row');
    console.log(`dashboard: 1,000 nodes rendered ${Date.now() - t0} ms after goto`);
    expect(await p1000.textContent('#node-count')).toBe('1000');
    const inDom = await p1000.$$eval('.spacer > .row', (els) => els.length);
    expect(inDom).toBeLessThan(60);

    // Event-loop responsiveness in the page while deltas stream in: the longest gap between 50 ms timers.
    const worstGap = await p1000.evaluate(
      () =>
        new Promise<number>((resolve) => {
          let last = performance.now();
          let worst = 0;
          const timer = setInterval(() => {
            const t = performance.now();
            worst = Math.max(worst, t - last - 50);
            last = t;
          }, 50);
          setTimeout(() => {
            clearInterval(timer);
            resolve(Math.round(worst));
          }, 3_000);
        }),
    );
    const stats = await p1000.evaluate(
      () => (window as unknown as { __allot: { deltas: number; frames: number; lastRenderMs: number; invalid: number } }).__allot,
    );
    console.log(
      `dashboard: 1,000 nodes churning: worst timer lag ${worstGap} ms, ${stats.deltas} deltas, ${stats.frames} frames, last render ${stats.lastRenderMs.toFixed(1)} ms`,
    );
    expect(stats.invalid).toBe(0);
    expect(worstGap).toBeLessThan(250);

    await p1000.$eval('#viewport', (e) => (e.scrollTop = e.scrollHeight));
    await p1000.waitForSelector('.row[data-node-id="node-0999"]', { timeout: 2_000 });
    expect(await p1000.$$eval('.spacer > .row', (els) => els.length)).toBeLessThan(60);
    await p1000.$eval('#viewport', (e) => (e.scrollTop = 0));

    // Sort by memory (descending) and filter by tenant and health.
    await p1000.click('.row.head [data-col="memory"]');
    await p1000.selectOption('#f-tenant', 'tenant-3');
    await waitFor(async () => (await p1000.textContent('#node-count')) === '40 of 1000', {
      timeoutMs: 2_000,
      message: 'the tenant filter',
    });
    await p1000.selectOption('#f-tenant', '');
    await p1000.selectOption('#f-health', 'degraded');
    await waitFor(async () => (await p1000.textContent('#node-count')) === '11 of 1000', {
      timeoutMs: 2_000,
      message: 'the health filter',
    });
    await p1000.selectOption('#f-health', '');
    await p1000.click('.row[data-node-id]');
    await p1000.waitForSelector('#detail .heatmap .core');
    await p1000.waitForTimeout(1_500);
    await shot('05-thousand-nodes', p1000);
  });

  it('shows the coordinator rows in order after churn, whether a delta re-sorts the table or puts rows in place', async () => {
    /** The drawn rows top to bottom: id and the vCPU cell (used / committed / effective). */
    const drawn = () =>
      p1000.$$eval('.spacer > .row', (els) =>
        els
          .map((e) => ({
            y: Number(/translateY\((\d+)px\)/.exec((e as HTMLElement).style.transform)?.[1] ?? -1),
            id: (e as HTMLElement).dataset['nodeId'] ?? '',
            cpu: e.querySelector('.c-cpu .num')?.textContent ?? '',
          }))
          .sort((a, b) => a.y - b.y)
          .map(({ id, cpu }) => ({ id, cpu })),
      );
    const expected = (order: (a: NodeRow, b: NodeRow) => number, n: number) =>
      server.model
        .rows()
        .sort(order)
        .slice(0, n)
        .map((r) => ({ id: r.nodeId, cpu: `${r.cpu.used} / ${r.cpu.committed} / ${r.cpu.effectiveCapacity}` }));
    /** Stops the churn and waits until the page shows the coordinator's rows (the last tick's delta, drawn). */
    const settled = async (order: (a: NodeRow, b: NodeRow) => number) => {
      clearInterval(churn);
      const same = async () => {
        const r = await drawn();
        return r.length > 10 && JSON.stringify(r) === JSON.stringify(expected(order, r.length));
      };
      await waitFor(same, { timeoutMs: 5_000, message: 'the drawn rows to be the coordinator rows' }).catch(() => undefined);
      const r = await drawn();
      expect(r.length).toBeGreaterThan(10);
      expect(r).toEqual(expected(order, r.length));
    };
    await p1000.$eval('#viewport', (e) => (e.scrollTop = 0));
    await p1000.waitForTimeout(200);
    // Sorted by memory (descending, from the test before): a delta moves rows, so the page sorts again.
    const byMemory = (a: NodeRow, b: NodeRow) => {
      const x = a.memory.committed / a.memory.effectiveCapacity;
      const y = b.memory.committed / b.memory.effectiveCapacity;
      return x !== y ? y - x : a.nodeId < b.nodeId ? -1 : 1;
    };
    await settled(byMemory);
    // Sorted by node: the churn's rows keep their place, and are put in place (no sort) with their new figures.
    await p1000.click('.row.head [data-col="node"]');
    startChurn();
    await p1000.waitForTimeout(2_000);
    await settled((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
  });
});
