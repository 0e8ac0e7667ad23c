import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALLOT_VERSION } from '@allot/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, isLogMsg, simulatedHostEnv, spawnProcess, startNatsServer, tempDir, type NatsServerHandle } from '../harness/index.ts';

/*
 * The release as an operator gets it: `node scripts/release/deb.ts` builds one single executable per app and the two
 * Debian packages. The packages are checked as dpkg and systemd read them, then unpacked, and the agent and the
 * coordinator are started with their units' own ExecStart lines (paths moved under the unpacked root, the config
 * pointed at this test's NATS): the agent joins and the packaged CLI places a VM on it.
 * Installing with apt on a fresh Debian and purging: test/chaos/deb-install.test.ts.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RELEASE = join(ROOT, 'dist', 'release');

let debs: Record<'allot-agent' | 'allot-coordinator', string>;
let unpacked: string;
let server: NatsServerHandle;

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

beforeAll(async () => {
  run(process.execPath, [join(ROOT, 'scripts/release/deb.ts')]);
  const files = readdirSync(RELEASE).filter((f) => f.endsWith('.deb'));
  const find = (name: string): string =>
    join(RELEASE, files.find((f) => f.startsWith(`${name}_${ALLOT_VERSION}_`)) ?? `${name} missing among ${files.join(', ')}`);
  debs = { 'allot-agent': find('allot-agent'), 'allot-coordinator': find('allot-coordinator') };
  unpacked = await tempDir('release-root');
  for (const deb of Object.values(debs)) run('dpkg-deb', ['-x', deb, unpacked]);
  server = await startNatsServer({ jetstream: true });
}, 600_000);

afterAll(cleanupAll);

/** The ExecStart line of a packaged unit, as words. */
function execStart(unit: string): string[] {
  const line = readFileSync(join(unpacked, 'lib/systemd/system', unit), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('ExecStart='));
  return (line ?? '').slice('ExecStart='.length).split(' ');
}

describe('release packages', () => {
  it('are Debian packages of this version with the executable, the hardened unit and the config as a conffile', () => {
    for (const [name, deb] of Object.entries(debs)) {
      expect(run('dpkg-deb', ['-f', deb, 'Package', 'Version']).trim()).toBe(`Package: ${name}\nVersion: ${ALLOT_VERSION}`);
      expect(run('dpkg-deb', ['-f', deb, 'Depends'])).toContain('adduser');
      const listing = run('dpkg-deb', ['-c', deb]);
      expect(listing).toContain(`./usr/bin/${name}`);
      expect(listing).toContain(`./lib/systemd/system/${name}.service`);
      const control = join(unpacked, 'DEBIAN', name);
      mkdirSync(control, { recursive: true });
      run('dpkg-deb', ['-e', deb, control]);
      const config = name === 'allot-agent' ? 'agent.json' : 'coordinator.json';
      expect(readFileSync(join(control, 'conffiles'), 'utf8')).toBe(`/etc/allot/${config}\n`);
      const unit = readFileSync(join(unpacked, 'lib/systemd/system', `${name}.service`), 'utf8');
      for (const hardening of [
        'User=allot',
        'NoNewPrivileges=yes',
        'ProtectSystem=strict',
        'Restart=on-failure',
        'RestartPreventExitStatus=2',
        'TimeoutStopSec=15s',
      ])
        expect(unit).toContain(hardening);
    }
    expect(readFileSync(join(unpacked, 'lib/systemd/system/allot-agent.service'), 'utf8')).toContain('StateDirectory=allot/agent');
  });

  it('have units that systemd-analyze verify accepts without a warning', async () => {
    // verify checks that ExecStart's binary exists on this machine: a copy of the unit names the unpacked one.
    const dir = await tempDir('release-units');
    for (const name of Object.keys(debs)) {
      const unit = readFileSync(join(unpacked, 'lib/systemd/system', `${name}.service`), 'utf8').replace(
        'ExecStart=/usr/bin/',
        `ExecStart=${unpacked}/usr/bin/`,
      );
      writeFileSync(join(dir, `${name}.service`), unit);
      const verified = spawnSync('systemd-analyze', ['verify', join(dir, `${name}.service`)], { encoding: 'utf8' });
      // An unknown or misspelt key is only a warning (exit 0): any line about the unit fails the test.
      expect(verified.stderr.split('\n').filter((l) => l.includes(name))).toEqual([]);
      expect(verified.status).toBe(0);
    }
  });

  it("run from their units' ExecStart lines: the agent joins the coordinator and the packaged allot places a VM on it", async () => {
    const state = await tempDir('release-state');
    const agentConfig = join(state, 'agent.json');
    const coordinatorConfig = join(state, 'coordinator.json');
    writeFileSync(agentConfig, JSON.stringify({ nodeId: 'packaged-1', stateDir: join(state, 'agent'), nats: { servers: [server.url] } }));
    writeFileSync(
      coordinatorConfig,
      JSON.stringify({ coordinatorId: 'packaged-c1', nats: { servers: [server.url] }, http: { host: '127.0.0.1', port: 0 } }),
    );
    const start = (unit: string, config: string, env: Record<string, string>) => {
      const [binary, ...args] = execStart(unit);
      // The unit's own words, with the binary under the unpacked root and --config naming this test's file.
      const argv = args.map((a) => (a.startsWith('/etc/allot/') ? config : a));
      return spawnProcess({
        name: unit,
        script: join(unpacked, binary ?? ''),
        args: argv,
        executable: true,
        env: { NODE_ENV: 'test', ALLOT_LOG_FORMAT: 'json', ...env },
      });
    };
    const coordinator = start('allot-coordinator.service', coordinatorConfig, {});
    const agent = start('allot-agent.service', agentConfig, { ALLOT_SIMULATED_HOST: simulatedHostEnv({ cores: 8, memoryMiB: 16_384 }) });
    await agent.waitForLine(isLogMsg('agent ready'), 60_000);
    await coordinator.waitForLine(isLogMsg('coordinator ready'), 60_000);
    // The dashboard comes with the executable (no dashboardDir, nothing on disk beside it): its page and its script.
    const listening = await coordinator.waitForLine(isLogMsg('dashboard listening'), 10_000);
    const url = String((listening as { url?: string }).url);
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<title>');
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1] ?? 'no script in the page';
    expect((await fetch(`${url}${script}`)).status).toBe(200);

    const cli = join(unpacked, 'usr/bin/allot');
    expect(run(cli, ['--version'])).toBe(`allot ${ALLOT_VERSION} (node ${process.version})\n`);
    let placed = '';
    for (let attempt = 0; attempt < 30 && !placed.includes('packaged-1'); attempt++) {
      const out = spawnSync(cli, ['place', '--tenant', 'demo', '--memory', '1024', '--vcpus', '1', '--json', '-s', server.url], {
        encoding: 'utf8',
      });
      placed = out.stdout;
      if (!placed.includes('packaged-1')) await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    expect(JSON.parse(placed)).toMatchObject({ allocation: { nodeId: 'packaged-1', status: 'active' } });
    expect(await agent.stop('SIGTERM', 15_000)).toBe(0);
    expect(await coordinator.stop('SIGTERM', 15_000)).toBe(0);
  });
});
