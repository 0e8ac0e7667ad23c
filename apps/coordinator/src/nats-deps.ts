/*
 * The JetStream and KV client libraries, reached by path.
 *
 * WHY: apps/coordinator/package.json names @nats-io/jetstream and @nats-io/kv, but the workspace install that links them
 * into apps/coordinator/node_modules has not been run, and @allot/nats does not re-export them. Until the lead runs
 * `pnpm install`, this one file reaches the very same installed copies that @allot/nats uses (same real path, so the
 * types are identical). After the install, replace both paths by the package names; nothing else changes.
 */
export { jetstream, jetstreamManager, DeliverPolicy, JetStreamApiError } from '../../../node_modules/.pnpm/@nats-io+jetstream@3.4.0/node_modules/@nats-io/jetstream/lib/mod.js';
export type { JetStreamClient, JetStreamManager, JsMsg } from '../../../node_modules/.pnpm/@nats-io+jetstream@3.4.0/node_modules/@nats-io/jetstream/lib/mod.js';
export type { KV, KvEntry } from '../../../node_modules/.pnpm/@nats-io+kv@3.4.0/node_modules/@nats-io/kv/lib/mod.js';
export type { NatsConnection, Msg, Subscription } from '../../../node_modules/.pnpm/@nats-io+transport-node@3.4.0/node_modules/@nats-io/transport-node/lib/mod.js';
