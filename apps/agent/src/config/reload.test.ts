import { describe, expect, it } from 'vitest';
import { AgentConfigSchema, type AgentConfigInput } from './schema.ts';
import { describeReload, planAgentReload } from './reload.ts';

const base: AgentConfigInput = { nodeId: 'hv01', stateDir: '/var/lib/allot', labels: { zone: 'a' }, logLevel: 'info' };
const config = (patch: Partial<AgentConfigInput> = {}) => AgentConfigSchema.parse({ ...base, ...patch });

describe('planning a configuration reload', () => {
  it('finds nothing to do when nothing changed, whatever the order of the labels', () => {
    const plan = planAgentReload(config({ labels: { zone: 'a', rack: 'r1' } }), config({ labels: { rack: 'r1', zone: 'a' } }));
    expect(plan.applied).toEqual([]);
    expect(plan.ignored).toEqual([]);
    expect(describeReload(plan)).toBe('configuration reloaded: nothing to apply');
  });

  it('applies the log level, labels and health thresholds, naming each changed key', () => {
    const next = config({ logLevel: 'debug', labels: { zone: 'b', rack: 'r7' }, health: { usedDegradedPermille: 950 } });
    const plan = planAgentReload(config(), next);
    expect(plan.applied).toEqual(['health.usedDegradedPermille', 'labels.rack', 'labels.zone', 'logLevel']);
    expect(plan.ignored).toEqual([]);
    expect(plan.config.logLevel).toBe('debug');
    expect(plan.config.labels).toEqual({ zone: 'b', rack: 'r7' });
    expect(plan.config.health.usedDegradedPermille).toBe(950);
  });

  it('keeps the running value of every key that needs a restart, and says why (limits: allot limits set)', () => {
    const current = config();
    const next = config({
      stateDir: '/srv/allot',
      nodeId: 'hv02',
      nats: { servers: ['nats://10.0.0.1:4222'] },
      memory: { overcommitRatio: 1.5 },
      http: { port: 9464 },
      logLevel: 'warn',
    });
    const plan = planAgentReload(current, next);
    expect(plan.applied).toEqual(['logLevel']);
    expect(plan.ignored).toEqual(
      expect.arrayContaining([
        { key: 'stateDir', reason: 'needs a restart' },
        { key: 'nodeId', reason: 'needs a restart' },
        { key: 'nats.servers', reason: 'needs a restart' },
        { key: 'http', reason: 'needs a restart' },
        { key: 'memory.overcommitRatio', reason: 'limits change with `allot limits set` (or a restart)' },
      ]),
    );
    expect(plan.ignored).toHaveLength(5);
    expect(plan.config).toEqual({ ...current, logLevel: 'warn' });
    expect(describeReload(plan)).toContain('configuration reloaded: applied logLevel; ignored ');
    expect(describeReload(plan)).toContain('stateDir (needs a restart)');
  });

  it('reports an ignored key again at the next reload, since it still differs from what runs', () => {
    const first = planAgentReload(config(), config({ stateDir: '/srv/allot' }));
    const second = planAgentReload(first.config, config({ stateDir: '/srv/allot', labels: { zone: 'c' } }));
    expect(second.applied).toEqual(['labels.zone']);
    expect(second.ignored.map((i) => i.key)).toEqual(['stateDir']);
  });
});
