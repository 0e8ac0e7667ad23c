import { HealthThresholdsSchema, LimitsSchema, ResourceTypeSchema, type ConfigProblem, type HealthThresholds, type LimitsInput, type ResourceType, type Result } from '@allot/core';
import { invalidConfig, problemsOf } from '../builder-result.ts';
import { systemClock, type Clock } from '../clock.ts';
import { LocalManager } from '../host/local-manager.ts';
import type { Journal } from '../host/records.ts';
import { CountingSlice } from './counting-slice.ts';

export interface GenericManagerOptions {
  /** disk, network, gpu or custom:<name>; requests ask for it in resources.extra. */
  readonly resourceType: ResourceType;
  readonly limits: LimitsInput;
  readonly thresholds?: Partial<HealthThresholds>;
  readonly nodeId?: string;
  readonly journal?: Journal;
  readonly clock?: Clock;
}

/**
 * A manager counting integer units of any other resource type against its limits, so a new type is added by
 * registering one. The host probe reports no figure for these types, so `used` is 0 (and named as such in health
 * only for memory and CPU, which the probe does measure).
 */
export class GenericManager extends LocalManager {
  readonly slice: CountingSlice;

  private constructor(slice: CountingSlice, options: GenericManagerOptions) {
    super({ name: slice.type, nodeId: options.nodeId ?? slice.type.replace(':', '-'), slices: [slice], journal: options.journal, clock: options.clock });
    this.slice = slice;
  }

  static create(options: GenericManagerOptions): Result<GenericManager> {
    const problems: ConfigProblem[] = [];
    const type = ResourceTypeSchema.safeParse(options.resourceType);
    if (!type.success) problems.push(...problemsOf('resourceType', type.error));
    else if (type.data === 'memory' || type.data === 'cpu') problems.push({ path: 'resourceType', message: `${type.data} has its own manager` });
    const limits = LimitsSchema.safeParse(options.limits);
    if (!limits.success) problems.push(...problemsOf('limits', limits.error));
    const thresholds = HealthThresholdsSchema.safeParse(options.thresholds ?? {});
    if (!thresholds.success) problems.push(...problemsOf('health', thresholds.error));
    if (!type.success || !limits.success || !thresholds.success || problems.length > 0) return invalidConfig(problems);
    const slice = new CountingSlice({ type: type.data, limits: limits.data, thresholds: thresholds.data, clock: options.clock ?? systemClock });
    return { ok: true, value: new GenericManager(slice, options) };
  }
}
