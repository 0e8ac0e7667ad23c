import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';

/*
 * The bearer token of a metrics listener. Like the kubelet (metrics behind authentication) and unlike node_exporter
 * (open wherever it is bound), a listener that leaves loopback should ask scrapers for a token; Prometheus sends one
 * from a file (`authorization: { credentials_file: ... }`). The token comes from a file named in the config, never
 * from a command line or an environment value, and is never logged.
 */

/** RFC 6750's token characters, long enough to be unguessable (`openssl rand -hex 32` fits). */
export const BEARER_TOKEN_PATTERN = /^[A-Za-z0-9._~+/=-]{16,1024}$/;

/** The token in `path` (surrounding whitespace trimmed), or an Error whose message names the file, never its content. */
export async function readBearerTokenFile(path: string): Promise<string | Error> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    return new Error(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const token = text.trim();
  if (!BEARER_TOKEN_PATTERN.test(token))
    return new Error(`${path} holds no usable token: 16 to 1024 of A-Z a-z 0-9 . _ ~ + / = - on one line`);
  return token;
}

/** Constant-time comparison: both sides hashed first so neither their length nor a common prefix shows in the time. */
export function tokenMatches(given: string, expected: string): boolean {
  return timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(expected).digest());
}

/** Whether an address to bind is loopback only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/**
 * The host of a listener's raw config (`{ host, port, tokenFile }`, before defaults) when it binds beyond loopback with
 * no token: production refuses that. Absent host means the loopback default.
 */
export function exposedWithoutToken(listener: unknown): string | undefined {
  if (listener === null || typeof listener !== 'object') return undefined;
  const { host, tokenFile } = listener as { host?: unknown; tokenFile?: unknown };
  return typeof host === 'string' && !isLoopbackHost(host) && tokenFile === undefined ? host : undefined;
}
