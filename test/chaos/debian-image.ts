/**
 * A fresh Debian for the package test (test/chaos/deb-install.test.ts): bookworm assembled by debootstrap from Debian's
 * own packages (--variant=minbase, plus adduser, which the .debs depend on), imported as an image with `docker import`.
 * No registry is needed, only a Debian mirror. The tag is a hash of the recipe (suite, variant, packages, mirror):
 * a tag that exists is not rebuilt, so the mirror is asked once per recipe, not once per run. A Debian point release
 * does not change the tag; change the recipe (or remove the image) to pick it up.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type DebianImage = { tag: string; built: boolean; ms: number };

const RECIPE = {
  suite: 'bookworm',
  variant: 'minbase',
  include: ['adduser'],
  mirror: process.env['ALLOT_DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian',
};

const SBIN_PATH = `/usr/local/sbin:/usr/sbin:/sbin:${process.env['PATH'] ?? '/usr/bin:/bin'}`;

function docker(args: string[], timeoutMs: number, input?: string): string {
  return execFileSync('docker', args, {
    encoding: 'utf8',
    timeout: timeoutMs,
    input,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
}

function imageExists(tag: string): boolean {
  try {
    docker(['image', 'inspect', '--format', '{{.Id}}', tag], 30_000);
    return true;
  } catch {
    return false;
  }
}

/** The image tag, built first when missing (debootstrap needs root and a reachable mirror; bounded by timeoutMs). */
export function ensureDebianImage(timeoutMs = 900_000): DebianImage {
  const started = Date.now();
  const hash = createHash('sha256').update(JSON.stringify(RECIPE)).digest('hex').slice(0, 16);
  // Not allot-chaos-*: the chaos suite removes those tags when they are not its current images (images.ts).
  const tag = `allot-debian-${RECIPE.suite}:${hash}`;
  if (imageExists(tag)) return { tag, built: false, ms: Date.now() - started };
  const work = mkdtempSync(join(tmpdir(), 'allot-debootstrap-'));
  const rootfs = join(work, 'rootfs');
  try {
    execFileSync(
      'debootstrap',
      [`--variant=${RECIPE.variant}`, `--include=${RECIPE.include.join(',')}`, RECIPE.suite, rootfs, RECIPE.mirror],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: timeoutMs,
        env: { ...process.env, PATH: SBIN_PATH },
      },
    );
    // The downloaded .debs are not part of a fresh system.
    execFileSync('find', [join(rootfs, 'var/cache/apt/archives'), '-name', '*.deb', '-delete']);
    execFileSync('sh', ['-c', `tar -C "$1" -c . | docker import --change 'CMD ["/bin/bash"]' - "$2"`, 'sh', rootfs, tag], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: Math.max(60_000, timeoutMs - (Date.now() - started)),
    });
    return { tag, built: true, ms: Date.now() - started };
  } finally {
    rmSync(work, { recursive: true, force: true, maxRetries: 5 });
  }
}
