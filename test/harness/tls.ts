import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './temp.ts';

const run = promisify(execFile);

/** PEM files of a throw-away certificate authority, a server certificate for 127.0.0.1/localhost, and a client's. */
export type TestPki = {
  readonly dir: string;
  readonly caFile: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** Another CA that signed nothing here: trusting it instead must fail verification. */
  readonly otherCaFile: string;
};

async function openssl(dir: string, ...args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

async function selfSignedCa(dir: string, name: string): Promise<void> {
  await openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}-key.pem`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  );
}

async function signed(dir: string, name: string, ext: string): Promise<void> {
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(
    dir,
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}-key.pem`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${name}`,
  );
  await openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca-key.pem',
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  );
}

/** Generates a CA and certificates with the OS's openssl (P-256 keys, valid two days) in a temp dir cleanupAll() removes. */
export async function generateTestPki(): Promise<TestPki> {
  const dir = await tempDir('pki');
  await selfSignedCa(dir, 'ca');
  await selfSignedCa(dir, 'other-ca');
  await signed(dir, 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await signed(dir, 'client', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server-key.pem'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client-key.pem'),
    otherCaFile: join(dir, 'other-ca.pem'),
  };
}

/** nats-server's `tls { }` block: TLS required on the client port, client certificates verified against the CA. */
export function natsServerTlsConfig(pki: TestPki): string {
  return `tls {\n  cert_file: ${JSON.stringify(pki.serverCert)}\n  key_file: ${JSON.stringify(pki.serverKey)}\n  ca_file: ${JSON.stringify(pki.caFile)}\n  verify: true\n  timeout: 5\n}`;
}

/** Two nkey users for tests (fixed, test-only seeds): the first is authorised by natsServerNkeyConfig, the second is not. */
export const TEST_NKEY = {
  seed: 'SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4',
  publicKey: 'UAH42UG6PV552P5SWLWTBP3H3S5BHAVCO2IEKEXUANJXR75J63RQ5WM6',
  wrongSeed: 'SUACB4DSCCDJHIF36H6I2L7AZ336ZSPS2GV3YNAPYUM3HTBDONP73ACIGQ',
} as const;

/** An authorization block admitting only TEST_NKEY's public key, with every permission. */
export function natsServerNkeyConfig(): string {
  return `authorization {\n  users: [ { nkey: ${TEST_NKEY.publicKey} } ]\n}`;
}
