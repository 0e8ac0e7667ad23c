import { NATS_ENV_BINDINGS, type EnvBinding } from '@allot/nats';

/** The agent's own variables; the ALLOT_NATS_* ones are shared with the coordinator (NATS_ENV_BINDINGS). */
export const AGENT_ENV_BINDINGS: readonly EnvBinding[] = [
  { name: 'ALLOT_NODE_ID', path: ['nodeId'], kind: 'string' },
  { name: 'ALLOT_STATE_DIR', path: ['stateDir'], kind: 'string' },
  { name: 'ALLOT_LOG_LEVEL', path: ['logLevel'], kind: 'string' },
  { name: 'ALLOT_JETSTREAM_REPLICAS', path: ['jetstreamReplicas'], kind: 'number' },
  { name: 'ALLOT_LABELS', path: ['labels'], kind: 'keyValues' },
  { name: 'ALLOT_MEMORY_CAPACITY_MIB', path: ['memory', 'capacityMiB'], kind: 'number' },
  { name: 'ALLOT_MEMORY_SYSTEM_RESERVE_MIB', path: ['memory', 'systemReserveMiB'], kind: 'number' },
  { name: 'ALLOT_MEMORY_OVERCOMMIT', path: ['memory', 'overcommitRatio'], kind: 'number' },
  { name: 'ALLOT_MEMORY_SOFT_LIMIT_MIB', path: ['memory', 'softLimitMiB'], kind: 'number' },
  { name: 'ALLOT_MEMORY_HARD_LIMIT_MIB', path: ['memory', 'hardLimitMiB'], kind: 'number' },
  { name: 'ALLOT_CPU_CORES', path: ['cpu', 'cores'], kind: 'number' },
  { name: 'ALLOT_CPU_RESERVED_CORES', path: ['cpu', 'reservedCores'], kind: 'numberList' },
  { name: 'ALLOT_CPU_SYSTEM_RESERVE_CORES', path: ['cpu', 'systemReserveCores'], kind: 'number' },
  { name: 'ALLOT_CPU_OVERCOMMIT', path: ['cpu', 'overcommitRatio'], kind: 'number' },
  { name: 'ALLOT_CPU_POLICY', path: ['cpu', 'policy'], kind: 'string' },
  { name: 'ALLOT_CPU_HARD_LIMIT_VCPUS', path: ['cpu', 'hardLimitVcpus'], kind: 'number' },
  { name: 'ALLOT_SAMPLING_INTERVAL_MS', path: ['samplingIntervalMs'], kind: 'number' },
  { name: 'ALLOT_HEARTBEAT_MS', path: ['heartbeatMs'], kind: 'number' },
  { name: 'ALLOT_IDLE_STATUS_MS', path: ['idleStatusMs'], kind: 'number' },
  { name: 'ALLOT_USAGE_PUBLISH_MIN_INTERVAL_MS', path: ['usagePublishMinIntervalMs'], kind: 'number' },
  { name: 'ALLOT_SHUTDOWN_GRACE_MS', path: ['shutdownGraceMs'], kind: 'number' },
  { name: 'ALLOT_SIMULATED_HOST', path: ['simulatedHost'], kind: 'hostSize' },
  { name: 'ALLOT_HTTP_HOST', path: ['http', 'host'], kind: 'string' },
  { name: 'ALLOT_HTTP_PORT', path: ['http', 'port'], kind: 'number' },
  { name: 'ALLOT_HTTP_TOKEN_FILE', path: ['http', 'tokenFile'], kind: 'string' },
];

/** Every environment variable the agent reads. Each overrides the same key of the config file. */
export const ENV_BINDINGS: readonly EnvBinding[] = [...NATS_ENV_BINDINGS, ...AGENT_ENV_BINDINGS];
