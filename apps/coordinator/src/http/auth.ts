import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/*
 * Who may use the dashboard. Two checks on every request:
 * - the Host header names this server (DNS rebinding: a page on evil.example whose name re-resolves to 127.0.0.1 sends
 *   `Host: evil.example`; without the check, the browser would let that page read the API of a loopback dashboard);
 * - with a token configured, the request carries it. The page gets it once in its URL (`/?token=...`); the server
 *   answers with a cookie and a redirect to the same URL without the token. A cookie rather than a header because the
 *   page's live feed is an EventSource, which cannot send headers; HttpOnly keeps it from scripts, SameSite=Strict
 *   from other sites' requests, and the redirect keeps it out of the address bar, history and Referer. Scripts may send
 *   `Authorization: Bearer <token>` instead.
 * Without a token the dashboard must listen on loopback only (the configuration is refused otherwise).
 */

export const TOKEN_COOKIE = 'allot_dashboard_token';
/** Tokens go into a cookie unquoted: a restricted alphabet, long enough to be unguessable. */
export const TOKEN_PATTERN = /^[A-Za-z0-9._~-]{16,256}$/;

/** Constant-time comparison: both sides hashed first so neither their length nor a common prefix shows in the time. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** The host name of a Host header, lowercased, without its port (`[::1]:80` -> `::1`); undefined when malformed. */
export function hostName(header: string | undefined): string | undefined {
  if (header === undefined || header === '' || header.length > 255) return undefined;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end === -1 ? undefined : h.slice(1, end);
  }
  const colon = h.indexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

/** Host names accepted by default: the loopback names and the address the server is bound to. */
export function defaultAllowedHosts(bindHost: string): string[] {
  const hosts = ['localhost', '127.0.0.1', '::1'];
  const bound = bindHost.toLowerCase().replace(/^\[|\]$/g, '');
  if (bound !== '0.0.0.0' && bound !== '::' && !hosts.includes(bound)) hosts.push(bound);
  return hosts;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export type Access =
  | { readonly kind: 'allowed' }
  /** The token came in the URL: set the cookie and redirect to `location` (the URL without it). */
  | { readonly kind: 'redirect'; readonly location: string; readonly cookie: string }
  | { readonly kind: 'refused'; readonly status: 401 | 421; readonly message: string };

export interface AccessPolicy {
  readonly token: string | undefined;
  readonly allowedHosts: ReadonlySet<string>;
}

/** Decides one request; `open` paths (healthz) skip the token but not the Host check. */
export function access(req: IncomingMessage, url: URL, policy: AccessPolicy, open = false): Access {
  const host = hostName(req.headers.host);
  if (host === undefined || !policy.allowedHosts.has(host))
    return { kind: 'refused', status: 421, message: `Host ${JSON.stringify(req.headers.host ?? '')} is not a name of this server` };
  if (policy.token === undefined || open) return { kind: 'allowed' };
  const auth = req.headers.authorization;
  if (auth !== undefined && auth.startsWith('Bearer ') && tokenMatches(auth.slice(7), policy.token)) return { kind: 'allowed' };
  const cookie = cookieValue(req.headers.cookie, TOKEN_COOKIE);
  if (cookie !== undefined && tokenMatches(cookie, policy.token)) return { kind: 'allowed' };
  const inUrl = url.searchParams.get('token');
  if (inUrl !== null && tokenMatches(inUrl, policy.token)) {
    url.searchParams.delete('token');
    const location = url.pathname + (url.searchParams.size > 0 ? `?${url.searchParams.toString()}` : '');
    return { kind: 'redirect', location, cookie: `${TOKEN_COOKIE}=${policy.token}; HttpOnly; SameSite=Strict; Path=/` };
  }
  return {
    kind: 'refused',
    status: 401,
    message: 'this dashboard needs its token: open it once as /?token=<token>, or send Authorization: Bearer <token>',
  };
}
