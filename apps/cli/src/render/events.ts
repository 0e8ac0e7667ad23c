import type { AllotEvent } from '@allot/protocol';
import { formatMiB } from '../format/units.ts';

/** One event, one line: time, node, kind, then whatever the event carries. */
export function renderEvent(e: AllotEvent): string {
  const parts = [new Date(e.at).toISOString(), e.nodeId.padEnd(12), e.kind.padEnd(12)];
  if (e.tenantId !== undefined) parts.push(`tenant=${e.tenantId}`);
  if (e.requestId !== undefined) parts.push(`request=${e.requestId}`);
  if (e.allocationId !== undefined) parts.push(`allocation=${e.allocationId}`);
  if (e.resources !== undefined) parts.push(`memory=${formatMiB(e.resources.memoryMiB)} vcpus=${e.resources.vcpus}`);
  if (e.cpuset !== undefined && e.cpuset.length > 0) parts.push(`cpuset=${e.cpuset.join(',')}`);
  if (e.error !== undefined) parts.push(`error=${e.error.code}: ${e.error.message}`);
  if (e.reason !== undefined) parts.push(`reason=${e.reason}`);
  return escapeControl(parts.join(' ').trimEnd());
}

/** C0 and C1 controls, DEL, and the bidi overrides and isolates that reorder what a terminal shows. */
// eslint-disable-next-line no-control-regex -- matching control characters is this expression's job
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Event text comes from any agent or peer on NATS: written raw, an escape sequence could retitle the window, move the
 * cursor or hide what follows. Shown as \xHH (\r, \n, \t by name) or \uHHHH instead.
 */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}
