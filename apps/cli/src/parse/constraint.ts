import type { LabelConstraint } from '@allot/core';
import { parsedOk, usageProblem, type Parsed } from '../args.ts';

/**
 * A placement constraint on node labels, after kubectl's selector syntax:
 *   zone=z1        In [z1]          (zone=z1,z2: In [z1, z2])
 *   zone!=z1       NotIn [z1]       (zone!=z1,z2: NotIn [z1, z2])
 *   gpu            Exists
 *   !gpu           DoesNotExist
 */
export function parseConstraint(text: string): Parsed<LabelConstraint> {
  const t = text.trim();
  const key = /^[A-Za-z0-9_./-]{1,64}$/;
  const notIn = /^([^!=]+)!=(.*)$/.exec(t);
  const inSet = /^([^!=]+)=(.*)$/.exec(t);
  const values = (v: string) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  if (notIn || inSet) {
    const m = (notIn ?? inSet) as RegExpExecArray;
    const k = (m[1] ?? '').trim();
    const vs = values(m[2] ?? '');
    if (!key.test(k)) return usageProblem(`--constraint: "${k}" is not a label key`);
    if (vs.length === 0) return usageProblem(`--constraint: "${t}" names no value`);
    return parsedOk({ key: k, op: notIn ? 'NotIn' : 'In', values: vs });
  }
  if (t.startsWith('!')) {
    const k = t.slice(1).trim();
    if (!key.test(k)) return usageProblem(`--constraint: "${k}" is not a label key`);
    return parsedOk({ key: k, op: 'DoesNotExist', values: [] });
  }
  if (!key.test(t)) return usageProblem(`--constraint: "${t}" is not key=value, key!=value, key or !key`);
  return parsedOk({ key: t, op: 'Exists', values: [] });
}
