// The dashboard server and the metrics listeners (agent and coordinator) are one HTTP module (@allot/telemetry's
// listenHttp): they refuse what none of them reads the same way, and stop the same way.
import { connect } from 'node:net';
import { serveHttp } from '@allot/telemetry';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterView } from '../view.ts';
import { startHttpServer } from './server.ts';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

/** Both kinds of listener on loopback, by name, with their port. */
async function listeners(): Promise<{ name: string; port: number }[]> {
  const metrics = await serveHttp({ host: '127.0.0.1', port: 0, routes: { '/metrics': (_req, res) => void res.end('m') } });
  stops.push(() => metrics.close());
  const dashboard = await startHttpServer(
    { view: new ClusterView({ lostAfterMs: 30_000 }) },
    { host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }) },
  );
  if (!dashboard.ok) throw new Error(dashboard.error.message);
  stops.push(() => dashboard.value.stop());
  return [
    { name: 'metrics', port: metrics.port },
    { name: 'dashboard', port: Number(new URL(dashboard.value.url).port) },
  ];
}

/** Writes raw bytes and returns the status line of the answer (or 'closed'). */
function exchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(text === '' ? 'closed' : (text.split('\r\n')[0] ?? '')));
    setTimeout(() => socket.destroy(), 2_000);
  });
}

describe('every HTTP listener of allot', () => {
  it('refuses a request with a body (none of them reads one) with 413, whatever the path', async () => {
    for (const { name, port } of await listeners()) {
      const answer = await exchange(
        port,
        'POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n' + 'x'.repeat(1000),
      );
      expect({ name, answer }).toEqual({ name, answer: 'HTTP/1.1 413 Payload Too Large' });
    }
  });

  it('refuses headers past 8 KiB with 431', async () => {
    for (const { name, port } of await listeners()) {
      const answer = await exchange(
        port,
        `GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'y'.repeat(9_000)}\r\nConnection: close\r\n\r\n`,
      );
      expect({ name, answer }).toEqual({ name, answer: 'HTTP/1.1 431 Request Header Fields Too Large' });
    }
  });
});
