import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';

const SECRETS = {
  password: 'pw-s3cret',
  token: 'tok-s3cret',
  nkeySeed: 'SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4',
  seed: 'seed-s3cret',
  jwt: 'eyJ-s3cret',
};

function capture() {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(line) } };
}

describe('the agent logger', () => {
  it('never writes a credential, at any depth, while file paths stay visible', () => {
    const out = capture();
    const log = createLogger({ level: 'info', name: 'allot-agent', nodeId: 'hv1', destination: out.destination });
    log.info(
      {
        ...SECRETS,
        nats: { ...SECRETS, credsFile: '/etc/allot/agent.creds' },
        config: { nats: SECRETS },
        err: { details: { nats: SECRETS } },
      },
      'starting',
    );
    log.child({ component: 'nats' }).warn({ options: { authenticator: { token: SECRETS.token } } }, 'retrying');
    const text = out.lines.join('');
    for (const secret of Object.values(SECRETS)) expect(text).not.toContain(secret);
    expect(text).toContain('/etc/allot/agent.creds');
    expect(text).toContain('[redacted]');
  });
});
