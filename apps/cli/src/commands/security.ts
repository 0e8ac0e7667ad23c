import { COMMON_OPTIONS, parseArgs, parseInteger, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import { EXIT } from '../exit-codes.ts';
import { reportError } from '../report.ts';
import { withSession } from '../run-request.ts';
import { ensureDeployment, type Deployment, type DeploymentSettings } from '../security/deployment.ts';
import type { Role } from '../security/roles.ts';
import { MIN_SECURE_NATS_SERVER } from '../security/server-config.ts';
import { setupStorage } from '../security/setup.ts';
import { ensureSites, type HubSettings, type Sites } from '../security/sites.ts';
import type { Command } from './command.ts';

const HELP = `Usage: allot security <action> [options]

Credentials of a secured deployment: nkeys per identity, a CA with server and client certificates, and the
nats-server configuration that gives each identity only its role's subjects (docs/security.md). Every action adds
what is missing and never changes an identity issued before.

  init [--node <id>]... [--tenant <id>]... [--server <url>]... [--host <name>]... [--port 4222]
                        the CA, the server certificate, the admin, coordinator, operator and reader identities,
                        and any nodes and tenants named
  add-node <nodeId>...          one agent identity per node: serves only allot.agent.<nodeId>.>
  add-tenant <tenantId>...      one scheduler identity per tenant: allot.sched.<tenantId>.> only
  add-operator <name>...        quotas, cordon, drain, audit; place and release for any tenant
  add-reader <name>...          read verbs and the event and usage streams
  add-coordinator <name>...     one per coordinator process
  add-site <site> [--node <id>]... [--tenant <id>]... [--leaf-url <url>]...
                                one site of several joined by a hub (docs/security.md, "Sites"), in --dir (default
                                .allot/sites): the site's whole deployment in sites/<site>/ (JetStream domain <site>)
                                with its link to the hub (nats/site-link.conf: nkey, client certificate), and the hub's
                                configuration in hub/ (its link account takes only the usage of the site's own nodes;
                                the read-only view's coordinator and readers). Node ids are unique across sites.
                                First run: --host and --server name the hub, --port its client port, --leaf-port
                                its leaf listener; --leaf-url is the hub address this site dials (repeatable)
  setup [--replicas 1]          with the admin identity (connection options below): create the streams and KV
                                buckets, which agents and coordinators of a secured deployment may not create

  --dir <path>          the deployment directory (default .allot/security); secrets are 0600, directories 0700
  --server <url>        (init) a URL clients connect to, repeatable (default tls://127.0.0.1:4222)
  --host <name>         (init) a name or address in the server certificate, repeatable (default localhost, 127.0.0.1)
  --json                print what was made as JSON

Each identity's files are in <dir>/identities/<role>/<name>/: nats.json is the 'nats' block of its config file,
nats.env the ALLOT_NATS_* variables. Start nats-server ${MIN_SECURE_NATS_SERVER} or later with
'nats-server -c <dir>/nats/nats-server.conf'; after an add, reload it ('nats-server --signal reload').

${CONNECTION_HELP}`;

const ADD_ROLES: Record<string, Role> = {
  'add-node': 'agent',
  'add-tenant': 'scheduler',
  'add-operator': 'operator',
  'add-reader': 'reader',
  'add-coordinator': 'coordinator',
};

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...CONNECTION_OPTIONS,
  dir: { type: 'string' },
  node: { type: 'string', multiple: true },
  tenant: { type: 'string', multiple: true },
  host: { type: 'string', multiple: true },
  port: { type: 'string' },
  replicas: { type: 'string' },
  'leaf-url': { type: 'string', multiple: true },
  'leaf-port': { type: 'string' },
} as const;

function render(d: Deployment): string {
  const made = d.identities.filter((i) => i.created);
  const lines = [`deployment ${d.dir}: ${d.identities.length} identities (${made.length} new)`];
  for (const i of d.identities)
    lines.push(`  ${i.created ? 'new ' : 'kept'}  ${i.identity.role.padEnd(11)} ${i.identity.name.padEnd(24)} ${i.dir}`);
  lines.push(`nats-server config: ${d.serverConfig} (includes ${d.authConfig})`);
  return lines.join('\n');
}

function renderSites(s: Sites, site: string): string {
  const d = s.sites.get(site);
  const lines = [`sites ${s.dir}: ${[...s.sites.keys()].join(', ')}`];
  if (d !== undefined) {
    lines.push(`site ${site}: ${d.identities.length} identities (${d.identities.filter((i) => i.created).length} new)`);
    for (const i of d.identities)
      lines.push(`  ${i.created ? 'new ' : 'kept'}  ${i.identity.role.padEnd(11)} ${i.identity.name.padEnd(24)} ${i.dir}`);
    lines.push(`site ${site} nats-server config: ${d.serverConfig} (includes ${d.authConfig} and site-link.conf)`);
  }
  lines.push(`hub nats-server config: ${s.hubServerConfig} (includes ${s.hubAuthConfig})`);
  lines.push(`reload site ${site}'s servers, then restart the hub's one at a time (a reload keeps a link's old permissions)`);
  return lines.join('\n');
}

type SecurityValues = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; strict: true; allowPositionals: true }>>['values'];

async function addSite(ctx: Parameters<Command['run']>[1], names: string[], v: SecurityValues, json: boolean): Promise<number> {
  if (names.length !== 1) return usageError(ctx, 'security', 'add-site: name one site');
  const site = names[0] ?? '';
  const hub: { -readonly [K in keyof HubSettings]?: HubSettings[K] } = {};
  if (v.server !== undefined) hub.servers = v.server;
  if (v.host !== undefined) hub.serverHosts = v.host;
  for (const [flag, key] of [
    ['port', 'port'],
    ['leaf-port', 'leafPort'],
  ] as const) {
    const given = v[flag];
    if (given === undefined) continue;
    const port = parseInteger(`--${flag}`, given, 1, 65_535);
    if (!port.ok) return usageError(ctx, 'security', port.message);
    hub[key] = port.value;
  }
  if (hub.leafPort !== undefined) hub.leafUrls = [`nats-leaf://127.0.0.1:${hub.leafPort}`];
  const made = await ensureSites(
    v.dir ?? '.allot/sites',
    [{ site, nodes: v.node ?? [], tenants: v.tenant ?? [], ...(v['leaf-url'] === undefined ? {} : { leafUrls: v['leaf-url'] }) }],
    hub,
  );
  if (!made.ok) return reportError(ctx, 'security', made.error, json);
  const s = made.value;
  ctx.out(
    json
      ? JSON.stringify(
          {
            dir: s.dir,
            sites: [...s.sites.keys()],
            siteServerConfig: s.sites.get(site)?.serverConfig,
            hubServerConfig: s.hubServerConfig,
            identities: (s.sites.get(site)?.identities ?? []).map((i) => ({ ...i.identity, dir: i.dir, created: i.created })),
          },
          null,
          2,
        )
      : renderSites(s, site),
  );
  return EXIT.ok;
}

export const securityCommand: Command = {
  name: 'security',
  summary: 'generate a secured deployment: identities, TLS and the nats-server permissions',
  help: HELP,
  async run(args, ctx) {
    const parsed = tryParse(() => parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: true }));
    if (!parsed.ok) return usageError(ctx, 'security', parsed.message);
    const v = parsed.value.values;
    const [action, ...names] = parsed.value.positionals;
    if (v.help || action === undefined) {
      ctx.out(HELP);
      return v.help ? EXIT.ok : EXIT.usage;
    }
    const json = v.json === true;

    if (action === 'setup') {
      const replicas = v.replicas === undefined ? { ok: true as const, value: 1 } : parseInteger('--replicas', v.replicas, 1, 5);
      if (!replicas.ok) return usageError(ctx, 'security', replicas.message);
      return withSession(ctx, 'security setup', v, async (session) => {
        const made = await setupStorage(session.nc, replicas.value);
        if (!made.ok) return reportError(ctx, 'security setup', made.error, json);
        ctx.out(json ? JSON.stringify({ ready: made.value }) : `ready: ${made.value.join(', ')}`);
        return EXIT.ok;
      });
    }

    if (action === 'add-site') return addSite(ctx, names, v, json);

    const wanted: { role: Role; name: string }[] = [];
    const settings: Partial<DeploymentSettings> = {};
    if (action === 'init') {
      if (names.length > 0) return usageError(ctx, 'security', `init takes no names (use --node and --tenant): "${names[0]}"`);
      for (const n of v.node ?? []) wanted.push({ role: 'agent', name: n });
      for (const t of v.tenant ?? []) wanted.push({ role: 'scheduler', name: t });
      if (v.server !== undefined) Object.assign(settings, { servers: v.server });
      if (v.host !== undefined) Object.assign(settings, { serverHosts: v.host });
      if (v.port !== undefined) {
        const port = parseInteger('--port', v.port, 1, 65_535);
        if (!port.ok) return usageError(ctx, 'security', port.message);
        Object.assign(settings, { port: port.value });
      }
    } else {
      const role = ADD_ROLES[action];
      if (role === undefined)
        return usageError(
          ctx,
          'security',
          `unknown action "${action}" (init, add-node, add-tenant, add-operator, add-reader, add-coordinator, add-site, setup)`,
        );
      if (names.length === 0) return usageError(ctx, 'security', `${action}: name at least one`);
      for (const n of names) wanted.push({ role, name: n });
    }
    const deployment = await ensureDeployment(v.dir ?? '.allot/security', wanted, settings);
    if (!deployment.ok) return reportError(ctx, 'security', deployment.error, json);
    const d = deployment.value;
    ctx.out(
      json
        ? JSON.stringify(
            {
              dir: d.dir,
              serverConfig: d.serverConfig,
              identities: d.identities.map((i) => ({ ...i.identity, dir: i.dir, created: i.created })),
            },
            null,
            2,
          )
        : render(d),
    );
    return EXIT.ok;
  },
};
