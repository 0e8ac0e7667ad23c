import { NodeIdSchema, err, ok, worstHealth, type ConfigProblem, type Health, type ResourceType, type Result } from '@allot/core';
import { invalidConfig } from '../builder-result.ts';
import type { Clock } from '../clock.ts';
import { LocalManager } from './local-manager.ts';
import type { DurableState, Journal } from './records.ts';

export interface HostManagerOptions {
  readonly nodeId: string;
  readonly children?: readonly (readonly [ResourceType, LocalManager])[];
  readonly journal?: Journal;
  /** Where a restart reads durable state from (the agent's file ledger); the journal itself when it can replay. */
  readonly durable?: () => Promise<DurableState>;
  readonly clock?: Clock;
  readonly releasedRetentionMs?: number;
  readonly crashWindowMs?: number;
}

/**
 * The composite: one child manager per resource type, a VM's memory + CPU (+ extra types) all or nothing.
 *
 * Children hand their pools (slices) to the composite when added, and the composite drives every pool inside its own
 * synchronous turn: take memory, take CPU, and if CPU refuses, free the memory in the same turn. No other code runs
 * between those steps (JavaScript runs one turn at a time), so no observer, through the composite or a child, ever
 * sees the half state. This is stronger and cheaper than awaiting child actors (which would need the composite's
 * mailbox to wait across microtasks). The children keep their probes, thresholds and crash reports; their own
 * mutating methods refuse while adopted. It owns allocation records, request ids, reservations, cordon and `seq`.
 */
export class HostManager extends LocalManager {
  readonly #children = new Map<ResourceType, LocalManager>();

  private constructor(options: HostManagerOptions) {
    super({ name: 'composite', nodeId: options.nodeId, slices: [], journal: options.journal, durable: options.durable, clock: options.clock, releasedRetentionMs: options.releasedRetentionMs, crashWindowMs: options.crashWindowMs });
  }

  static create(options: HostManagerOptions): Result<HostManager> {
    const problems: ConfigProblem[] = [];
    const node = NodeIdSchema.safeParse(options.nodeId);
    if (!node.success) problems.push({ path: 'nodeId', message: node.error.issues[0]?.message ?? 'invalid' });
    const seen = new Set<ResourceType>();
    for (const [type, child] of options.children ?? []) {
      if (seen.has(type)) problems.push({ path: `managers.${type}`, message: 'one manager per resource type' });
      seen.add(type);
      if (!child.resourceTypes.includes(type)) problems.push({ path: `managers.${type}`, message: `the ${child.name} manager manages ${child.resourceTypes.join(', ')}, not ${type}` });
    }
    if (problems.length > 0) return invalidConfig(problems);
    const host = new HostManager(options);
    for (const [type, child] of options.children ?? []) {
      const added = host.#adopt(type, child);
      if (!added.ok) return added;
    }
    return ok(host);
  }

  static builder(): HostManagerBuilder {
    return new HostManagerBuilder();
  }

  #adopt(type: ResourceType, child: LocalManager): Result<void> {
    if (this.#children.has(type)) return err('conflict', `node ${this.nodeId} already has a ${type} manager`, { resourceType: type });
    if (!child.resourceTypes.includes(type)) return err('invalid_request', `resourceType: the ${child.name} manager manages ${child.resourceTypes.join(', ')}, not ${type}`, { field: 'resourceType' });
    const slice = child.adopt(`host ${this.nodeId}`);
    if (!slice.ok) return slice;
    this.#children.set(type, child);
    this.slices.push(slice.value);
    this.currentState.slices.set(type, slice.value);
    return ok(undefined);
  }

  /** Adds a child manager at runtime (inside a turn, so no request sees a half-added type). */
  addManager(type: ResourceType, manager: LocalManager): Promise<Result<void>> {
    return this.ask((core) => {
      if (core.state !== this.currentState) return err('internal', 'stale incarnation');
      return this.#adopt(type, manager);
    });
  }

  /** Removes a child manager; refused (conflict) while any live allocation holds that type. */
  removeManager(type: ResourceType): Promise<Result<LocalManager>> {
    return this.ask((core) => {
      const child = this.#children.get(type);
      const slice = core.state.slices.get(type);
      if (child === undefined || slice === undefined) return err('not_found', `node ${this.nodeId} has no ${type} manager`, { resourceType: type });
      let holding = 0;
      for (const a of core.state.live.values()) if (slice.amountOf(a.request) > 0) holding += 1;
      if (holding > 0) return err('conflict', `the ${type} manager holds ${holding} live allocations; release them first`, { resourceType: type, allocations: holding });
      core.state.slices.delete(type);
      this.slices.splice(this.slices.indexOf(slice), 1);
      this.#children.delete(type);
      child.disown();
      return ok(child);
    });
  }

  /** The child managing a type, if any. */
  manager(type: ResourceType): LocalManager | undefined {
    return this.#children.get(type);
  }

  protected override healthNow(): Health {
    return worstHealth([super.healthNow(), ...[...this.#children.values()].map((c) => c.supervisorHealth())]);
  }
}

/** `HostManager.builder().nodeId('n1').memory(m).cpu(c).journal(j).build()`: every problem at build. */
export class HostManagerBuilder {
  #nodeId = '';
  #children: [ResourceType, LocalManager][] = [];
  #options: Omit<HostManagerOptions, 'nodeId' | 'children'> = {};

  nodeId(nodeId: string): this {
    this.#nodeId = nodeId;
    return this;
  }
  memory(manager: LocalManager): this {
    return this.manager('memory', manager);
  }
  cpu(manager: LocalManager): this {
    return this.manager('cpu', manager);
  }
  manager(type: ResourceType, manager: LocalManager): this {
    this.#children.push([type, manager]);
    return this;
  }
  journal(journal: Journal): this {
    this.#options = { ...this.#options, journal };
    return this;
  }
  durable(durable: () => Promise<DurableState>): this {
    this.#options = { ...this.#options, durable };
    return this;
  }
  clock(clock: Clock): this {
    this.#options = { ...this.#options, clock };
    return this;
  }
  releasedRetention(ms: number): this {
    this.#options = { ...this.#options, releasedRetentionMs: ms };
    return this;
  }
  build(): Result<HostManager> {
    return HostManager.create({ ...this.#options, nodeId: this.#nodeId, children: this.#children });
  }
}
