import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';

describe('the coordinator logger', () => {
  it('redacts NATS credentials like the agent does', () => {
    const lines: string[] = [];
    const log = createLogger('info', 'c1', { write: (line: string) => void lines.push(line) });
    log.error(
      {
        err: { details: { nats: { password: 'pw-s3cret', token: 'tok-s3cret' } } },
        config: { nats: { nkeySeed: 'SUA-s3cret', user: 'coord' } },
      },
      'cannot connect',
    );
    const text = lines.join('');
    expect(text).not.toMatch(/s3cret/);
    expect(text).toContain('"user":"coord"');
  });
});
