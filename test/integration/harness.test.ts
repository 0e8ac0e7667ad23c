import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { USAGE_STREAM } from '@allot/protocol';
import { ensureStreams } from '@allot/nats';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupAll, spawnProcess, startNatsCluster, startNatsServer, tempDir, waitFor } from '../harness/index.ts';

afterEach(cleanupAll);

describe('the nats-server harness', () => {
  it('starts a server that accepts a connection, and restarts it on the same port keeping JetStream data', async () => {
    const server = await startNatsServer({ jetstream: true });
    const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'KEEP', subjects: ['keep.>'] });
    await jetstream(nc).publish('keep.one', 'hello');

    await server.restart();
    // The client reconnects to the same URL: the port did not change.
    const info = await waitFor(() => jsm.streams.info('KEEP'), { timeoutMs: 15_000, message: 'stream info after restart' });
    expect(info.state.messages).toBe(1);
    const stored = await jsm.streams.getMessage('KEEP', { seq: 1 });
    expect(stored?.string()).toBe('hello');
    await nc.close();
  });

  it('kills a server so that its clients notice, and starts it again', async () => {
    const server = await startNatsServer({ jetstream: false });
    const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
    const firstPid = server.pid;
    await server.kill();
    expect(server.pid).toBeUndefined();
    await server.restart();
    expect(server.pid).not.toBe(firstPid);
    await waitFor(
      async () => {
        await nc.flush();
        return true;
      },
      { timeoutMs: 15_000, message: 'the client to reconnect' },
    );
    await nc.close();
  });
});

describe('the three-node cluster harness', () => {
  it('elects a JetStream meta leader and keeps an R3 stream readable and writable when one server is killed', async () => {
    const cluster = await startNatsCluster(3);
    expect(await cluster.metaLeader()).toMatch(/^s[123]$/);
    const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'R3', subjects: ['r3.>'], num_replicas: 3 });
    // allot's own streams as R3 on this server version (2.9.10): the config must hold no newer options.
    const allot = await ensureStreams(jsm, { replicas: 3 });
    expect(allot.ok || allot.error).toBe(true);
    expect((await jsm.streams.info(USAGE_STREAM)).config.num_replicas).toBe(3);
    const js = jetstream(nc);
    await js.publish('r3.a', 'before');

    // Kill the stream's leader, the worst case: a new leader must be elected from the two survivors.
    const info = await jsm.streams.info('R3');
    const victim = cluster.servers.find((s) => s.name === info.cluster?.leader) ?? cluster.servers[0];
    await victim?.kill();

    await waitFor(() => js.publish('r3.a', 'after', { timeout: 2_000 }), {
      timeoutMs: 30_000,
      message: 'a publish to the R3 stream with one server down',
    });
    const after = await waitFor(() => jsm.streams.info('R3'), { timeoutMs: 15_000, message: 'stream info' });
    expect(after.state.messages).toBe(2);
    expect(after.cluster?.leader).not.toBe(victim?.name);
    expect((await jsm.streams.getMessage('R3', { seq: 1 }))?.string()).toBe('before');
    await nc.close();
  });
});

describe('the process harness', () => {
  it('collects JSON log lines, waits for one, and returns the exit code after SIGTERM', async () => {
    const dir = await tempDir('proc');
    const script = join(dir, 'child.ts');
    await writeFile(
      script,
      [
        "console.log(JSON.stringify({ level: 30, msg: 'ready', port: Number(process.env.PORT) }));",
        "console.log('plain text');",
        "process.on('SIGTERM', () => { console.log(JSON.stringify({ msg: 'bye' })); process.exit(7); });",
        'setInterval(() => {}, 1000);',
      ].join('\n'),
    );
    const child = spawnProcess({ name: 'child', script, env: { PORT: '1234' } });
    const ready = await child.waitForLine((l) => typeof l === 'object' && l['msg'] === 'ready');
    expect(ready).toMatchObject({ port: 1234 });
    await child.waitForLine((l) => l === 'plain text');
    expect(await child.stop('SIGTERM', 5_000)).toBe(7);
    expect(child.lines.at(-1)).toEqual({ msg: 'bye' });
  });

  it('rejects waitForLine when the process exits without printing the line', async () => {
    const dir = await tempDir('proc');
    const script = join(dir, 'quits.ts');
    await writeFile(script, 'process.exit(3);\n');
    const child = spawnProcess({ name: 'quits', script });
    await expect(child.waitForLine(() => false, 10_000)).rejects.toThrow(/exited \(code 3/);
  });
});
