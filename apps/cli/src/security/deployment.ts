import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { err, ok, type NatsConnectionConfig, type Result } from '@allot/core';
import { nkeys } from '@nats-io/transport-node';
import { checkName, ROLES, type Identity, type Role } from './roles.ts';
import { renderAuthConfig, renderServerConfig } from './server-config.ts';
import { ensureCa, ensureLeaf } from './tls.ts';

/**
 * A secured deployment's credentials on disk, made and extended by `allot security`:
 *
 *   deployment.json                      client URLs and the server certificate's names (set by init)
 *   ca/ca.pem, ca.key                    the deployment CA (keep ca.key offline once the fleet is issued)
 *   server/server.pem, server.key        the nats-server certificate
 *   identities/<role>/<name>/            one per identity: nkey.seed (secret), nkey.pub, tls.pem, tls.key (secret),
 *                                        nats.json (the `nats` config block) and nats.env (ALLOT_NATS_* variables)
 *   nats/allot-auth.conf                 TLS and the nkey users with their permissions (rewritten on every run)
 *   nats/nats-server.conf                the server's main file, written once, which includes allot-auth.conf
 *
 * Every run adds what is missing and never rewrites an existing key or certificate: re-running with more nodes or
 * tenants leaves every identity issued before as it was. Directories are 0700, secrets 0600.
 */
export interface DeploymentSettings {
  /** URLs clients connect to (tls://host:port). */
  readonly servers: readonly string[];
  /** Names and addresses in the server certificate. */
  readonly serverHosts: readonly string[];
  /** The port of the generated nats-server.conf. */
  readonly port: number;
}

/** A deployment that is one site of several (security/sites.ts): the shared CA, its JetStream domain, its link file. */
export interface SiteOptions {
  /** A CA shared with the other sites and the hub, instead of the deployment's own ca/. */
  readonly caDir?: string;
  readonly jetstreamDomain?: string;
  /** Files of nats/ the generated nats-server.conf includes besides allot-auth.conf. */
  readonly includes?: readonly string[];
}

export const DEFAULT_SETTINGS: DeploymentSettings = {
  servers: ['tls://127.0.0.1:4222'],
  serverHosts: ['localhost', '127.0.0.1'],
  port: 4222,
};

export interface IdentityFiles {
  readonly identity: Identity;
  readonly dir: string;
  /** The `nats` connection block for this identity's config file. */
  readonly connection: NatsConnectionConfig;
  /** true when this run made it. */
  readonly created: boolean;
}

export interface Deployment {
  readonly dir: string;
  readonly settings: DeploymentSettings;
  readonly identities: readonly IdentityFiles[];
  readonly serverConfig: string;
  readonly authConfig: string;
}

export async function privateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  await chmod(path, 0o700);
}

async function readSettings(dir: string, given: Partial<DeploymentSettings>): Promise<DeploymentSettings> {
  const file = join(dir, 'deployment.json');
  const stored = existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as Partial<DeploymentSettings>) : {};
  const settings: DeploymentSettings = { ...DEFAULT_SETTINGS, ...stored, ...given };
  await writeFile(file, `${JSON.stringify(settings, null, 2)}\n`);
  return settings;
}

function connectionOf(dir: string, settings: DeploymentSettings, caFile: string): NatsConnectionConfig {
  return {
    servers: [...settings.servers],
    nkeySeedFile: join(dir, 'nkey.seed'),
    tls: { caFile, certFile: join(dir, 'tls.pem'), keyFile: join(dir, 'tls.key'), handshakeFirst: false },
    requestTimeoutMs: 5_000,
  };
}

function envOf(c: NatsConnectionConfig): string {
  return [
    `ALLOT_NATS_SERVERS=${c.servers.join(',')}`,
    `ALLOT_NATS_NKEY_SEED_FILE=${c.nkeySeedFile ?? ''}`,
    `ALLOT_NATS_TLS_CA=${c.tls?.caFile ?? ''}`,
    `ALLOT_NATS_TLS_CERT=${c.tls?.certFile ?? ''}`,
    `ALLOT_NATS_TLS_KEY=${c.tls?.keyFile ?? ''}`,
    '',
  ].join('\n');
}

/** Makes one identity's nkey and client certificate unless they exist; returns its files either way. */
export async function ensureIdentity(
  root: string,
  settings: DeploymentSettings,
  ca: { cert: string; key: string },
  role: Role,
  name: string,
): Promise<Result<IdentityFiles>> {
  const dir = join(root, 'identities', role, name);
  const seedFile = join(dir, 'nkey.seed');
  const pubFile = join(dir, 'nkey.pub');
  let created = false;
  await privateDir(dir);
  if (!existsSync(seedFile)) {
    const pair = nkeys.createUser();
    await writeFile(seedFile, `${new TextDecoder().decode(pair.getSeed())}\n`, { mode: 0o600 });
    await writeFile(pubFile, `${pair.getPublicKey()}\n`);
    created = true;
  }
  const publicKey = existsSync(pubFile)
    ? (await readFile(pubFile, 'utf8')).trim()
    : nkeys.fromSeed(new TextEncoder().encode((await readFile(seedFile, 'utf8')).trim())).getPublicKey();
  const leaf = await ensureLeaf({ ca, commonName: `allot ${role} ${name}`, usage: 'client', base: join(dir, 'tls') });
  if (!leaf.ok) return leaf;
  const connection = connectionOf(dir, settings, ca.cert);
  await writeFile(join(dir, 'nats.json'), `${JSON.stringify(connection, null, 2)}\n`);
  await writeFile(join(dir, 'nats.env'), envOf(connection));
  return ok({ identity: { role, name, publicKey }, dir, connection, created });
}

/** Every identity already issued in the deployment, from identities/<role>/<name>/. */
async function issued(root: string): Promise<{ role: Role; name: string }[]> {
  const found: { role: Role; name: string }[] = [];
  for (const role of ROLES) {
    const dir = join(root, 'identities', role);
    if (!existsSync(dir)) continue;
    for (const name of (await readdir(dir)).sort()) if (existsSync(join(dir, name, 'nkey.seed'))) found.push({ role, name });
  }
  return found;
}

/**
 * Brings the deployment in `dir` to hold at least the identities asked for (and the CA, the server certificate, one
 * admin, one coordinator, operator and reader, made on the first run), then rewrites the server's auth config from all
 * of them. Existing keys and certificates are never touched.
 */
export async function ensureDeployment(
  dirPath: string,
  wanted: readonly { role: Role; name: string }[],
  given: Partial<DeploymentSettings> = {},
  site: SiteOptions = {},
): Promise<Result<Deployment>> {
  for (const w of wanted) {
    const problem = checkName(w.role, w.name);
    if (problem !== undefined) return err('invalid_request', `${w.role}: ${problem}`, { role: w.role, name: w.name });
  }
  const dir = resolve(dirPath);
  try {
    await privateDir(dir);
    const settings = await readSettings(dir, given);
    const caDir = site.caDir ?? join(dir, 'ca');
    await privateDir(caDir);
    const ca = await ensureCa(caDir, basename(resolve(caDir, '..')).replace(/[^\w.-]/g, '_'));
    if (!ca.ok) return ca;
    await privateDir(join(dir, 'server'));
    const server = await ensureLeaf({
      ca: ca.value,
      commonName: 'allot nats-server',
      usage: 'server',
      hosts: settings.serverHosts,
      base: join(dir, 'server', 'server'),
    });
    if (!server.ok) return server;

    const baseline: { role: Role; name: string }[] = [
      { role: 'admin', name: 'admin' },
      { role: 'coordinator', name: 'coordinator' },
      { role: 'operator', name: 'operator' },
      { role: 'reader', name: 'reader' },
    ];
    const all = new Map<string, { role: Role; name: string }>();
    for (const w of [...baseline, ...(await issued(dir)), ...wanted]) all.set(`${w.role}/${w.name}`, w);
    const identities: IdentityFiles[] = [];
    for (const w of all.values()) {
      const made = await ensureIdentity(dir, settings, ca.value, w.role, w.name);
      if (!made.ok) return made;
      identities.push(made.value);
    }

    await privateDir(join(dir, 'nats'));
    const authConfig = join(dir, 'nats', 'allot-auth.conf');
    await writeFile(
      authConfig,
      renderAuthConfig(
        identities.map((i) => i.identity),
        { certFile: server.value.cert, keyFile: server.value.key, caFile: ca.value.cert },
      ),
    );
    const serverConfig = join(dir, 'nats', 'nats-server.conf');
    if (!existsSync(serverConfig))
      await writeFile(
        serverConfig,
        renderServerConfig({
          port: settings.port,
          storeDir: join(dir, 'nats', 'jetstream'),
          authFile: 'allot-auth.conf',
          jetstreamDomain: site.jetstreamDomain,
          includes: site.includes,
        }),
      );
    return ok({ dir, settings, identities, serverConfig, authConfig });
  } catch (e) {
    return err('internal', `cannot write the deployment in ${dir}: ${(e as Error).message}`, { dir });
  }
}
