/**
 * The chaos cluster's credentials: one secured deployment per suite run, made by the product's own generator
 * (`allot security`, apps/cli/src/security), and what each container and each client of the test process gets of it.
 *
 * - Every container sees only its own identity (nkey seed, client certificate and key) and the CA, bind-mounted
 *   read-only, files 0600 and owned by the container's user, as a host would hold its own directory and nothing else.
 * - The NATS servers get the generated users (with the role permissions) rendered for their paths, and a server
 *   certificate per scenario naming that scenario's container names (clients and routes verify them): routes use TLS
 *   with `verify_cert_and_check_known_urls`, so only a certificate naming a route host joins the cluster, never a
 *   client's.
 * - The test process connects per role: one scheduler identity per tenant, the operator (quota.set), the reader (the
 *   read verbs), and an admin identity `auditor` for what only coordinators and admins may do (calling agents directly,
 *   the services ping). The admin identity `admin` only creates the streams and buckets (`allot security setup`).
 */
import { chown, chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnectionConfig } from '@allot/core';
import { ensureDeployment, type Deployment } from '../../apps/cli/src/security/deployment.ts';
import type { Role } from '../../apps/cli/src/security/roles.ts';
import { renderAuthConfig } from '../../apps/cli/src/security/server-config.ts';
import { ensureLeaf } from '../../apps/cli/src/security/tls.ts';

/** Where a container finds its credentials (a read-only bind mount). */
export const CREDENTIALS_DIR = '/etc/allot/nats';
/** Where a NATS server finds its configuration, certificate and the CA (a read-only bind mount). */
export const NATS_CONFIG_DIR = '/etc/nats';
/** The agent and coordinator images run as this user (infra/docker/*.Dockerfile); the NATS image as root. */
const APP_UID = 1000;

export const TENANTS = ['t0', 't1', 't2'];

export type ChaosIdentity = { role: Role; name: string };

export class ChaosSecurity {
  readonly deployment: Deployment;
  readonly #root: string;

  private constructor(root: string, deployment: Deployment) {
    this.#root = root;
    this.deployment = deployment;
  }

  /** Generates the suite's deployment: CA, every identity of the topology and the test's clients. */
  static async generate(agents: readonly string[], coordinators: readonly string[]): Promise<ChaosSecurity> {
    const root = await mkdtemp(join(tmpdir(), 'allot-chaos-security-'));
    const wanted: ChaosIdentity[] = [
      ...agents.map((name) => ({ role: 'agent' as const, name })),
      ...coordinators.map((name) => ({ role: 'coordinator' as const, name })),
      ...TENANTS.map((name) => ({ role: 'scheduler' as const, name })),
      { role: 'admin', name: 'auditor' },
    ];
    const made = await ensureDeployment(join(root, 'deploy'), wanted, { serverHosts: ['localhost', '127.0.0.1'] });
    if (!made.ok) throw new Error(`chaos: cannot generate the deployment: ${made.error.message}`);
    return new ChaosSecurity(root, made.value);
  }

  #identity(role: Role, name: string) {
    const found = this.deployment.identities.find((i) => i.identity.role === role && i.identity.name === name);
    if (found === undefined) throw new Error(`chaos: no identity ${role}/${name} in the deployment`);
    return found;
  }

  get caFile(): string {
    return join(this.deployment.dir, 'ca', 'ca.pem');
  }

  /** The test process's connection as `role`/`name` to the given client URLs (files read from the deployment). */
  client(role: Role, name: string, servers: string[]): NatsConnectionConfig {
    return { ...this.#identity(role, name).connection, servers };
  }

  /**
   * A container's credentials under `runDir`: ca.pem, nkey.seed, tls.pem, tls.key, 0600 in a 0700 directory owned by
   * the container user. Returns the host directory (mounted at CREDENTIALS_DIR) and the ALLOT_NATS_* variables.
   */
  async mountIdentity(
    runDir: string,
    role: Role,
    name: string,
    servers: string[],
  ): Promise<{ hostDir: string; env: Record<string, string> }> {
    const identity = this.#identity(role, name);
    const hostDir = join(runDir, `${role}-${name}`);
    await privateCopy(hostDir, APP_UID, [
      [this.caFile, 'ca.pem'],
      [join(identity.dir, 'nkey.seed'), 'nkey.seed'],
      [join(identity.dir, 'tls.pem'), 'tls.pem'],
      [join(identity.dir, 'tls.key'), 'tls.key'],
    ]);
    return {
      hostDir,
      env: {
        ALLOT_NATS_SERVERS: servers.join(','),
        ALLOT_NATS_NKEY_SEED_FILE: `${CREDENTIALS_DIR}/nkey.seed`,
        ALLOT_NATS_TLS_CA: `${CREDENTIALS_DIR}/ca.pem`,
        ALLOT_NATS_TLS_CERT: `${CREDENTIALS_DIR}/tls.pem`,
        ALLOT_NATS_TLS_KEY: `${CREDENTIALS_DIR}/tls.key`,
      },
    };
  }

  /**
   * The three NATS servers' shared configuration directory for one scenario (mounted at NATS_CONFIG_DIR): a server
   * certificate naming `routeHosts` (the containers' names) and the loopback the test connects through, the client
   * port with TLS and the generated users, and the TLS routes between the servers.
   */
  async mountNatsConfig(runDir: string, routeHosts: string[]): Promise<string> {
    const work = join(runDir, 'nats-cert');
    await mkdir(work, { recursive: true, mode: 0o700 });
    const ca = { cert: this.caFile, key: join(this.deployment.dir, 'ca', 'ca.key') };
    const server = await ensureLeaf({
      ca,
      commonName: 'allot nats-server',
      usage: 'server',
      hosts: [...routeHosts, 'localhost', '127.0.0.1'],
      base: join(work, 'server'),
    });
    if (!server.ok) throw new Error(`chaos: cannot issue the NATS server certificate: ${server.error.message}`);
    const hostDir = join(runDir, 'nats');
    const tls = {
      certFile: `${NATS_CONFIG_DIR}/server.pem`,
      keyFile: `${NATS_CONFIG_DIR}/server.key`,
      caFile: `${NATS_CONFIG_DIR}/ca.pem`,
    };
    // Root in the NATS container reads them whoever owns them here.
    await privateCopy(hostDir, undefined, [
      [this.caFile, 'ca.pem'],
      [server.value.cert, 'server.pem'],
      [server.value.key, 'server.key'],
    ]);
    const identities = this.deployment.identities.map((i) => i.identity);
    const routes = routeHosts.map((h) => JSON.stringify(`tls://${h}:6222`)).join(', ');
    const files: [string, string][] = [
      ['auth.conf', renderAuthConfig(identities, tls)],
      [
        'nats.conf',
        [
          '# The chaos cluster: the generated users and client TLS (auth.conf), and TLS routes between the three servers.',
          'listen: "0.0.0.0:4222"',
          `jetstream { store_dir: "/data" }`,
          'max_payload: 1MB',
          'cluster {',
          '  name: allot-chaos',
          '  listen: "0.0.0.0:6222"',
          `  routes: [${routes}]`,
          '  # Clients only ever learn the three mapped client ports.',
          '  no_advertise: true',
          '  # A route shows a certificate of the CA that names one of the route hosts: a client certificate cannot join.',
          `  tls { cert_file: "${tls.certFile}", key_file: "${tls.keyFile}", ca_file: "${tls.caFile}", verify: true, verify_cert_and_check_known_urls: true, timeout: 5 }`,
          '}',
          'include "auth.conf"',
          '',
        ].join('\n'),
      ],
    ];
    for (const [file, content] of files) {
      await writeFile(join(hostDir, file), content, { mode: 0o600 });
      await chmod(join(hostDir, file), 0o600);
    }
    return hostDir;
  }

  async remove(): Promise<void> {
    await rm(this.#root, { recursive: true, force: true });
  }
}

/** Copies files into a fresh 0700 directory, each 0600, all owned by `uid` (the container user that reads them). */
async function privateCopy(dir: string, uid: number | undefined, files: [string, string][]): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const [from, to] of files) {
    await copyFile(from, join(dir, to));
    await chmod(join(dir, to), 0o600);
  }
  if (uid === undefined) return;
  try {
    await chown(dir, uid, uid);
    for (const [, to] of files) await chown(join(dir, to), uid, uid);
  } catch (e) {
    throw new Error(
      `chaos: cannot give the credentials in ${dir} to uid ${uid}, the container user (${(e as Error).message}); ` +
        'the secured chaos suite runs as root or as uid 1000 (docs/chaos.md)',
      { cause: e },
    );
  }
}
