import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { err, ok, type Result } from '@allot/core';
import { CLUSTER_EVENT_NODE, inboxPrefixOf, READ_SUBJECT_PREFIX, SUBJECT_ROOT, usageSubject } from '@allot/protocol';
import { nkeys } from '@nats-io/transport-node';
import { ensureDeployment, ensureIdentity, privateDir, type Deployment, type IdentityFiles } from './deployment.ts';
import { checkName, permissionsOf, type Role } from './roles.ts';
import { MIN_SECURE_NATS_SERVER } from './server-config.ts';
import { ensureCa, ensureLeaf } from './tls.ts';

/**
 * Several sites joined by a hub (docs/architecture.md, "Sites and regions"), made and extended by
 * `allot security add-site`, all under one directory and one CA:
 *
 *   ca/                                  the CA every site and the hub trust
 *   sites.json                           the hub's addresses (set by the first run)
 *   sites/<site>/                        a whole secured deployment (`allot security` layout), JetStream domain <site>;
 *                                        its nats-server.conf also includes nats/site-link.conf
 *   sites/<site>/link/                   the site's link identity on the hub: nkey.seed, tls.pem, tls.key (secret)
 *   sites/<site>/nats/site-link.conf     the leaf remote to the hub as that identity (holds its seed: 0600)
 *   hub/server/server.pem, server.key    the hub's certificate (client and leaf listeners)
 *   hub/identities/<role>/<name>/        the view's coordinator (`view`, with its readOnly coordinator.json), a
 *                                        reader, an admin (VIEW's streams: `allot security setup` against the hub)
 *   hub/nats/hub-auth.conf               TLS, the leaf listener and the accounts (rewritten on every run)
 *   hub/nats/nats-server.conf            the hub's main file, written once, which includes hub-auth.conf
 *
 * Every run adds what is missing and never rewrites a key or certificate. After a run, reload the site it changed and
 * restart the hub's servers (a site's link account lists the site's nodes, and a reload leaves a link that is up with
 * the permissions it connected with).
 */
export interface HubSettings {
  /** URLs the view's clients connect to (tls://host:port). */
  readonly servers: readonly string[];
  /** Names and addresses in the hub's certificate. */
  readonly serverHosts: readonly string[];
  readonly port: number;
  /** The hub's leaf listener. */
  readonly leafPort: number;
  /** Leaf URLs a site dials unless it was given its own (nats-leaf://host:port, every hub server). */
  readonly leafUrls: readonly string[];
  /** Per site: the leaf URLs it dials (a WAN address, a proxy), when not leafUrls. */
  readonly siteLeafUrls: Readonly<Record<string, readonly string[]>>;
}

const DEFAULT_HUB: HubSettings = {
  servers: ['tls://127.0.0.1:4222'],
  serverHosts: ['localhost', '127.0.0.1'],
  port: 4222,
  leafPort: 7422,
  leafUrls: ['nats-leaf://127.0.0.1:7422'],
  siteLeafUrls: {},
};

interface SiteRequest {
  readonly site: string;
  readonly nodes?: readonly string[];
  readonly tenants?: readonly string[];
  /** The leaf URLs this site dials, remembered in sites.json. */
  readonly leafUrls?: readonly string[];
}

export interface Sites {
  readonly dir: string;
  readonly hub: HubSettings;
  readonly sites: ReadonlyMap<string, Deployment>;
  /** The hub's identities: admin (VIEW's streams), coordinator `view`, readers. */
  readonly hubIdentities: readonly IdentityFiles[];
  readonly hubServerConfig: string;
  readonly hubAuthConfig: string;
}

/** Subjects that never cross a link, whatever the hub allows (the site's own guard on its remote). */
const NEVER_ACROSS = [
  `${SUBJECT_ROOT}.agent.>`,
  `${SUBJECT_ROOT}.sched.>`,
  `${SUBJECT_ROOT}.op.>`,
  `${READ_SUBJECT_PREFIX}.>`,
  `${SUBJECT_ROOT}.events.>`,
  '$KV.>',
  '$JS.>',
];

const quote = (s: string) => JSON.stringify(s);
const list = (items: readonly string[]) => `[${items.map(quote).join(', ')}]`;
/** Account names of the hub: LINK_<SITE>, upper case, "-" as "_". */
const linkAccount = (site: string) => `LINK_${site.toUpperCase().replace(/-/g, '_')}`;

/** The view's coordinator on the hub: the read verbs and its own consumers; no agent, scheduling or KV write. */
function viewCoordinatorPermissions(publicKey: string) {
  return {
    // Its own observations (a site's node turning suspect from the hub's side) go to VIEW's events stream, nowhere else.
    publish: {
      allow: [`${SUBJECT_ROOT}.events.${CLUSTER_EVENT_NODE}.>`, '$JS.API.>', '$JS.ACK.>', '$JS.FC.>'],
      deny: [
        '$JS.API.STREAM.CREATE.>',
        '$JS.API.STREAM.UPDATE.>',
        '$JS.API.STREAM.DELETE.>',
        '$JS.API.STREAM.PURGE.>',
        '$JS.API.STREAM.MSG.DELETE.>',
      ],
    },
    subscribe: [
      `${READ_SUBJECT_PREFIX}.>`,
      `${inboxPrefixOf(publicKey)}.>`,
      '$SRV.PING',
      '$SRV.INFO',
      '$SRV.STATS',
      '$SRV.*.allot-coordinator',
      '$SRV.*.allot-coordinator.>',
    ],
  };
}

function userLine(
  comment: string,
  publicKey: string,
  publish: { allow: readonly string[]; deny?: readonly string[] },
  subscribe: readonly string[],
  responses: boolean,
): string {
  const pub =
    publish.deny === undefined ? `{ allow: ${list(publish.allow)} }` : `{ allow: ${list(publish.allow)}, deny: ${list(publish.deny)} }`;
  return `      # ${comment}\n      { nkey: ${publicKey}, permissions: { publish: ${pub}, subscribe: { allow: ${list(subscribe)} }${responses ? ', allow_responses: true' : ''} } }`;
}

/** The hub's generated part: client TLS, the leaf listener with mutual TLS, one link account per site, VIEW. */
function renderHubAuthConfig(opts: {
  leafPort: number;
  tls: { certFile: string; keyFile: string; caFile: string };
  links: readonly { site: string; publicKey: string; nodes: readonly string[] }[];
  view: readonly IdentityFiles[];
}): string {
  const tls = `cert_file: ${quote(opts.tls.certFile)}, key_file: ${quote(opts.tls.keyFile)}, ca_file: ${quote(opts.tls.caFile)}, verify: true, timeout: 5`;
  const links = opts.links.map((l) => {
    // What the site may send into the hub: the usage of its own nodes, none other (a site cannot speak for another's
    // node); the interest in all usage must cross the other way for those messages to flow.
    const publish = l.nodes.length === 0 ? { allow: ['allot.usage.none'], deny: ['>'] } : { allow: l.nodes.map((n) => usageSubject(n)) };
    return [
      `  ${linkAccount(l.site)}: {`,
      '    users: [',
      userLine(
        `site ${l.site}'s leaf connection: its nodes ${l.nodes.join(', ') || '(none yet)'}`,
        l.publicKey,
        publish,
        ['allot.usage.>'],
        false,
      ),
      '    ]',
      '    exports: [{ stream: "allot.usage.>" }]',
      '  }',
    ].join('\n');
  });
  const viewUsers = opts.view.map((i) => {
    const { role, name, publicKey } = i.identity;
    if (role === 'coordinator') {
      const p = viewCoordinatorPermissions(publicKey);
      return userLine(`the view's coordinator ${name} (readOnly)`, publicKey, p.publish, p.subscribe, true);
    }
    const p = permissionsOf(i.identity);
    return userLine(
      `${role} ${name}`,
      publicKey,
      p.publishDeny === undefined ? { allow: p.publish } : { allow: p.publish, deny: p.publishDeny },
      p.subscribe,
      p.allowResponses,
    );
  });
  return [
    '# Generated by `allot security add-site`: do not edit (rewritten on every run; holds public keys only).',
    `# Needs nats-server ${MIN_SECURE_NATS_SERVER} or later.`,
    `tls { ${tls} }`,
    'leafnodes {',
    `  listen: "0.0.0.0:${opts.leafPort}"`,
    '  # Server to server: the site shows a certificate of the deployment CA besides its link nkey.',
    `  tls { ${tls} }`,
    '}',
    'accounts {',
    ...links,
    "  # The combined, read-only view: every site's usage, imported from the link accounts; no agent subject.",
    '  VIEW: {',
    '    jetstream: enabled',
    `    imports: [${opts.links.map((l) => `{ stream: { account: ${linkAccount(l.site)}, subject: "allot.usage.>" } }`).join(', ')}]`,
    '    users: [',
    viewUsers.join(',\n'),
    '    ]',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The site's leaf remote to the hub as its link identity (the seed is inline: the file is 0600). */
function renderSiteLinkConfig(opts: {
  urls: readonly string[];
  seed: string;
  tls: { certFile: string; keyFile: string; caFile: string };
}): string {
  return [
    '# Generated by `allot security add-site`: do not edit. Holds the link nkey seed: keep it 0600, readable by nats-server only.',
    'leafnodes {',
    '  remotes: [{',
    `    urls: ${list(opts.urls)}`,
    `    nkey: ${quote(opts.seed)}`,
    `    tls { cert_file: ${quote(opts.tls.certFile)}, key_file: ${quote(opts.tls.keyFile)}, ca_file: ${quote(opts.tls.caFile)} }`,
    '    # The site dials only the addresses given here, not the ones the hub advertises (often internal).',
    '    ignore_discovered_servers: true',
    '    # Whatever the hub allows, nothing but usage snapshots leaves or enters the site on this link.',
    `    deny_exports: ${list(NEVER_ACROSS)}`,
    `    deny_imports: ${list(NEVER_ACROSS)}`,
    '  }]',
    '}',
    '',
  ].join('\n');
}

async function readHub(dir: string, given: Partial<HubSettings>): Promise<HubSettings> {
  const file = join(dir, 'sites.json');
  const stored = existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as Partial<HubSettings>) : {};
  const hub: HubSettings = { ...DEFAULT_HUB, ...stored, ...given, siteLeafUrls: { ...stored.siteLeafUrls, ...given.siteLeafUrls } };
  await writeFile(file, `${JSON.stringify(hub, null, 2)}\n`);
  return hub;
}

async function siteNames(dir: string): Promise<string[]> {
  const sites = join(dir, 'sites');
  return existsSync(sites) ? (await readdir(sites)).sort() : [];
}

async function nodesOf(siteDir: string): Promise<string[]> {
  const agents = join(siteDir, 'identities', 'agent');
  return existsSync(agents) ? (await readdir(agents)).sort() : [];
}

/** The site's link identity: an nkey and a client certificate of the shared CA, made once. */
async function ensureLink(
  siteDir: string,
  site: string,
  ca: { cert: string; key: string },
): Promise<Result<{ seed: string; publicKey: string; cert: string; key: string }>> {
  const dir = join(siteDir, 'link');
  await privateDir(dir);
  const seedFile = join(dir, 'nkey.seed');
  if (!existsSync(seedFile)) {
    const pair = nkeys.createUser();
    await writeFile(seedFile, `${new TextDecoder().decode(pair.getSeed())}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'nkey.pub'), `${pair.getPublicKey()}\n`);
  }
  const seed = (await readFile(seedFile, 'utf8')).trim();
  const publicKey = nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey();
  const leaf = await ensureLeaf({ ca, commonName: `allot link ${site}`, usage: 'client', base: join(dir, 'tls') });
  if (!leaf.ok) return leaf;
  return ok({ seed, publicKey, ...leaf.value });
}

/**
 * Brings the sites under `dirPath` to hold at least what is asked (the site, its nodes and tenants, the hub), then
 * rewrites the hub's auth config and each site's link config from all of them. Node ids are unique across sites (the
 * combined view keys by node id; a site's link may publish only its own nodes' usage).
 */
export async function ensureSites(
  dirPath: string,
  requests: readonly SiteRequest[],
  given: Partial<HubSettings> = {},
): Promise<Result<Sites>> {
  const dir = resolve(dirPath);
  for (const r of requests) {
    const problem = checkName('agent', r.site);
    if (problem !== undefined) return err('invalid_request', `site: ${problem.replace(' node ', ' site ')}`, { site: r.site });
  }
  try {
    await privateDir(dir);
    const perSite = Object.fromEntries(requests.filter((r) => r.leafUrls !== undefined).map((r) => [r.site, r.leafUrls ?? []]));
    const hub = await readHub(dir, { ...given, siteLeafUrls: { ...given.siteLeafUrls, ...perSite } });
    const caDir = join(dir, 'ca');
    await privateDir(caDir);
    const ca = await ensureCa(caDir, 'sites');
    if (!ca.ok) return ca;

    const owner = new Map<string, string>();
    for (const site of await siteNames(dir)) for (const n of await nodesOf(join(dir, 'sites', site))) owner.set(n, site);
    for (const r of requests)
      for (const n of r.nodes ?? []) {
        const other = owner.get(n);
        if (other !== undefined && other !== r.site)
          return err('conflict', `node ${n} is in site ${other} already: node ids are unique across sites`, { nodeId: n, site: other });
        owner.set(n, r.site);
      }

    await privateDir(join(dir, 'sites'));
    const wanted = new Map<string, { role: Role; name: string }[]>();
    for (const site of await siteNames(dir)) wanted.set(site, []);
    for (const r of requests)
      wanted.set(r.site, [
        ...(wanted.get(r.site) ?? []),
        ...(r.nodes ?? []).map((name) => ({ role: 'agent' as const, name })),
        ...(r.tenants ?? []).map((name) => ({ role: 'scheduler' as const, name })),
      ]);

    const sites = new Map<string, Deployment>();
    const links: { site: string; publicKey: string; nodes: string[] }[] = [];
    for (const [site, identities] of [...wanted].sort(([a], [b]) => a.localeCompare(b))) {
      const siteDir = join(dir, 'sites', site);
      const made = await ensureDeployment(siteDir, identities, {}, { caDir, jetstreamDomain: site, includes: ['site-link.conf'] });
      if (!made.ok) return made;
      sites.set(site, made.value);
      const link = await ensureLink(siteDir, site, ca.value);
      if (!link.ok) return link;
      const linkFile = join(siteDir, 'nats', 'site-link.conf');
      await writeFile(
        linkFile,
        renderSiteLinkConfig({
          urls: hub.siteLeafUrls[site] ?? hub.leafUrls,
          seed: link.value.seed,
          tls: { certFile: link.value.cert, keyFile: link.value.key, caFile: ca.value.cert },
        }),
        { mode: 0o600 },
      );
      links.push({
        site,
        publicKey: link.value.publicKey,
        nodes: made.value.identities.filter((i) => i.identity.role === 'agent').map((i) => i.identity.name),
      });
    }

    const hubDir = join(dir, 'hub');
    await privateDir(join(hubDir, 'server'));
    const server = await ensureLeaf({
      ca: ca.value,
      commonName: 'allot hub nats-server',
      usage: 'server',
      hosts: hub.serverHosts,
      base: join(hubDir, 'server', 'server'),
    });
    if (!server.ok) return server;
    const hubSettings = { servers: hub.servers, serverHosts: hub.serverHosts, port: hub.port };
    const hubIdentities: IdentityFiles[] = [];
    for (const [role, name] of [
      ['admin', 'admin'],
      ['coordinator', 'view'],
      ['reader', 'reader'],
    ] as const) {
      const made = await ensureIdentity(hubDir, hubSettings, ca.value, role, name);
      if (!made.ok) return made;
      hubIdentities.push(made.value);
      // The view's coordinator is read-only (it reaches no agent): its whole config file, not only its `nats` block.
      if (role === 'coordinator')
        await writeFile(
          join(made.value.dir, 'coordinator.json'),
          `${JSON.stringify({ coordinatorId: name, readOnly: true, nats: made.value.connection }, null, 2)}\n`,
        );
    }
    await privateDir(join(hubDir, 'nats'));
    const hubAuthConfig = join(hubDir, 'nats', 'hub-auth.conf');
    await writeFile(
      hubAuthConfig,
      renderHubAuthConfig({
        leafPort: hub.leafPort,
        tls: { certFile: server.value.cert, keyFile: server.value.key, caFile: ca.value.cert },
        links,
        view: hubIdentities,
      }),
    );
    const hubServerConfig = join(hubDir, 'nats', 'nats-server.conf');
    if (!existsSync(hubServerConfig))
      await writeFile(
        hubServerConfig,
        [
          "# nats-server configuration of the sites' hub. Edit freely; `allot security` never rewrites this file.",
          `listen: "0.0.0.0:${hub.port}"`,
          `jetstream { store_dir: ${quote(join(hubDir, 'nats', 'jetstream'))}, domain: hub }`,
          'max_payload: 1MB',
          'include "hub-auth.conf"',
          '',
        ].join('\n'),
      );
    return ok({ dir, hub, sites, hubIdentities, hubServerConfig, hubAuthConfig });
  } catch (e) {
    return err('internal', `cannot write the sites in ${dir}: ${(e as Error).message}`, { dir });
  }
}
