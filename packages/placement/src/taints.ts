import type { NodeView, Taint, Toleration } from '@allot/core';
import type { Filter } from './types.ts';

/** After Kubernetes: same key, the same value (Equal) or any (Exists), and the same effect unless the toleration names none. */
export function tolerates(toleration: Toleration, taint: Taint): boolean {
  if (toleration.key !== taint.key) return false;
  if (toleration.effect !== undefined && toleration.effect !== taint.effect) return false;
  return toleration.operator === 'Exists' || toleration.value === taint.value;
}

/** kube-scheduler's wording, with the operator's reason when the taint has one. */
export function taintReason(taint: Taint): string {
  const base = `node(s) had untolerated taint {${taint.key}: ${taint.value}}`;
  return taint.reason === undefined || taint.reason === '' ? base : `${base} (${taint.reason})`;
}

/** The first of the node's taints that no toleration of the request tolerates, or undefined. */
export function untoleratedTaint(node: NodeView, tolerations: readonly Toleration[]): Taint | undefined {
  return node.taints?.find((taint) => !tolerations.some((t) => tolerates(t, taint)));
}

/** NoSchedule: a node with a taint the request does not tolerate takes nothing of it. */
export const taintToleration: Filter = (ctx, node) => {
  const taint = untoleratedTaint(node, ctx.options.tolerations ?? []);
  return taint === undefined ? null : { reason: taintReason(taint) };
};
