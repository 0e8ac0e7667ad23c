import { coordinatorSubject, KV_NODES, KV_PLACEMENTS } from '@allot/protocol';
import { describe, expect, it } from 'vitest';
import { permissionsOf, type Role } from './roles.ts';

/** NATS subject matching: `*` one token, `>` the rest. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

const KEY = 'UAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
function mayPublish(role: Role, subject: string): boolean {
  const p = permissionsOf({ role, name: 'x1', publicKey: KEY });
  return p.publish.some((a) => matches(a, subject)) && !(p.publishDeny ?? []).some((d) => matches(d, subject));
}

describe('roles: node decommission', () => {
  it('lets operators, not readers or schedulers, decommission and recommission a node; coordinators serve it and read node leases', () => {
    for (const verb of ['node.decommission', 'node.recommission'] as const) {
      const subject = coordinatorSubject(verb);
      expect(subject).toBe(`allot.op.${verb}`);
      expect(mayPublish('operator', subject)).toBe(true);
      expect(mayPublish('reader', subject)).toBe(false);
      expect(mayPublish('scheduler', subject)).toBe(false);
      const coordinator = permissionsOf({ role: 'coordinator', name: 'c1', publicKey: KEY });
      expect(coordinator.subscribe.some((a) => matches(a, subject))).toBe(true);
    }
    // The decommission records live in allot_placements; a silent node's lease is read from allot_nodes.
    expect(mayPublish('coordinator', `$KV.${KV_PLACEMENTS}.node.n1`)).toBe(true);
    expect(mayPublish('coordinator', `$JS.API.DIRECT.GET.KV_${KV_NODES}.$KV.${KV_NODES}.n1`)).toBe(true);
    expect(mayPublish('coordinator', `$JS.API.STREAM.INFO.KV_${KV_NODES}`)).toBe(true);
  });
});
