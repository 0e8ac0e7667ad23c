import { describe, expect, it } from 'vitest';
import { mutate } from './payloads.ts';
import { Rng } from './random.ts';

describe('the fuzzer mutating a message body', () => {
  // The 1,000,000-message run died here after a few minutes: a first mutation put random bytes (a Uint8Array) where
  // an array was, and a second one deleted an "element" of it, which a typed array refuses with a TypeError.
  it('never throws, whatever an earlier mutation of the same body put in place of a field', () => {
    for (let seed = 1; seed <= 20_000; seed++) {
      const rng = new Rng(seed);
      const body = { requestId: 'fuzz-1', list: [1, 2, 3], nested: { items: ['a', 'b'], n: 4 } };
      expect(() => mutate(rng, body), `seed ${seed}`).not.toThrow();
    }
  });
});
