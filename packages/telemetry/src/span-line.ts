import type { Attributes } from '@opentelemetry/api';

/** One finished span as written to the file, one JSON object per line. */
export type SpanLine = {
  service: string;
  traceId: string;
  spanId: string;
  /** Absent for a root span. */
  parentSpanId?: string;
  name: string;
  kind: 'internal' | 'server' | 'client' | 'producer' | 'consumer';
  /** Epoch, in microseconds. */
  startUs: number;
  durationUs: number;
  status: 'unset' | 'ok' | 'error';
  statusMessage?: string;
  attributes: Attributes;
  events?: { name: string; atUs: number; attributes?: Attributes }[];
};
