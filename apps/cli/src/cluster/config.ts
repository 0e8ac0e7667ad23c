import { join } from 'node:path';
import { formatIssues, NodeIdSchema } from '@allot/core';
import { z } from 'zod';
import { parsedOk, usageProblem, type Parsed } from '../args.ts';

/**
 * infra/local/cluster.json: what `allot cluster` starts. Each agent entry is an agent config without the keys the
 * cluster owns (nats, stateDir); everything else is passed through, and the agent validates it at start-up with its own
 * schema (the CLI does not duplicate that schema, so the two cannot drift).
 */
const AgentEntrySchema = z
  .object({ nodeId: NodeIdSchema })
  .loose()
  .refine((a) => !('nats' in a) && !('stateDir' in a), { message: 'nats and stateDir are set by the cluster; leave them out' });

export const ClusterFileSchema = z.object({
  coordinator: z
    .object({})
    .loose()
    .refine((c) => !('nats' in c), { message: 'nats is set by the cluster; leave it out' })
    .default({}),
  agents: z
    .array(AgentEntrySchema)
    .min(1)
    .max(16)
    .refine((agents) => new Set(agents.map((a) => a.nodeId)).size === agents.length, { message: 'node ids must be unique' }),
});
export type ClusterFile = z.infer<typeof ClusterFileSchema>;

export function parseClusterFile(path: string, text: string): Parsed<ClusterFile> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return usageProblem(`${path}: not JSON: ${(e as Error).message}`);
  }
  const parsed = ClusterFileSchema.safeParse(raw);
  if (!parsed.success) return usageProblem(`${path}: ${formatIssues(parsed.error).join('; ')}`);
  return parsedOk(parsed.data);
}

/** Where everything of one local cluster lives, under one directory (default .allot/cluster). */
export interface ClusterLayout {
  readonly root: string;
  readonly natsStore: string;
  readonly natsConfig: string;
  readonly logs: string;
  readonly configs: string;
  logOf(name: string): string;
  stateOf(nodeId: string): string;
}

export function clusterLayout(root: string): ClusterLayout {
  return {
    root,
    natsStore: join(root, 'nats'),
    natsConfig: join(root, 'nats-server.conf'),
    logs: join(root, 'logs'),
    configs: join(root, 'config'),
    logOf: (name) => join(root, 'logs', `${name}.log`),
    stateOf: (nodeId) => join(root, nodeId),
  };
}

/** One agent's config file: its entry plus the keys the cluster owns. */
export function agentConfig(entry: ClusterFile['agents'][number], natsUrl: string, layout: ClusterLayout): Record<string, unknown> {
  return { ...entry, nats: { servers: [natsUrl], name: `allot-agent-${entry.nodeId}` }, stateDir: layout.stateOf(entry.nodeId) };
}

export function coordinatorConfig(
  entry: ClusterFile['coordinator'],
  natsUrl: string,
  dashboard?: { port: number; dir?: string | undefined },
): Record<string, unknown> {
  const http =
    dashboard === undefined
      ? {}
      : { http: { host: '127.0.0.1', port: dashboard.port }, ...(dashboard.dir === undefined ? {} : { dashboardDir: dashboard.dir }) };
  return { ...entry, nats: { servers: [natsUrl], name: 'allot-coordinator-local' }, ...http };
}

/** nats-server's config: loopback only, JetStream with its store under the cluster directory. */
export function natsServerConfig(port: number, storeDir: string): string {
  return [
    'server_name: "allot-local"',
    `listen: "127.0.0.1:${port}"`,
    'jetstream {',
    `  store_dir: ${JSON.stringify(storeDir)}`,
    '  max_memory_store: 268435456',
    '  max_file_store: 4294967296',
    '}',
    '',
  ].join('\n');
}

/**
 * The children's environment: the CLI's, without any ALLOT_* variable (an ALLOT_NATS_SERVERS or ALLOT_NODE_ID left in
 * the operator's shell would override the generated config files and point an agent at another cluster), except the
 * log level.
 */
export function childEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (k.startsWith('ALLOT_') && k !== 'ALLOT_LOG_LEVEL') continue;
    out[k] = v;
  }
  return out;
}
