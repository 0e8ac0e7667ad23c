import { RateSchema, type Rate } from '@allot/core';
import { parsedOk, usageProblem, type Parsed } from '../args.ts';

const UNITS: Record<string, Rate['per']> = {
  s: 'second',
  sec: 'second',
  second: 'second',
  m: 'minute',
  min: 'minute',
  minute: 'minute',
  h: 'hour',
  hr: 'hour',
  hour: 'hour',
};

/**
 * `100/hour` (also `10/s`, `300/min`, `5/h`) as a token-bucket rate. Kept per its own unit: 100/hour stays 100 per
 * hour, never divided down to a per-second figure that would round to zero.
 */
export function parseRate(flag: string, text: string): Parsed<Rate> {
  const match = /^\s*(\d+)\s*\/\s*([a-z]+)\s*$/i.exec(text);
  if (!match) return usageProblem(`--${flag}: "${text}" is not a rate like 100/hour (units: second, minute, hour)`);
  const per = UNITS[(match[2] ?? '').toLowerCase()];
  if (per === undefined) return usageProblem(`--${flag}: "${match[2] ?? ''}" is not a unit (second, minute, hour)`);
  const rate = RateSchema.safeParse({ count: Number(match[1]), per });
  if (!rate.success) return usageProblem(`--${flag}: the count must be 1..1000000000, got ${match[1] ?? ''}`);
  return parsedOk(rate.data);
}

export function formatRate(rate: Rate): string {
  return `${rate.count}/${rate.per}`;
}
