import { parsedOk, usageProblem, type Parsed } from '../args.ts';
import { parseMemoryMiB } from './memory.ts';

/** A quota's hugepage limits: MiB of pages per page size (TenantQuota.maxHugepagesMiB). */
type HugepagesQuota = { '2Mi'?: number; '1Gi'?: number };

/**
 * `--max-hugepages <2Mi|1Gi>:<amount>`, repeatable, one per page size: the MiB of that size's pages the tenant may
 * hold (kube's `requests.hugepages-2Mi: 1Gi`); the amount in MiB or with a binary unit. None given: undefined.
 */
export function parseHugepagesQuota(texts: readonly string[] | undefined): Parsed<HugepagesQuota | undefined> {
  if (texts === undefined || texts.length === 0) return parsedOk(undefined);
  const out: HugepagesQuota = {};
  for (const text of texts) {
    const m = /^\s*(2Mi|1Gi):(.+)$/.exec(text);
    if (m === null) return usageProblem(`--max-hugepages: "${text}" is not <2Mi|1Gi>:<MiB>`);
    const size = m[1] as keyof HugepagesQuota;
    if (out[size] !== undefined) return usageProblem(`--max-hugepages: ${size} given twice`);
    const mib = parseMemoryMiB('max-hugepages', m[2] ?? '');
    if (!mib.ok) return mib;
    out[size] = mib.value;
  }
  return parsedOk(out);
}
