import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { decode, USAGE_STREAM, usageSubject } from '@allot/protocol';
import { UsageSnapshotSchema, type UsageSnapshot } from '@allot/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AGENT_MAIN,
  cleanupAll,
  COORDINATOR_MAIN,
  isLogMsg,
  simulatedHostEnv,
  spawnProcess,
  startNatsServer,
  tempDir,
  waitFor,
} from '../harness/index.ts';

let nc: NatsConnection | undefined;

/** As an editor or config manager saves: a whole new file renamed into place, so a reload never reads half of it. */
function writeWhole(file: string, value: unknown): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(value));
  renameSync(`${file}.tmp`, file);
}
afterAll(async () => {
  await nc?.close();
  await cleanupAll();
});

const isReloaded = (line: unknown): line is Record<string, unknown> =>
  typeof line === 'object' && line !== null && String((line as Record<string, unknown>)['msg']).startsWith('configuration reloaded');
const isRefused = (line: unknown): line is Record<string, unknown> =>
  typeof line === 'object' && line !== null && String((line as Record<string, unknown>)['msg']).startsWith('configuration reload refused');

describe('an agent sent SIGHUP', () => {
  it('applies a new log level and labels in place, names a changed stateDir as ignored, and keeps everything on a broken file', async () => {
    const server = await startNatsServer({ jetstream: true });
    nc = await connect({ servers: server.url });
    const dir = await tempDir('agent-reload');
    const file = join(dir, 'agent.json');
    const nodeId = 'reload-1';
    const stateDir = join(dir, 'state');
    const write = (patch: Record<string, unknown>) =>
      writeWhole(file, { nodeId, stateDir, logLevel: 'info', labels: { zone: 'a' }, ...patch });
    write({});
    // Everything in the file (no ALLOT_LOG_LEVEL / ALLOT_STATE_DIR / ALLOT_LABELS: the environment would win over it).
    const agent = spawnProcess({
      name: `agent ${nodeId}`,
      script: AGENT_MAIN,
      args: ['--config', file],
      env: {
        ALLOT_LOG_FORMAT: 'json',
        NODE_ENV: 'test',
        ALLOT_NATS_SERVERS: server.url,
        ALLOT_SIMULATED_HOST: simulatedHostEnv({ cores: 8, memoryMiB: 16_384 }),
      },
    });
    await agent.waitForLine(isLogMsg('agent ready'), 30_000);

    const jsm = await jetstreamManager(nc);
    const latestSnapshot = async (): Promise<UsageSnapshot | undefined> => {
      const msg = await jsm.streams.getMessage(USAGE_STREAM, { last_by_subj: usageSubject(nodeId) }).catch(() => null);
      if (msg === null) return undefined;
      const decoded = decode(UsageSnapshotSchema, msg.data, Number.POSITIVE_INFINITY);
      return decoded.ok ? decoded.value : undefined;
    };
    const snapshotWithZone = (zone: string) =>
      waitFor(async () => ((await latestSnapshot())?.labels['zone'] === zone ? await latestSnapshot() : undefined), {
        timeoutMs: 5_000,
        intervalMs: 100,
        message: `a usage snapshot of ${nodeId} labelled zone=${zone}`,
      });
    await snapshotWithZone('a');

    // 1. A quieter log level, a new label, and a stateDir that cannot move under a running agent.
    write({ logLevel: 'error', labels: { zone: 'b', rack: 'r7' }, stateDir: join(dir, 'elsewhere') });
    process.kill(agent.pid, 'SIGHUP');
    const line = (await agent.waitForLine(isReloaded, 5_000)) as Record<string, unknown>;
    expect(line).toMatchObject({
      applied: ['labels.rack', 'labels.zone', 'logLevel'],
      ignored: [{ key: 'stateDir', reason: 'needs a restart' }],
    });
    expect(line['msg']).toBe('configuration reloaded: applied labels.rack, labels.zone, logLevel; ignored stateDir (needs a restart)');
    expect((await snapshotWithZone('b')).labels).toEqual({ zone: 'b', rack: 'r7' });

    // 2. The level took effect: the next reload's info line is not written, though its label is applied.
    write({ logLevel: 'error', labels: { zone: 'c' } });
    process.kill(agent.pid, 'SIGHUP');
    await snapshotWithZone('c');
    expect(agent.lines.filter(isReloaded)).toHaveLength(1);

    // 3. A broken file: every problem is logged and nothing changes.
    write({ logLevel: 'loud', labels: { zone: 'd' }, heartbeatMs: 5 });
    process.kill(agent.pid, 'SIGHUP');
    const refused = (await agent.waitForLine(isRefused, 5_000)) as Record<string, unknown>;
    expect(String(refused['msg'])).toContain('logLevel');
    expect(String(refused['msg'])).toContain('heartbeatMs');
    const before = await latestSnapshot();
    // A later snapshot (the heartbeat) still carries the running labels.
    const later = await waitFor(
      async () => {
        const s = await latestSnapshot();
        return s !== undefined && before !== undefined && s.at > before.at ? s : undefined;
      },
      { timeoutMs: 8_000, intervalMs: 200, message: 'a later usage snapshot' },
    );
    expect(later.labels).toEqual({ zone: 'c' });

    expect(await agent.stop('SIGTERM', 15_000)).toBe(0);
  });
});

describe('a coordinator sent SIGHUP', () => {
  it('applies a new log level, names a changed liveness threshold as needing a restart, and refuses a broken file', async () => {
    const server = await startNatsServer({ jetstream: true });
    const dir = await tempDir('coordinator-reload');
    const file = join(dir, 'c1.json');
    const write = (patch: Record<string, unknown>) =>
      writeWhole(file, { coordinatorId: 'c1', nats: { servers: [server.url] }, logLevel: 'info', ...patch });
    write({});
    const coordinator = spawnProcess({
      name: 'coordinator c1',
      script: COORDINATOR_MAIN,
      args: ['--config', file],
      env: { ALLOT_LOG_FORMAT: 'json', NODE_ENV: 'test' },
    });
    await coordinator.waitForLine(isLogMsg('coordinator ready'), 30_000);

    write({ logLevel: 'warn', liveness: { lostAfterMs: 30_000 } });
    process.kill(coordinator.pid, 'SIGHUP');
    const line = await coordinator.waitForLine(isReloaded, 5_000);
    expect(line).toMatchObject({ applied: ['logLevel'], ignored: [{ key: 'liveness.lostAfterMs', reason: 'needs a restart' }] });

    // Now at warn: a second reload's info line is not written; a broken file's error line is.
    process.kill(coordinator.pid, 'SIGHUP');
    write({ logLevel: 'warn', place: { unknownKey: 1 } });
    process.kill(coordinator.pid, 'SIGHUP');
    const refused = (await coordinator.waitForLine(isRefused, 5_000)) as Record<string, unknown>;
    expect(String(refused['msg'])).toContain('place');
    expect(coordinator.lines.filter(isReloaded)).toHaveLength(1);
    expect(await coordinator.stop('SIGTERM', 10_000)).toBe(0);
  });
});
