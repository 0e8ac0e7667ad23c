import {
  AllocationsResponseSchema,
  DeltaMessageSchema,
  HeartbeatMessageSchema,
  NodeResponseSchema,
  SnapshotMessageSchema,
  type DeltaMessage,
  type SnapshotMessage,
  type z,
} from '@allot/protocol/http';
import { parseRows } from './rows.ts';

/*
 * The page's side of the coordinator's HTTP contract. The schemas live in @allot/protocol/http (the coordinator
 * builds its payloads against them); every response and every server-sent event is validated here before
 * the page uses it, so a mismatch shows up as a clear error instead of a half-drawn page.
 */
export * from '@allot/protocol/http';

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function describe(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/** GET a JSON endpoint and validate it; an error response becomes an ApiError with the server's message. */
export async function getJson<S extends z.ZodType>(path: string, schema: S, signal?: AbortSignal): Promise<z.output<S>> {
  const res = await fetch(path, { headers: { accept: 'application/json' }, ...(signal === undefined ? {} : { signal }) });
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const message = (body as { error?: { message?: string } } | null)?.error?.message ?? res.statusText;
    throw new ApiError(res.status, message);
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new ApiError(0, `${path}: unexpected response: ${describe(parsed.error)}`);
  return parsed.data;
}

export const fetchNode = (nodeId: string, signal?: AbortSignal) =>
  getJson(`/api/nodes/${encodeURIComponent(nodeId)}`, NodeResponseSchema, signal);
export const fetchAllocations = (nodeId: string, signal?: AbortSignal) =>
  getJson(`/api/nodes/${encodeURIComponent(nodeId)}/allocations`, AllocationsResponseSchema, signal);

export interface StreamHandlers {
  snapshot(m: SnapshotMessage): void;
  delta(m: DeltaMessage): void;
  heartbeat(now: number): void;
  state(s: 'live' | 'reconnecting', detail?: string): void;
  invalid(event: string, message: string): void;
}

/** Follows GET /api/events/stream; EventSource reconnects by itself and the server starts each connection with a snapshot. */
export function connectStream(h: StreamHandlers): () => void {
  const source = new EventSource('/api/events/stream');
  const parse = <S extends z.ZodType>(event: string, schema: S, data: string): z.output<S> | undefined => {
    let raw: unknown;
    try {
      raw = JSON.parse(data);
    } catch {
      h.invalid(event, 'not JSON');
      return undefined;
    }
    // Node rows (10,000 in a snapshot) by rows.ts' fast check, the rest of the message by its schema.
    const nodes = typeof raw === 'object' && raw !== null ? (raw as { nodes?: unknown }).nodes : undefined;
    if (Array.isArray(nodes)) {
      const rows = parseRows(nodes);
      if (!rows.ok) {
        h.invalid(event, `nodes.${rows.index}: ${describe(rows.error)}`);
        return undefined;
      }
      const r = schema.safeParse({ ...(raw as object), nodes: [] });
      if (r.success) return { ...(r.data as object), nodes: rows.rows } as z.output<S>;
      h.invalid(event, describe(r.error));
      return undefined;
    }
    const r = schema.safeParse(raw);
    if (r.success) return r.data;
    h.invalid(event, describe(r.error));
    return undefined;
  };
  source.addEventListener('snapshot', (e) => {
    const m = parse('snapshot', SnapshotMessageSchema, e.data as string);
    if (m !== undefined) {
      h.state('live');
      h.snapshot(m);
    }
  });
  source.addEventListener('delta', (e) => {
    const m = parse('delta', DeltaMessageSchema, e.data as string);
    if (m !== undefined) h.delta(m);
  });
  source.addEventListener('hb', (e) => {
    const m = parse('hb', HeartbeatMessageSchema, e.data as string);
    if (m !== undefined) h.heartbeat(m.now);
  });
  source.addEventListener('error', () => h.state('reconnecting'));
  return () => source.close();
}
