/**
 * The Debian packages on a fresh Debian (docs/operations.md, "Install"): in a bookworm container assembled by
 * debootstrap from Debian's packages (test/chaos/debian-image.ts, cached by the hash of its recipe), with no network,
 * apt installs the two .debs offline; the agent and the coordinator run from their units' ExecStart lines as systemd
 * would run them (user allot, the unit's Environment= lines and nothing else, StateDirectory made 0700 for allot,
 * UMask=0077), against a nats-server in the same container; the agent joins and the packaged allot places a VM on it.
 * Then purge: the config, the binaries, the units and dpkg's records go; the ledger under /var/lib/allot/agent stays
 * (the operator's data, as the postrm says), and so does the allot system user (Debian leaves system users in place).
 * There is no systemd in the container: the maintainer scripts' systemctl calls are skipped by their own guards.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ALLOT_VERSION } from '@allot/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, spawnProcess, type OutputLine, type ProcessHandle } from '../harness/index.ts';
import { ensureDebianImage } from './debian-image.ts';
import { CHAOS_LABEL } from './docker.ts';
import { REPO_ROOT } from './images.ts';

// ALLOT_RELEASE_DIR: packages built elsewhere (implies ALLOT_RELEASE_BUILT=1).
const RELEASE = process.env['ALLOT_RELEASE_DIR'] ?? join(REPO_ROOT, 'dist', 'release');
const NATS_SERVER = process.env['NATS_SERVER_BIN'] ?? join(REPO_ROOT, '.tools/nats/nats-server');
const NATS_URL = 'nats://127.0.0.1:4222';
const SYSTEMD_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let container = '';

/** Runs `script` with bash in the container as root; its stdout, or a thrown error with both streams. */
function sh(script: string, timeoutMs = 60_000): string {
  const out = spawnSync('docker', ['exec', container, 'bash', '-c', script], { encoding: 'utf8', timeout: timeoutMs });
  if (out.status !== 0)
    throw new Error(`in the container: ${script}\nexit ${String(out.status)} ${String(out.signal ?? '')}\n${out.stdout}\n${out.stderr}`);
  return out.stdout;
}

/** sh, reporting the exit status instead of throwing. */
function status(script: string, timeoutMs = 30_000): number | null {
  return spawnSync('docker', ['exec', container, 'bash', '-c', script], { encoding: 'utf8', timeout: timeoutMs }).status;
}

const deb = (name: string): string => `/debs/${name}_${ALLOT_VERSION}_amd64.deb`;

function aptInstall(name: string): string {
  // The container has no network: everything the package depends on must already be on the fresh system.
  return sh(`cd /tmp && DEBIAN_FRONTEND=noninteractive apt-get install -y ${deb(name)} 2>&1`, 180_000);
}

const saysReady = (what: string) => (line: OutputLine) => (typeof line === 'object' ? line['msg'] === what : line.includes(what));

/**
 * Starts the unit's service as systemd would: its ExecStart and Environment= lines read from the installed unit,
 * user and group allot, an otherwise empty environment, the StateDirectory made for allot (0700), UMask=0077, cwd /.
 * (runuser stays between, as the parent that waits: systemd would be that parent.)
 */
function startUnit(name: string): ProcessHandle {
  const unit = sh(`cat /lib/systemd/system/${name}.service`);
  const values = (key: string) =>
    unit
      .split('\n')
      .filter((l) => l.startsWith(`${key}=`))
      .map((l) => l.slice(key.length + 1));
  const [execStart] = values('ExecStart');
  const user = values('User')[0] ?? 'root';
  const group = values('Group')[0] ?? user;
  const umask = values('UMask')[0] ?? '0022';
  const stateDirs = values('StateDirectory').flatMap((v) => v.split(' '));
  const stateMode = values('StateDirectoryMode')[0] ?? '0755';
  const makeState = stateDirs
    .map((d) => `install -d -m 0755 /var/lib/${d.split('/')[0]} && install -d -o ${user} -g ${group} -m ${stateMode} /var/lib/${d}`)
    .join(' && ');
  const script = [
    makeState || 'true',
    'cd /',
    `umask ${umask}`,
    `exec runuser -u ${user} -g ${group} -- env -i ${SYSTEMD_PATH} ${values('Environment').join(' ')} ${execStart ?? 'false'}`,
  ].join(' && ');
  return spawnProcess({ name, script: 'docker', executable: true, args: ['exec', container, 'bash', '-c', script] });
}

/** The pid and owner of the process running `binary` (the service itself, not runuser), or undefined. */
function serviceProcess(binary: string): { pid: string; user: string } | undefined {
  const found = sh(
    `for p in /proc/[0-9]*; do [ "$(tr '\\0' ' ' < $p/cmdline 2>/dev/null | cut -d' ' -f1)" = ${binary} ] && echo "\${p#/proc/} $(stat -c %U $p)"; done; true`,
  ).trim();
  if (found === '') return undefined;
  const [pid = '', user = ''] = found.split('\n')[0]?.split(' ') ?? [];
  return { pid, user };
}

/** systemctl stop: SIGTERM to the service's process; its exit code (-1 when it is still running after 20 s). */
async function stopUnit(binary: string, handle: ProcessHandle): Promise<number | null> {
  const service = serviceProcess(binary);
  if (service === undefined) throw new Error(`${binary} is not running`);
  sh(`kill -TERM ${service.pid}`);
  const exit = await Promise.race([handle.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 20_000))]);
  return exit === undefined ? -1 : exit.code;
}

beforeAll(async () => {
  // The packages of this tree (as test/integration/release.test.ts builds them; ALLOT_RELEASE_BUILT=1: the ones in
  // dist/release, e.g. just made by `pnpm release`).
  if (process.env['ALLOT_RELEASE_BUILT'] !== '1' && process.env['ALLOT_RELEASE_DIR'] === undefined)
    execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/release/deb.ts')], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 900_000 });
  expect(readdirSync(RELEASE).filter((f) => f.endsWith('.deb'))).toEqual(
    expect.arrayContaining([`allot-agent_${ALLOT_VERSION}_amd64.deb`, `allot-coordinator_${ALLOT_VERSION}_amd64.deb`]),
  );
  expect(existsSync(NATS_SERVER)).toBe(true);
  const image = ensureDebianImage();
  console.log(`debian image ${image.tag}: ${image.built ? 'built' : 'cached'} in ${image.ms} ms`);
  container = execFileSync(
    'docker',
    [
      'run',
      '-d',
      '--rm',
      '--network',
      'none',
      '--label',
      `${CHAOS_LABEL}=deb-install`,
      '-v',
      `${RELEASE}:/debs:ro`,
      '-v',
      `${NATS_SERVER}:/usr/local/bin/nats-server:ro`,
      image.tag,
      'sleep',
      'infinity',
    ],
    { encoding: 'utf8', timeout: 120_000 },
  ).trim();
}, 1_500_000);

afterAll(async () => {
  await cleanupAll();
  if (container !== '') spawnSync('docker', ['rm', '-f', '-v', container], { timeout: 60_000 });
});

describe('the .deb packages on a fresh Debian', () => {
  let agent: ProcessHandle;
  let coordinator: ProcessHandle;

  it('install offline with apt: the allot system user, the executable, the unit and the config readable only by allot', () => {
    expect(status('getent passwd allot')).toBe(2); // fresh: no such user yet
    aptInstall('allot-agent');
    expect(sh("dpkg-query -W -f '${Status} ${Version}' allot-agent")).toBe(`install ok installed ${ALLOT_VERSION}`);
    const [, , uid, , , home, shell] = sh('getent passwd allot').trim().split(':');
    expect(Number(uid)).toBeLessThan(1000); // a system user
    expect([home, shell]).toEqual(['/nonexistent', '/usr/sbin/nologin']);
    expect(sh('stat -c "%U:%G %a" /etc/allot /etc/allot/agent.json /usr/bin/allot-agent').trim().split('\n')).toEqual([
      'root:allot 750',
      'root:allot 640',
      'root:root 755',
    ]);
    expect(status('test -f /lib/systemd/system/allot-agent.service')).toBe(0);
  });

  it("runs the agent from its unit's ExecStart line as user allot: it joins the NATS cluster", async () => {
    sh('nohup nats-server -js -a 127.0.0.1 -p 4222 -sd /nats-test >/tmp/nats.log 2>&1 &');
    sh(
      'for i in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/4222) 2>/dev/null && exit 0; sleep 0.1; done; cat /tmp/nats.log; exit 1',
      30_000,
    );
    // The operator's edit of the conffile: this cluster's NATS (no credentials here, said out loud), a simulated host.
    const config = {
      nodeId: 'deb-1',
      stateDir: '/var/lib/allot/agent',
      simulatedHost: { cores: 8, memoryMiB: 16_384 },
      nats: { servers: [NATS_URL], insecure: true },
    };
    sh(`cat > /etc/allot/agent.json <<'EOF'\n${JSON.stringify(config)}\nEOF`);
    agent = startUnit('allot-agent');
    await agent.waitForLine(saysReady('agent ready'), 60_000);
    // The process is the allot user's, and so is the ledger it wrote (0700, from StateDirectoryMode).
    expect(serviceProcess('/usr/bin/allot-agent')?.user).toBe('allot');
    expect(sh('stat -c "%U %a" /var/lib/allot/agent').trim()).toBe('allot 700');
  });

  it('with allot-coordinator installed beside it, the packaged allot places a VM on the agent', async () => {
    aptInstall('allot-coordinator');
    const config = { coordinatorId: 'deb-c1', nats: { servers: [NATS_URL], insecure: true } };
    sh(`cat > /etc/allot/coordinator.json <<'EOF'\n${JSON.stringify(config)}\nEOF`);
    coordinator = startUnit('allot-coordinator');
    await coordinator.waitForLine(saysReady('coordinator ready'), 60_000);
    expect(sh('/usr/bin/allot --version')).toContain(`allot ${ALLOT_VERSION}`);
    let placed = '';
    for (let attempt = 0; attempt < 30 && !placed.includes('deb-1'); attempt++) {
      placed = spawnSync(
        'docker',
        ['exec', container, '/usr/bin/allot', 'place', '--tenant', 'demo', '--memory', '1024', '--vcpus', '1', '--json', '-s', NATS_URL],
        { encoding: 'utf8', timeout: 30_000 },
      ).stdout;
      if (!placed.includes('deb-1')) await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    expect(JSON.parse(placed)).toMatchObject({ allocation: { nodeId: 'deb-1', status: 'active' } });
    expect(await stopUnit('/usr/bin/allot-coordinator', coordinator)).toBe(0);
    expect(await stopUnit('/usr/bin/allot-agent', agent)).toBe(0);
  });

  it('purge leaves nothing of allot behind but the ledger under /var/lib/allot/agent (and the system user)', () => {
    const purged = sh('DEBIAN_FRONTEND=noninteractive apt-get purge -y allot-agent allot-coordinator 2>&1', 180_000);
    expect(purged).toContain('kept /var/lib/allot/agent');
    expect(status('dpkg-query -W allot-agent allot-coordinator 2>/dev/null | grep -q .')).not.toBe(0);
    for (const gone of [
      '/etc/allot',
      '/usr/bin/allot',
      '/usr/bin/allot-agent',
      '/usr/bin/allot-coordinator',
      '/lib/systemd/system/allot-agent.service',
      '/usr/share/allot',
    ])
      expect(status(`test -e ${gone}`), gone).not.toBe(0);
    // Every path on the system whose name says allot (outside the test's mount, its nats-server's store, the kernel's).
    const left = sh(
      "find / -xdev \\( -path /debs -o -path /nats-test -o -path /proc -o -path /sys -o -path /dev \\) -prune -o -name '*allot*' -print",
    )
      .trim()
      .split('\n')
      .sort();
    expect(left).toEqual(['/var/lib/allot']);
    expect(sh('ls /var/lib/allot/agent').trim()).not.toBe(''); // the ledger, kept
    expect(status('getent passwd allot')).toBe(0);
  });
});
