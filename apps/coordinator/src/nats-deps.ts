/* The JetStream and KV client libraries the coordinator uses, in one place (the same copies @allot/nats uses). */
export { jetstream, jetstreamManager, DeliverPolicy } from '@nats-io/jetstream';
export type { JetStreamClient } from '@nats-io/jetstream';
export type { KV } from '@nats-io/kv';
export type { NatsConnection, Msg, Subscription } from '@nats-io/transport-node';
