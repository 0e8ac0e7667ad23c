import { MAX_MEMORY_MIB } from '@allot/core';
import { parsedOk, usageProblem, type Parsed } from '../args.ts';

const FACTORS: Record<string, number> = {
  '': 1,
  m: 1,
  mi: 1,
  mib: 1,
  g: 1024,
  gi: 1024,
  gib: 1024,
  t: 1024 * 1024,
  ti: 1024 * 1024,
  tib: 1024 * 1024,
};

/**
 * A memory amount in MiB: `4096` (MiB), or with a unit `4096MiB`, `4G`, `4GiB`, `1T`. Binary units only (G means GiB),
 * and the result must be whole MiB: accounting is integer.
 */
export function parseMemoryMiB(flag: string, text: string): Parsed<number> {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const factor = match ? FACTORS[(match[2] ?? '').toLowerCase()] : undefined;
  if (!match || factor === undefined) return usageProblem(`--${flag}: "${text}" is not an amount of memory like 4096 (MiB), 4G or 4GiB`);
  const mib = Number(match[1]) * factor;
  if (!Number.isInteger(mib)) return usageProblem(`--${flag}: ${text} is not a whole number of MiB`);
  if (mib > MAX_MEMORY_MIB) return usageProblem(`--${flag}: ${text} is more than the ${MAX_MEMORY_MIB} MiB allot accepts`);
  return parsedOk(mib);
}
