import { AllotFailure, toAllotError } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { Actor } from './actor.ts';
import { deferred, deferredUntil, type Behavior } from './behavior.ts';
import { Supervisor } from './supervisor.ts';

type Msg =
  | { kind: 'add'; n: number }
  | { kind: 'until'; n: number; done: Promise<void>; notes: string[] }
  | { kind: 'get' }
  | { kind: 'boom' }
  | { kind: 'slow'; gate: Promise<void> }
  | { kind: 'durable'; n: number; done: Promise<void> };

class Counter implements Behavior<Msg, number> {
  total: number;
  seen: number[] = [];
  constructor(start = 0) {
    this.total = start;
  }
  receive(msg: Msg) {
    switch (msg.kind) {
      case 'add':
        this.total += msg.n;
        this.seen.push(msg.n);
        return this.total;
      case 'get':
        return this.total;
      case 'boom':
        throw new Error('bug');
      case 'slow':
        return msg.gate.then(() => this.total);
      case 'until': {
        this.total += msg.n;
        return deferredUntil(msg.done, this.total, () => msg.notes.push(`durable at ${this.total}`));
      }
      case 'durable': {
        this.total += msg.n;
        const after = this.total;
        return deferred(msg.done.then(() => after));
      }
    }
  }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return toAllotError(e).code;
  }
}

describe('Actor', () => {
  it('handles messages one at a time in the order they were sent', async () => {
    const counter = new Counter();
    const actor = new Actor(counter);
    actor.tell({ kind: 'add', n: 1 });
    const replies = await Promise.all([actor.ask({ kind: 'add', n: 2 }), actor.ask({ kind: 'add', n: 3 })]);
    expect(replies).toEqual([3, 6]);
    expect(counter.seen).toEqual([1, 2, 3]);
  });

  it('waits for an async handler before handling the next message', async () => {
    const counter = new Counter();
    const actor = new Actor(counter);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const slow = actor.ask({ kind: 'slow', gate });
    const add = actor.ask({ kind: 'add', n: 5 });
    await Promise.resolve();
    expect(counter.seen).toEqual([]);
    open();
    expect(await slow).toBe(0);
    expect(await add).toBe(5);
  });

  it('moves on to the next message while a deferred reply waits for durability, and replies only when durable', async () => {
    const counter = new Counter();
    const actor = new Actor(counter);
    let makeDurable!: () => void;
    const done = new Promise<void>((r) => (makeDurable = r));
    let durableReplied = false;
    const durable = actor.ask({ kind: 'durable', n: 10, done }).then((v) => ((durableReplied = true), v));
    expect(await actor.ask({ kind: 'add', n: 1 })).toBe(11);
    expect(durableReplied).toBe(false);
    makeDurable();
    expect(await durable).toBe(10);
  });

  it('rejects an ask that takes too long with timeout, and may still process the message afterwards', async () => {
    const counter = new Counter();
    const actor = new Actor(counter);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    void actor.ask({ kind: 'slow', gate }).catch(() => undefined);
    expect(await codeOf(actor.ask({ kind: 'add', n: 7 }, { timeoutMs: 5 }))).toBe('timeout');
    open();
    expect(await actor.ask({ kind: 'get' })).toBe(7);
  });

  it('drains on stop, then refuses with unavailable', async () => {
    const actor = new Actor(new Counter());
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const slow = actor.ask({ kind: 'slow', gate });
    const queued = actor.ask({ kind: 'add', n: 2 });
    const stopped = actor.stop();
    expect(await codeOf(actor.ask({ kind: 'get' }))).toBe('unavailable');
    open();
    await stopped;
    expect(await slow).toBe(0);
    expect(await queued).toBe(2);
    expect(actor.isRunning).toBe(false);
  });

  it('passes a typed refusal thrown by a handler to the caller without crashing', async () => {
    const actor = new Actor<string, number>({
      receive: (m) => {
        if (m === 'no') throw new AllotFailure({ code: 'conflict', message: 'no' });
        return 1;
      },
    });
    expect(await codeOf(actor.ask('no'))).toBe('conflict');
    expect(await actor.ask('yes')).toBe(1);
  });
});

describe('Supervisor', () => {
  it('answers the crashing message with internal, restarts from durable state and handles the queued messages', async () => {
    const durableTotal = 100;
    const supervisor = new Supervisor<Msg, number>({ recover: () => new Counter(durableTotal) });
    const actor = new Actor<Msg, number>(new Counter(5), { supervisor });
    const crashed = actor.ask({ kind: 'boom' });
    const after = actor.ask({ kind: 'add', n: 1 });
    expect(await codeOf(crashed)).toBe('internal');
    expect(await after).toBe(101);
    expect(supervisor.restarts).toBe(1);
    const health = supervisor.health();
    expect(health.status).toBe('degraded');
    expect(health.status === 'degraded' && health.reasons[0]).toContain('bug');
  });

  it('tells its owner once when it stops because it cannot recover, and never for a stop asked for', async () => {
    const failures: string[] = [];
    const supervisor = new Supervisor<Msg, number>({
      recover: () => {
        throw new Error('the journal cannot be read');
      },
    });
    const actor = new Actor<Msg, number>(new Counter(), { supervisor, onFailed: (error) => failures.push(error.message) });
    expect(await codeOf(actor.ask({ kind: 'boom' }))).toBe('internal');
    expect(await codeOf(actor.ask({ kind: 'get' }))).toBe('unavailable');
    expect(actor.isRunning).toBe(false);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain('the journal cannot be read');

    const stoppedOnPurpose = new Actor<Msg, number>(new Counter(), { onFailed: (error) => failures.push(error.message) });
    await stoppedOnPurpose.stop();
    expect(failures).toHaveLength(1);
  });

  it('reports healthy again once the crash is older than the window', async () => {
    let now = 1_000;
    const supervisor = new Supervisor<Msg, number>({ recover: () => new Counter(), degradedWindowMs: 60_000, now: () => now });
    const actor = new Actor<Msg, number>(new Counter(), { supervisor });
    await codeOf(actor.ask({ kind: 'boom' }));
    await actor.ask({ kind: 'get' });
    expect(supervisor.health().status).toBe('degraded');
    now += 60_001;
    expect(supervisor.health().status).toBe('healthy');
  });

  it('delivers a reply known at once (deferredUntil) only when durable, after its notification, and fails it like a deferred one', async () => {
    const counter = new Counter();
    const actor = new Actor(counter, { supervisor: new Supervisor<Msg, number>({ recover: () => new Counter(7) }) });
    let makeDurable!: () => void;
    const done = new Promise<void>((r) => (makeDurable = r));
    const notes: string[] = [];
    let replied = false;
    const until = actor.ask({ kind: 'until', n: 5, done, notes }).then((v) => ((replied = true), notes.push(`replied ${v}`), v));
    expect(await actor.ask({ kind: 'add', n: 1 })).toBe(6);
    expect(replied).toBe(false);
    makeDurable();
    expect(await until).toBe(5);
    expect(notes).toEqual(['durable at 6', 'replied 5']);
    const failing = actor.ask({ kind: 'until', n: 1, done: Promise.reject(new Error('disk full')), notes });
    expect(await codeOf(failing)).toBe('internal');
    expect(await actor.ask({ kind: 'get' })).toBe(7);
    expect(notes).toHaveLength(2);
  });

  it('restarts the actor when a deferred reply fails (the journal failed), and the caller gets internal', async () => {
    const supervisor = new Supervisor<Msg, number>({ recover: () => new Counter(42) });
    const actor = new Actor<Msg, number>(new Counter(), { supervisor });
    const failing = actor.ask({ kind: 'durable', n: 3, done: Promise.reject(new Error('disk full')) });
    expect(await codeOf(failing)).toBe('internal');
    expect(await actor.ask({ kind: 'get' })).toBe(42);
    expect(supervisor.restarts).toBe(1);
  });

  it('stops an unsupervised actor that crashed', async () => {
    const actor = new Actor<Msg, number>(new Counter());
    expect(await codeOf(actor.ask({ kind: 'boom' }))).toBe('internal');
    expect(await codeOf(actor.ask({ kind: 'get' }))).toBe('unavailable');
  });
});
