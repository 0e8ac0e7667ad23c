import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from './cli.ts';
import { connectionConfig } from './connection.ts';
import { recordingContext } from './testing/recording-context.ts';

const homes: string[] = [];
afterEach(() => {
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
});

/** A HOME with the nats CLI's contexts: ~/.config/nats/context/<name>.json and the selected one in context.txt. */
function homeWithContexts(contexts: Record<string, object>, selected?: string): string {
  const home = mkdtempSync(join(tmpdir(), 'allot-home-'));
  homes.push(home);
  const dir = join(home, '.config', 'nats', 'context');
  mkdirSync(dir, { recursive: true });
  for (const [name, body] of Object.entries(contexts)) writeFileSync(join(dir, `${name}.json`), JSON.stringify(body));
  if (selected !== undefined) writeFileSync(join(home, '.config', 'nats', 'context.txt'), `${selected}\n`);
  return home;
}

function value<T>(parsed: { ok: true; value: T } | { ok: false; message: string }): T {
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
}

describe('where the CLI connects', () => {
  it('reads NATS_URL when neither a flag nor ALLOT_NATS_SERVERS names a server', () => {
    expect(value(connectionConfig({}, { NATS_URL: 'tls://n1:4222,tls://n2:4222' })).servers).toEqual(['tls://n1:4222', 'tls://n2:4222']);
    expect(value(connectionConfig({}, { NATS_URL: 'nats://a:4222', ALLOT_NATS_SERVERS: 'nats://b:4222' })).servers).toEqual([
      'nats://b:4222',
    ]);
  });

  it("uses the nats CLI's selected context: url, creds, nkey, ca, cert, key", () => {
    const home = homeWithContexts(
      {
        prod: {
          description: 'production',
          url: 'tls://nats.prod:4222',
          creds: '/etc/allot/operator.creds',
          ca: '/etc/allot/ca.pem',
          cert: '/etc/allot/op.pem',
          key: '/etc/allot/op-key.pem',
          tls_first: false,
          jetstream_domain: '',
        },
      },
      'prod',
    );
    expect(value(connectionConfig({}, { HOME: home }))).toMatchObject({
      servers: ['tls://nats.prod:4222'],
      credsFile: '/etc/allot/operator.creds',
      tls: { caFile: '/etc/allot/ca.pem', certFile: '/etc/allot/op.pem', keyFile: '/etc/allot/op-key.pem' },
    });
  });

  it('picks another context with --context or NATS_CONTEXT; flags and ALLOT_NATS_* win over it', () => {
    const home = homeWithContexts(
      { a: { url: 'nats://a:4222', nkey: '/keys/a.nk' }, b: { url: 'nats://b:4222', user: 'reader', password: 'from-file' } },
      'a',
    );
    expect(value(connectionConfig({ context: 'b' }, { HOME: home }))).toMatchObject({
      servers: ['nats://b:4222'],
      user: 'reader',
      password: 'from-file',
    });
    expect(value(connectionConfig({}, { HOME: home, NATS_CONTEXT: 'b' })).servers).toEqual(['nats://b:4222']);
    const mixed = value(connectionConfig({ creds: '/flag.creds' }, { HOME: home, ALLOT_NATS_TLS_CA: '/env-ca.pem' }));
    expect(mixed).toMatchObject({ servers: ['nats://a:4222'], credsFile: '/flag.creds', tls: { caFile: '/env-ca.pem' } });
    expect(mixed.nkeySeedFile).toBeUndefined();
  });

  it('says which context file it cannot read', () => {
    const home = homeWithContexts({}, 'gone');
    const parsed = connectionConfig({}, { HOME: home });
    expect(parsed.ok || parsed.message).toMatch(/context "gone": cannot read .*gone\.json/);
  });

  it('takes no password or token on the command line: they would sit in the shell history and in ps', async () => {
    for (const flag of ['--password', '--token']) {
      const ctx = recordingContext();
      expect(await runCli(['nodes', flag, 'hunter2'], ctx)).toBe(2);
      expect(ctx.stderr.join('\n')).toContain(flag);
    }
  });
});
