import type { GroupAffinity, Taint, Toleration } from '@allot/core';
import { parseInteger, parsedOk, usageProblem, type Parsed } from '../args.ts';

const KEY = /^[A-Za-z0-9_./-]{1,64}$/;

/** `key=value[:NoSchedule]` or `key[:NoSchedule]`: the taint of `allot node taint` and the pair a toleration names. */
function keyValueEffect(flag: string, text: string): Parsed<{ key: string; value: string | undefined; effect: 'NoSchedule' | undefined }> {
  const t = text.trim();
  const colon = t.lastIndexOf(':');
  const effect = colon < 0 ? undefined : t.slice(colon + 1);
  if (effect !== undefined && effect !== 'NoSchedule') return usageProblem(`${flag}: effect "${effect}" is not NoSchedule`);
  const pair = colon < 0 ? t : t.slice(0, colon);
  const eq = pair.indexOf('=');
  const key = eq < 0 ? pair : pair.slice(0, eq);
  if (!KEY.test(key)) return usageProblem(`${flag}: "${key}" is not a key`);
  const value = eq < 0 ? undefined : pair.slice(eq + 1);
  if (value !== undefined && value.length > 256) return usageProblem(`${flag}: the value is longer than 256 characters`);
  return parsedOk({ key, value, effect: effect === undefined ? undefined : 'NoSchedule' });
}

/** `--toleration key=value[:NoSchedule]` (Equal) or `--toleration key[:NoSchedule]` (Exists: any value). */
export function parseToleration(text: string): Parsed<Toleration> {
  const p = keyValueEffect('--toleration', text);
  if (!p.ok) return p;
  const { key, value, effect } = p.value;
  return parsedOk({
    key,
    operator: value === undefined ? 'Exists' : 'Equal',
    value: value ?? '',
    ...(effect === undefined ? {} : { effect }),
  });
}

/** `allot node taint <node> key[=value][:NoSchedule]`: NoSchedule is the only effect, and the default. */
export function parseTaint(text: string, reason: string | undefined): Parsed<Taint> {
  const p = keyValueEffect('taint', text);
  if (!p.ok) return p;
  return parsedOk({ key: p.value.key, value: p.value.value ?? '', effect: 'NoSchedule', ...(reason === undefined ? {} : { reason }) });
}

/**
 * `--affinity group[@label]` (required) and `--prefer-affinity group[@label][=weight]` (preferred, weight 1..100,
 * default 100): near the group's allocations, on the same node, or in the same domain of the label.
 */
export function parseAffinity(text: string, mode: 'required' | 'preferred'): Parsed<GroupAffinity> {
  const flag = mode === 'required' ? '--affinity' : '--prefer-affinity';
  let t = text.trim();
  let weight = 100;
  const eq = t.indexOf('=');
  if (eq >= 0) {
    if (mode === 'required') return usageProblem(`${flag}: a weight goes with --prefer-affinity`);
    const w = parseInteger(flag.slice(2), t.slice(eq + 1), 1, 100);
    if (!w.ok) return w;
    weight = w.value;
    t = t.slice(0, eq);
  }
  const at = t.indexOf('@');
  const group = at < 0 ? t : t.slice(0, at);
  const label = at < 0 ? undefined : t.slice(at + 1);
  if (!/^[^\s]{1,64}$/.test(group)) return usageProblem(`${flag}: "${group}" is not a group name`);
  if (label !== undefined && !KEY.test(label)) return usageProblem(`${flag}: "${label}" is not a label key`);
  return parsedOk({ group, mode, weight, ...(label === undefined ? {} : { topologyKey: label }) });
}
