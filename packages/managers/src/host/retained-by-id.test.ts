import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RetainedById } from './retained-by-id.ts';

const entry = (id: string) => ({ allocation: { id } });

describe('RetainedById', () => {
  it('finds what a Map would, whatever the ids, collisions and growth', () => {
    const id = fc.oneof(
      fc.integer({ min: 1, max: 5_000 }).map((n) => `n1:${n}`),
      fc.integer({ min: 0, max: 3 }).map((k) => `n1:${1 + k * 1024}`), // same cell of the first table
      fc.constantFrom('n1:0', 'n1:007', 'n2:5', 'n1:', 'n1:12x', 'n1:99999999999999999'),
    );
    const op = fc.record({ add: fc.boolean(), id });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const table = new RetainedById<{ allocation: { id: string } }>('n1', 4);
        const model = new Map<string, { allocation: { id: string } }>();
        for (const { add, id: key } of ops) {
          if (add) {
            const e = entry(key);
            table.set(e);
            model.set(key, e);
          } else {
            const e = model.get(key);
            if (e !== undefined) {
              table.delete(e);
              model.delete(key);
            }
          }
          expect(table.size).toBe(model.size);
        }
        for (const [key, e] of model) expect(table.get(key)).toBe(e);
        expect(table.get('n1:424242')).toBeUndefined();
      }),
    );
  });

  it('deletes only the entry it is given, not a newer one under the same id', () => {
    const table = new RetainedById<{ allocation: { id: string } }>('n1');
    const old = entry('n1:7');
    const newer = entry('n1:7');
    table.set(old);
    table.set(newer);
    table.delete(old);
    expect(table.get('n1:7')).toBe(newer);
    expect(table.size).toBe(1);
  });

  it('keeps one entry for an id placed in the overflow and set again once its cell is free', () => {
    const table = new RetainedById<{ allocation: { id: string } }>('n1', 4);
    const first = entry('n1:1');
    table.set(entry('n1:2049'));
    table.set(first);
    table.delete(table.get('n1:2049') as { allocation: { id: string } });
    const again = entry('n1:1');
    table.set(again);
    expect(table.size).toBe(1);
    expect(table.get('n1:1')).toBe(again);
    table.delete(again);
    expect(table.size).toBe(0);
    expect(table.get('n1:1')).toBeUndefined();
  });
});
