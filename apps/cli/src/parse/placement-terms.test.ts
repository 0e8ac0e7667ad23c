import { describe, expect, it } from 'vitest';
import { buildPlaceRequest } from './place-request.ts';
import { parseAffinity, parseTaint, parseToleration } from './placement-terms.ts';

describe('placement terms on the command line', () => {
  it('tolerations: key=value is Equal, a bare key is Exists, an effect is kept', () => {
    expect(parseToleration('dedicated=ml')).toEqual({ ok: true, value: { key: 'dedicated', operator: 'Equal', value: 'ml' } });
    expect(parseToleration('maintenance')).toEqual({ ok: true, value: { key: 'maintenance', operator: 'Exists', value: '' } });
    expect(parseToleration('gpu=a:NoSchedule')).toMatchObject({ ok: true, value: { key: 'gpu', value: 'a', effect: 'NoSchedule' } });
    expect(parseToleration('gpu=a:NoExecute')).toEqual({ ok: false, message: '--toleration: effect "NoExecute" is not NoSchedule' });
  });

  it('taints carry the reason; affinity terms their label and weight', () => {
    expect(parseTaint('dedicated=ml', 'reserved')).toEqual({
      ok: true,
      value: { key: 'dedicated', value: 'ml', effect: 'NoSchedule', reason: 'reserved' },
    });
    expect(parseAffinity('db@rack', 'required')).toEqual({
      ok: true,
      value: { group: 'db', mode: 'required', weight: 100, topologyKey: 'rack' },
    });
    expect(parseAffinity('cache=30', 'preferred')).toEqual({ ok: true, value: { group: 'cache', mode: 'preferred', weight: 30 } });
    expect(parseAffinity('db=30', 'required').ok).toBe(false);
  });

  it('allot place flags become typed placement options', () => {
    const r = buildPlaceRequest(
      {
        tenant: 't',
        memory: '1G',
        vcpus: '1',
        toleration: ['dedicated=ml'],
        'max-skew': '1',
        'spread-label': 'rack',
        affinity: ['db@zone'],
        'prefer-affinity': ['cache'],
      },
      () => 'id-1',
    );
    expect(r.ok && r.value.placement).toMatchObject({
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'ml' }],
      topologySpread: { topologyKey: 'rack', maxSkew: 1 },
      affinity: [
        { group: 'db', topologyKey: 'zone', mode: 'required' },
        { group: 'cache', mode: 'preferred', weight: 100 },
      ],
    });
    expect(buildPlaceRequest({ tenant: 't', vcpus: '1', 'spread-label': 'rack' })).toEqual({
      ok: false,
      message: '--spread-label goes with --max-skew <n>',
    });
    expect(buildPlaceRequest({ tenant: 't', vcpus: '1', 'max-skew': '0' }).ok).toBe(false);
  });
});
