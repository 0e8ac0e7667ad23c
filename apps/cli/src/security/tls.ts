import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { err, ok, type Result } from '@allot/core';

const run = promisify(execFile);

/**
 * TLS material made with the system's openssl (present wherever nats-server runs; no key code of our own): one CA per
 * deployment, a server certificate, one client certificate per identity. EC P-256 keys, written 0600.
 */
async function openssl(args: string[]): Promise<Result<void>> {
  try {
    await run('openssl', args, { timeout: 30_000 });
    return ok(undefined);
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr ?? '';
    return err('internal', `openssl ${args[0] ?? ''} failed: ${stderr.trim() || (e as Error).message}`);
  }
}

const CURVE = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Creates the CA when absent (ca.pem, ca.key); an existing one is kept, so certificates issued before stay valid. */
export async function ensureCa(dir: string, name: string): Promise<Result<{ cert: string; key: string }>> {
  const cert = join(dir, 'ca.pem');
  const key = join(dir, 'ca.key');
  if (existsSync(cert) && existsSync(key)) return ok({ cert, key });
  const made = await openssl([
    'req',
    '-x509',
    ...CURVE,
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '3650',
    '-subj',
    `/CN=allot CA ${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  if (!made.ok) return made;
  await chmod(key, 0o600);
  return ok({ cert, key });
}

export interface LeafRequest {
  readonly ca: { cert: string; key: string };
  readonly commonName: string;
  readonly usage: 'server' | 'client';
  /** Server certificates: the DNS names and IP addresses clients connect to. */
  readonly hosts?: readonly string[];
  /** Written as <base>.pem and <base>.key. */
  readonly base: string;
}

/** Issues a certificate signed by the CA unless <base>.pem exists already. */
export async function ensureLeaf(req: LeafRequest): Promise<Result<{ cert: string; key: string }>> {
  const cert = `${req.base}.pem`;
  const key = `${req.base}.key`;
  if (existsSync(cert) && existsSync(key)) return ok({ cert, key });
  const work = await mkdtemp(join(tmpdir(), 'allot-tls-'));
  try {
    const csr = join(work, 'req.csr');
    const ext = join(work, 'ext.cnf');
    const san = (req.hosts ?? []).map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`));
    // A server certificate is also a client one: nats-server dials its cluster routes with the same certificate.
    const lines = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${req.usage === 'server' ? 'serverAuth,clientAuth' : 'clientAuth'}`,
    ];
    if (san.length > 0) lines.push(`subjectAltName=${san.join(',')}`);
    await writeFile(ext, `${lines.join('\n')}\n`);
    const csrMade = await openssl(['req', ...CURVE, '-keyout', key, '-out', csr, '-subj', `/CN=${req.commonName}`]);
    if (!csrMade.ok) return csrMade;
    await chmod(key, 0o600);
    const signed = await openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      req.ca.cert,
      '-CAkey',
      req.ca.key,
      '-set_serial',
      `0x${randomBytes(16).toString('hex')}`,
      '-days',
      '825',
      '-sha256',
      '-extfile',
      ext,
      '-out',
      cert,
    ]);
    if (!signed.ok) return signed;
    return ok({ cert, key });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
