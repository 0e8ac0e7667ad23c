/**
 * A hostname in the NodeIdSchema alphabet (letters, digits, `_`, `-`; at most 64): every other character becomes
 * `-`, so `hv01.dc1.example.com` is `hv01-dc1-example-com` and stays unique across domains.
 */
export function nodeIdFromHostname(hostname: string): string {
  const sanitised = hostname
    .trim()
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
    .replace(/-+$/, '');
  return sanitised === '' ? 'agent' : sanitised;
}
