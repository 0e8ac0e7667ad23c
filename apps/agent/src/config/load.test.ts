import { describe, expect, it } from 'vitest';
import { AGENT_DEFAULT_CONFIG, loadAgentConfig, type AgentConfigProblem, type LoadAgentConfigInput } from './index.ts';

const FILE = '/etc/allot/agent.json';

function load(options: { file?: unknown; env?: Record<string, string>; argv?: string[]; hostname?: string } = {}) {
  const files = new Map<string, string>();
  if (options.file !== undefined) files.set(FILE, typeof options.file === 'string' ? options.file : JSON.stringify(options.file));
  const input: LoadAgentConfigInput = {
    argv: options.argv ?? (options.file !== undefined ? ['--config', FILE] : []),
    env: options.env ?? {},
    readFile: (path) => {
      const text = files.get(path);
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
      return text;
    },
    hostname: options.hostname ?? 'hv01.dc1.example.com',
  };
  return loadAgentConfig(input);
}

function problemsOf(result: ReturnType<typeof load>): AgentConfigProblem[] {
  if (result.ok) throw new Error('expected the config to be refused');
  expect(result.error.code).toBe('invalid_request');
  return result.error.details?.problems as AgentConfigProblem[];
}

function value(result: ReturnType<typeof load>) {
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

describe('loading the agent configuration', () => {
  it('needs nothing: every key has a safe default, the node id is the sanitised hostname', () => {
    const config = value(load());
    expect(config).toEqual({
      nodeId: 'hv01-dc1-example-com',
      nats: { servers: ['nats://127.0.0.1:4222'], requestTimeoutMs: 5000 },
      labels: {},
      memory: { systemReserveMiB: 0, overcommitRatio: 1 },
      cpu: { reservedCores: [], systemReserveCores: 0, overcommitRatio: 1, policy: 'first-fit' },
      health: { committedDegradedPermille: 950, usedDegradedPermille: 900, usedUnhealthyPermille: 980, probeStaleMs: 30_000 },
      stateDir: './.allot/agent-hv01-dc1-example-com',
      samplingIntervalMs: 1000,
      heartbeatMs: 2000,
      jetstreamReplicas: 1,
      usagePublishMinIntervalMs: 250,
      logLevel: 'info',
      shutdownGraceMs: 10_000,
    });
  });

  it('reads the file named by --config, or by ALLOT_AGENT_CONFIG when there is no flag', () => {
    const file = { nodeId: 'hv07', memory: { capacityMiB: 65_536, systemReserveMiB: 4096, overcommitRatio: 1.5 } };
    expect(value(load({ file })).memory).toEqual({ capacityMiB: 65_536, systemReserveMiB: 4096, overcommitRatio: 1.5 });
    expect(value(load({ file, argv: [`--config=${FILE}`] })).nodeId).toBe('hv07');
    expect(value(load({ file, argv: [], env: { ALLOT_AGENT_CONFIG: FILE } })).nodeId).toBe('hv07');
  });

  it('lets the environment override the file, key by key', () => {
    const config = value(
      load({
        file: {
          nodeId: 'from-file',
          stateDir: '/var/lib/allot',
          cpu: { overcommitRatio: 2, policy: 'best-fit' },
          nats: { servers: ['nats://a:4222'] },
        },
        env: {
          ALLOT_NODE_ID: 'from-env',
          ALLOT_CPU_OVERCOMMIT: '4',
          ALLOT_NATS_SERVERS: 'nats://n1:4222, nats://n2:4222,',
          ALLOT_CPU_RESERVED_CORES: '0,1',
        },
      }),
    );
    expect(config.nodeId).toBe('from-env');
    expect(config.cpu).toMatchObject({ overcommitRatio: 4, policy: 'best-fit', reservedCores: [0, 1], systemReserveCores: 2 });
    expect(config.nats.servers).toEqual(['nats://n1:4222', 'nats://n2:4222']);
    expect(config.stateDir).toBe('/var/lib/allot');
  });

  it('reads labels as key=value pairs, replacing the file labels', () => {
    const config = value(load({ file: { labels: { zone: 'old', owner: 'x' } }, env: { ALLOT_LABELS: ' zone=z1 , rack=r7,,' } }));
    expect(config.labels).toEqual({ zone: 'z1', rack: 'r7' });
  });

  it('reads NATS credentials and a simulated host size from the environment', () => {
    const config = value(
      load({
        env: {
          ALLOT_NATS_CREDS: '/etc/allot/agent.creds',
          ALLOT_SIMULATED_HOST: 'cores=16,sockets=2,numaNodes=2,threadsPerCore=2,memoryMiB=65536',
          ALLOT_HTTP_PORT: '9464',
        },
      }),
    );
    expect(config.nats.credsFile).toBe('/etc/allot/agent.creds');
    expect(config.simulatedHost).toEqual({ cores: 16, sockets: 2, numaNodes: 2, threadsPerCore: 2, memoryMiB: 65_536 });
    expect(config.http).toEqual({ host: '127.0.0.1', port: 9464 });
  });

  it('treats an empty variable as unset', () => {
    expect(value(load({ env: { ALLOT_NODE_ID: '', ALLOT_MEMORY_OVERCOMMIT: ' ' } })).nodeId).toBe('hv01-dc1-example-com');
  });
});

describe('refusing a bad configuration', () => {
  it('names the key, the reason and the variable it came from', () => {
    const result = load({ env: { ALLOT_MEMORY_OVERCOMMIT: '0.5' } });
    expect(problemsOf(result)).toEqual([
      { path: 'memory.overcommitRatio', message: 'Too small: expected number to be >=1', source: 'ALLOT_MEMORY_OVERCOMMIT' },
    ]);
    expect(!result.ok && result.error.message).toBe(
      'config error: memory.overcommitRatio: Too small: expected number to be >=1 (from ALLOT_MEMORY_OVERCOMMIT)',
    );
  });

  it('names the file when the bad value came from it', () => {
    expect(problemsOf(load({ file: { cpu: { policy: 'fastest' } } }))).toEqual([
      expect.objectContaining({ path: 'cpu.policy', source: FILE }),
    ]);
  });

  it('reports every problem together, each with its own source', () => {
    const problems = problemsOf(
      load({
        file: { memory: { capacityMiB: 1024, systemReserveMiB: 2048, overcommitRaito: 2 }, heartbeatMs: 'often' },
        env: { ALLOT_LABELS: 'zone=z1,rack', ALLOT_CPU_RESERVED_CORES: '0,x', ALLOT_LOG_LEVEL: 'loud', ALLOT_NODE_ID: 'hv 01' },
      }),
    );
    expect(problems.map((p) => `${p.path} <- ${p.source}`).sort()).toEqual(
      [
        `labels <- ALLOT_LABELS`,
        `nodeId <- ALLOT_NODE_ID`,
        `memory.overcommitRaito <- ${FILE}`,
        `memory.systemReserveMiB <- ${FILE}`,
        `heartbeatMs <- ${FILE}`,
        `cpu.reservedCores.1 <- ALLOT_CPU_RESERVED_CORES`,
        `logLevel <- ALLOT_LOG_LEVEL`,
      ].sort(),
    );
  });

  it('takes idleStatusMs from the file or ALLOT_IDLE_STATUS_MS, and refuses one below heartbeatMs', () => {
    expect(value(load({ file: { idleStatusMs: 60_000 } })).idleStatusMs).toBe(60_000);
    expect(value(load({ env: { ALLOT_IDLE_STATUS_MS: '30000' } })).idleStatusMs).toBe(30_000);
    expect(value(load()).idleStatusMs).toBeUndefined(); // the heartbeat: an older coordinator judges by reports only
    expect(problemsOf(load({ file: { heartbeatMs: 5_000, idleStatusMs: 2_000 } }))).toEqual([
      expect.objectContaining({ path: 'idleStatusMs', source: FILE }),
    ]);
  });

  it('checks values against each other', () => {
    const problems = problemsOf(
      load({
        file: {
          memory: { capacityMiB: 1024, systemReserveMiB: 1024, softLimitMiB: 900, hardLimitMiB: 800 },
          cpu: { cores: 4, reservedCores: [1, 1, 9], systemReserveCores: 2 },
          samplingIntervalMs: 60_000,
          health: { probeStaleMs: 30_000 },
        },
      }),
    );
    expect(problems.map((p) => p.path).sort()).toEqual(
      [
        'memory.systemReserveMiB',
        'memory.softLimitMiB',
        'cpu.reservedCores.1',
        'cpu.reservedCores.2',
        'cpu.systemReserveCores',
        'samplingIntervalMs',
      ].sort(),
    );
  });

  it('refuses an impossible simulated host, naming the field', () => {
    const problems = problemsOf(load({ env: { ALLOT_SIMULATED_HOST: 'cores=6,threadsPerCore=4,memoryMiB=1024' } }));
    expect(problems).toEqual([expect.objectContaining({ path: 'simulatedHost.threadsPerCore', source: 'ALLOT_SIMULATED_HOST' })]);
  });

  it('refuses two ways to authenticate to NATS, naming both sources', () => {
    const problems = problemsOf(load({ file: { nats: { user: 'agent', password: 'pw' } }, env: { ALLOT_NATS_TOKEN: 'secret' } }));
    expect(problems).toEqual([
      { path: 'nats', message: expect.stringContaining('choose one way') as string, source: `${FILE}, ALLOT_NATS_TOKEN` },
    ]);
  });

  it('says so when the config file is missing, is not JSON, or is not an object', () => {
    expect(problemsOf(load({ argv: ['--config', '/nope.json'] }))).toEqual([
      { path: '(file)', message: expect.stringContaining('ENOENT') as string, source: '/nope.json' },
    ]);
    expect(problemsOf(load({ file: '{ nodeId: ' }))[0]).toMatchObject({
      path: '(file)',
      message: expect.stringContaining('not valid JSON') as string,
    });
    expect(problemsOf(load({ file: '[1]' }))[0]).toMatchObject({ path: '(file)', message: 'must be a JSON object' });
    expect(problemsOf(load({ argv: ['--config'] }))[0]).toMatchObject({ path: '--config', message: 'needs a file path' });
  });

  it('refuses a misspelt key inside nats, tls and health, so a credential is never silently dropped', () => {
    const problems = problemsOf(
      load({ file: { nats: { credFile: '/etc/allot/agent.creds', tls: { certfile: '/c.pem' } }, health: { probeStale: 1 } } }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: 'nats.credFile', message: 'unknown key', source: FILE },
        { path: 'nats.tls.certfile', message: 'unknown key', source: FILE },
        { path: 'health.probeStale', message: 'unknown key', source: FILE },
      ]),
    );
    expect(problems).toHaveLength(3);
  });

  it('in production, needs NATS credentials and TLS or an explicit insecure: true', () => {
    const production = { NODE_ENV: 'production', ALLOT_STATE_DIR: '/var/lib/allot' };
    const bare = problemsOf(load({ env: production }));
    expect(bare).toEqual([
      { path: 'nats', message: expect.stringMatching(/no credentials.*no TLS.*insecure: true/s) as string, source: 'NODE_ENV' },
    ]);
    expect(problemsOf(load({ file: { production: true, stateDir: '/s', nats: { tls: { caFile: '/ca.pem' } } } }))[0]?.message).toMatch(
      /no credentials/,
    );
    expect(value(load({ env: { ...production, ALLOT_NATS_CREDS: '/a.creds', ALLOT_NATS_TLS_CA: '/ca.pem' } })).nats.credsFile).toBe(
      '/a.creds',
    );
    expect(value(load({ env: { ...production, ALLOT_NATS_INSECURE: 'true' } })).nats.insecure).toBe(true);
  });

  it('requires an explicit state directory in production', () => {
    expect(problemsOf(load({ env: { NODE_ENV: 'production', ALLOT_NATS_INSECURE: 'true' } }))).toEqual([
      { path: 'stateDir', message: expect.stringContaining('required in production') as string, source: 'NODE_ENV' },
    ]);
    expect(value(load({ env: { NODE_ENV: 'production', ALLOT_NATS_INSECURE: 'true', ALLOT_STATE_DIR: '/var/lib/allot' } })).stateDir).toBe(
      '/var/lib/allot',
    );
  });
});

describe('the default config file (/etc/allot/agent.json, as the package installs it)', () => {
  const read = (files: Record<string, string>) => (path: string) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
    return text;
  };
  const base = { env: {}, hostname: 'hv01', defaultConfigFile: AGENT_DEFAULT_CONFIG };

  it('is read when no --config or ALLOT_AGENT_CONFIG names a file', () => {
    const loaded = loadAgentConfig({
      ...base,
      argv: [],
      readFile: read({ [AGENT_DEFAULT_CONFIG]: JSON.stringify({ nodeId: 'from-etc' }) }),
    });
    expect(loaded.ok && loaded.value.nodeId).toBe('from-etc');
  });

  it('is not needed: absent, the defaults and variables apply', () => {
    const loaded = loadAgentConfig({ ...base, argv: [], readFile: read({}) });
    expect(loaded.ok && loaded.value.nodeId).toBe('hv01');
  });

  it('gives way to a named file, and refuses to start when present but broken', () => {
    const files = { [AGENT_DEFAULT_CONFIG]: '{ broken', '/srv/other.json': JSON.stringify({ nodeId: 'named' }) };
    const named = loadAgentConfig({ ...base, argv: ['--config=/srv/other.json'], readFile: read(files) });
    expect(named.ok && named.value.nodeId).toBe('named');
    const broken = loadAgentConfig({ ...base, argv: [], readFile: read(files) });
    expect(broken.ok).toBe(false);
    expect(!broken.ok && broken.error.message).toMatch(new RegExp(`not valid JSON.*\\(from ${AGENT_DEFAULT_CONFIG}\\)`));
  });
});
