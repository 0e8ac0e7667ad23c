/** @allot/test: the integration-test harness (real nats-server and allot processes, always cleaned up). */
export { cleanupAll, registerCleanup } from './cleanup.ts';
export { freePort, portAccepts } from './net.ts';
export { tempDir } from './temp.ts';
export { waitFor, type WaitOptions } from './wait.ts';
export {
  NATS_SERVER_BIN,
  natsServerConfig,
  startNatsCluster,
  startNatsServer,
  type NatsClusterHandle,
  type NatsServerHandle,
  type NatsServerOptions,
} from './nats-server.ts';
export { spawnProcess, type OutputLine, type ProcessExit, type ProcessHandle, type SpawnOptions } from './process.ts';
export {
  AGENT_MAIN,
  agentRequest,
  isLogMsg,
  readEvents,
  simulatedHostEnv,
  startAgent,
  type AgentHandle,
  type AgentHostSize,
  type AgentReply,
  type StartAgentOptions,
} from './agent.ts';
export {
  COORDINATOR_MAIN,
  startLocalCluster,
  type ClusterAgentSpec,
  type LocalCluster,
  type LocalClusterOptions,
  type SchedReply,
} from './cluster.ts';
