import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startLocalCluster, tempDir, type LocalCluster } from '../harness/index.ts';

/*
 * @allot/client as a scheduler written outside this repository gets it: `pnpm pack` makes a tarball, npm installs it
 * into an empty project (its npm dependencies from the registry, nothing from the workspace), and a plain .mjs script
 * places, checks, releases a VM against a real cluster, retrying with its request id.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLIENT = join(ROOT, 'packages', 'client');

let cluster: LocalCluster;
let project: string;

beforeAll(async () => {
  const packDir = await tempDir('client-pack');
  execFileSync('pnpm', ['pack', '--pack-destination', packDir], { cwd: CLIENT, stdio: 'pipe' });
  const tarball = join(packDir, readdirSync(packDir).find((f) => f.endsWith('.tgz')) ?? 'missing.tgz');
  project = await tempDir('client-consumer');
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'scheduler', version: '1.0.0', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball], {
    cwd: project,
    stdio: 'pipe',
    timeout: 240_000,
  });
  cluster = await startLocalCluster({ agents: [{ nodeId: 'client-n1' }] });
}, 400_000);

afterAll(async () => {
  await cluster?.stop();
  await cleanupAll();
});

describe('@allot/client, packed and installed outside the workspace', () => {
  it('ships its declarations and the wire contract as JSON Schema', () => {
    const installed = join(project, 'node_modules', '@allot', 'client');
    expect(readFileSync(join(installed, 'dist', 'index.d.ts'), 'utf8')).toContain('export declare class AllotClient');
    const place = JSON.parse(readFileSync(join(installed, 'schemas', 'place.request.json'), 'utf8')) as {
      properties: Record<string, unknown>;
    };
    expect(Object.keys(place.properties)).toEqual(expect.arrayContaining(['request', 'placement']));
    // The same schemas are in docs/, as the build wrote them.
    expect(readFileSync(join(ROOT, 'docs', 'wire-schemas', 'sched', 'place.request.json'), 'utf8')).toBe(
      readFileSync(join(installed, 'schemas', 'place.request.json'), 'utf8'),
    );
  });

  it('places, checks and releases a VM from a plain script, and a retry of the same request id is the same VM', () => {
    const script = join(project, 'place.mjs');
    writeFileSync(
      script,
      `import { AllotClient } from '@allot/client';
const client = await AllotClient.connect({ servers: [${JSON.stringify(cluster.server.url)}], tenantId: 'acme' });
if (!client.ok) throw new Error(client.error.message);
const c = client.value;
const placed = await c.place({ resources: { memoryMiB: 2048, vcpus: 2 } }, { requestId: 'vm-1' });
const again = await c.place({ resources: { memoryMiB: 2048, vcpus: 2 } }, { requestId: 'vm-1' });
const check = await c.check({ resources: { memoryMiB: 10_000_000, vcpus: 1 } });
const released = await c.release('vm-1');
await c.close();
console.log(JSON.stringify({ placed, again, check, released }));
`,
    );
    const out = JSON.parse(execFileSync(process.execPath, [script], { cwd: project, encoding: 'utf8', timeout: 60_000 })) as Record<
      string,
      { ok: boolean; value: Record<string, unknown> }
    >;
    expect(out['placed']).toMatchObject({
      ok: true,
      value: { requestId: 'vm-1', nodeId: 'client-n1', allocation: { tenantId: 'acme', status: 'active' } },
    });
    expect((out['again']?.value['allocation'] as { id: string }).id).toBe((out['placed']?.value['allocation'] as { id: string }).id);
    expect(out['check']).toMatchObject({ ok: true, value: { fits: false } });
    expect(out['released']).toMatchObject({ ok: true, value: { status: 'released' } });
  });
});
