import { describe, expect, it } from 'vitest';
import { loadCoordinatorConfig } from './config.ts';

const FILE = '/etc/allot/coordinator.json';

function load(options: { file?: unknown; env?: Record<string, string>; argv?: string[] } = {}) {
  const files = new Map<string, string>();
  if (options.file !== undefined) files.set(FILE, JSON.stringify(options.file));
  const read = (path: string) => {
    const text = files.get(path);
    if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
    return text;
  };
  return loadCoordinatorConfig(options.argv ?? (options.file !== undefined ? ['--config', FILE] : []), options.env ?? {}, read);
}

type Problem = { path: string; message: string; source: string };
function problemsOf(result: ReturnType<typeof load>): Problem[] {
  if (result.ok) throw new Error('expected the config to be refused');
  expect(result.error.code).toBe('invalid_request');
  return result.error.details?.problems as Problem[];
}

const SECURE_NATS = { credsFile: '/etc/allot/coordinator.creds', tls: { caFile: '/etc/allot/ca.pem' } };

describe('loading the coordinator configuration', () => {
  it('refuses a misspelt key anywhere, naming every one at once with its source', () => {
    const problems = problemsOf(
      load({
        file: {
          nast: { credsFile: '/x.creds' },
          nats: { credFile: '/x.creds', tls: { ca: '/ca.pem' } },
          liveness: { lostAfter: 5 },
          http: { port: 1, hots: 'x' },
        },
      }),
    );
    expect(problems.map((p) => `${p.path}: ${p.message} <- ${p.source}`).sort()).toEqual(
      [
        `nast: unknown key <- ${FILE}`,
        `nats.credFile: unknown key <- ${FILE}`,
        `nats.tls.ca: unknown key <- ${FILE}`,
        `liveness.lostAfter: unknown key <- ${FILE}`,
        `http.hots: unknown key <- ${FILE}`,
      ].sort(),
    );
  });

  it('gives tenants without a quota priority 0 and no preemption unless configured, and refuses an allowing default in production', () => {
    const plain = load();
    expect(plain.ok && plain.value.tenantDefaults).toEqual({ priority: 0, allowPreemption: false });
    const configured = load({ file: { tenantDefaults: { priority: 20, allowPreemption: true } } });
    expect(configured.ok && configured.value.tenantDefaults).toEqual({ priority: 20, allowPreemption: true });
    const problems = problemsOf(load({ file: { production: true, nats: SECURE_NATS, tenantDefaults: { allowPreemption: true } } }));
    expect(problems.map((p) => p.path)).toContain('tenantDefaults.allowPreemption');
  });

  it('takes the same ALLOT_NATS_* variables as the agent, TLS and nkey seed file included', () => {
    const result = load({
      env: {
        ALLOT_NATS_SERVERS: 'tls://n1:4222,tls://n2:4222',
        ALLOT_NATS_NKEY_SEED_FILE: '/etc/allot/coordinator.nk',
        ALLOT_NATS_TLS_CA: '/etc/allot/ca.pem',
        ALLOT_NATS_TLS_CERT: '/etc/allot/coordinator.pem',
        ALLOT_NATS_TLS_KEY: '/etc/allot/coordinator-key.pem',
        ALLOT_NATS_NAME: 'coord-a',
      },
    });
    if (!result.ok) throw new Error(result.error.message);
    expect(result.value.nats).toMatchObject({
      servers: ['tls://n1:4222', 'tls://n2:4222'],
      name: 'coord-a',
      nkeySeedFile: '/etc/allot/coordinator.nk',
      tls: { caFile: '/etc/allot/ca.pem', certFile: '/etc/allot/coordinator.pem', keyFile: '/etc/allot/coordinator-key.pem' },
    });
  });

  it('reads --config=<file> like the agent, and reports every bad variable with its name', () => {
    const ok = load({ file: { coordinatorId: 'c7' }, argv: [`--config=${FILE}`] });
    expect(ok.ok && ok.value.coordinatorId).toBe('c7');
    const problems = problemsOf(load({ env: { ALLOT_REPLICAS: 'three', ALLOT_LOG_LEVEL: 'loud' } }));
    expect(problems.map((p) => `${p.path} <- ${p.source}`).sort()).toEqual(['logLevel <- ALLOT_LOG_LEVEL', 'replicas <- ALLOT_REPLICAS']);
  });

  it('in production, refuses to start without credentials and TLS unless insecure is explicit', () => {
    const problems = problemsOf(load({ env: { NODE_ENV: 'production' } }));
    expect(problems).toEqual([
      expect.objectContaining({ path: 'nats', message: expect.stringMatching(/credentials.*TLS.*insecure: true/s) as string }),
    ]);
    expect(problemsOf(load({ file: { production: true, nats: { credsFile: '/c.creds' } } }))[0]?.message).toMatch(/no TLS/);
    expect(load({ env: { NODE_ENV: 'production' }, file: { nats: SECURE_NATS } }).ok).toBe(true);
    expect(load({ env: { NODE_ENV: 'production', ALLOT_NATS_INSECURE: 'true' } }).ok).toBe(true);
    expect(load({}).ok).toBe(true);
  });
});
