import { ERROR_CODES } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { exitCodeFor } from './exit-codes.ts';
import { figureLines, reportError } from './report.ts';
import { recordingContext } from './testing/recording-context.ts';

describe('exit codes', () => {
  it('are 3 when nobody answered and 1 for every refusal', () => {
    const codes = Object.fromEntries(ERROR_CODES.map((c) => [c, exitCodeFor(c)]));
    expect(codes).toEqual({
      invalid_request: 1,
      insufficient_capacity: 1,
      quota_exceeded: 1,
      rate_limited: 1,
      not_found: 1,
      conflict: 1,
      unavailable: 3,
      timeout: 3,
      internal: 1,
    });
  });

  it('come with the error code, its message and every figure printed', () => {
    const ctx = recordingContext();
    const code = reportError(
      ctx,
      'place',
      {
        code: 'insufficient_capacity',
        message: 'no node has 4096 MiB free',
        details: { requested: 4096, nodes: { 'sim-small': { free: 1024 } } },
      },
      false,
    );
    expect(code).toBe(1);
    expect(ctx.stderr).toEqual([
      'allot place: insufficient_capacity: no node has 4096 MiB free',
      '  requested: 4096',
      '  nodes.sim-small.free: 1024',
    ]);
    expect(figureLines({ retryAfterMs: 1500, limit: 'maxVms' })).toEqual(['retryAfterMs: 1500', 'limit: maxVms']);
  });
});
