/** @allot/nats: NATS plumbing shared by the agent, the coordinator and the CLI. */
export {
  connectNats,
  connectOptionsFrom,
  connectionCounters,
  RECONNECT_TIME_WAIT_MS,
  NATS_AUTH_FAILED,
  NATS_TLS_FAILED,
  NATS_CONFIG_UNREADABLE,
  type ConnectOptions,
} from './connect.ts';
export { serveService, endpoint, type EndpointSpec, type RequestContext, type ServedService, type ServiceSpec } from './service.ts';
export { requestTyped, type RequestTypedOptions } from './request.ts';
export {
  ensureStreams,
  ensureStream,
  ensureKv,
  allotStreamConfigs,
  configDrift,
  versionAtLeast,
  type EnsureKvOptions,
  type ManagedStreamConfig,
} from './streams.ts';
export {
  publishAtomicBatch,
  publishExpected,
  MAX_ATOMIC_BATCH,
  type ExpectedMessage,
  type ExpectedPublishOptions,
} from './expected-publish.ts';
export { publishDurable, type DurableAck, type PublishDurableOptions } from './publish.ts';
export { AsyncJetStreamPublisher } from './async-publisher.ts';
export { Coalescer, type CoalescerOptions } from './coalescer.ts';
export { extractTraceContext, injectTraceContext, natsHeadersGetter, lazyHeadersSetter, type LazyHeaders } from './trace.ts';
export { silentLogger, type NatsLogger } from './logger.ts';
export type { Output, Schema } from './schema.ts';
export {
  loadProcessConfig,
  formatConfigProblems,
  NATS_ENV_BINDINGS,
  transportSecurityProblem,
  hasCredentials,
  usesTls,
  type ConfigProblem,
  type EnvBinding,
  type LoadProcessConfigInput,
  type PrepareContext,
  planConfigReload,
  describeReload,
  applyReloadLogLevel,
  type LevelledLogger,
  type IgnoredChange,
  type ReloadPlan,
  type ReloadRules,
} from './config/index.ts';
export { backoffDelays, retryWithBackoff, type BackoffOptions, type RetryOptions } from './retry.ts';
