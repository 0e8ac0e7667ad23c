import { metrics } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { serveHttp, type HttpServer } from './http.ts';
import type { StartedMetrics } from './metrics-options.ts';
import { startMetrics } from './metrics.ts';

let m: StartedMetrics | undefined;
let server: HttpServer | undefined;
afterEach(async () => {
  await server?.close();
  await m?.shutdown();
  server = undefined;
  m = undefined;
});

describe('startMetrics', () => {
  it('serves what the global meter records, in Prometheus text, names as given and seconds buckets', async () => {
    m = await startMetrics({ service: 'allot-test', nodeId: 'n1' });
    const meter = metrics.getMeter('allot');
    meter.createCounter('allot_things_total').add(3, { outcome: 'ok' });
    meter.createHistogram('allot_thing_duration_seconds', { unit: 's' }).record(0.002);
    meter.createObservableGauge('allot_thing_bytes').addCallback((r) => r.observe(1024, { node: 'n1' }));
    server = await serveHttp({
      host: '127.0.0.1',
      port: 0,
      routes: {
        '/metrics': m.handler,
        '/boom': () => {
          throw new Error('boom');
        },
      },
    });
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('# TYPE allot_things_total counter');
    expect(text).toContain('allot_things_total{outcome="ok"} 3');
    expect(text).toContain('allot_thing_bytes{node="n1"} 1024');
    expect(text).toContain('allot_thing_duration_seconds_bucket{le="0.0025"} 1');
    expect(text).toContain('allot_thing_duration_seconds_bucket{le="0.001"} 0');
    expect(text).toContain('target_info{service_name="allot-test",service_instance_id="n1"} 1');
    // No scope labels on every series.
    expect(text).not.toContain('otel_scope_name');
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${server.url}/boom`)).status).toBe(500);
  });

  it("exports the process's own figures under the names Prometheus client libraries use", async () => {
    m = await startMetrics({ service: 'allot-test' });
    server = await serveHttp({ host: '127.0.0.1', port: 0, routes: { '/metrics': m.handler } });
    // The delay histogram records from its second 20 ms tick on, and a loaded machine runs one tick per loop turn
    // however late: one 60 ms wait could end after a single tick (no sample). Separate turns of 25 ms each tick once.
    for (let turn = 0; turn < 4; turn += 1) await new Promise((resolve) => setTimeout(resolve, 25));
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const value = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('process_resident_memory_bytes')).toBeGreaterThan(10 * 2 ** 20);
    expect(value('process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(value('nodejs_heap_used_bytes')).toBeGreaterThan(2 ** 20);
    expect(text).toMatch(/^nodejs_eventloop_delay_seconds\{quantile="0.99"\} \S+$/m);
  });

  it('exports allot_build_info with the release and the Node version', async () => {
    m = await startMetrics({ service: 'allot-test', version: '9.8.7' });
    server = await serveHttp({ host: '127.0.0.1', port: 0, routes: { '/metrics': m.handler } });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain(`allot_build_info{version="9.8.7",node_version="${process.version}"} 1`);
  });
});
