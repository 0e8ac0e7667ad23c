/**
 * The chaos suite's images, built locally and cached by content hash (a tag that exists is not rebuilt):
 * - base: FROM scratch, the host's own Node binary + the shared libraries `ldd` lists + /etc/passwd (user 1000),
 *   standing in for node:24-slim where no registry can be reached;
 * - nats: FROM scratch, the host's nats-server + its libraries;
 * - agent / coordinator: the production Dockerfiles of infra/docker on top of base (BASE_IMAGE build arg).
 * With ALLOT_CHAOS_BASE_IMAGE set (e.g. node:24-slim on a machine with a registry), that image is used as the base.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GenericContainer, getContainerRuntimeClient, ImageName } from 'testcontainers';
import { listTree, stageApp } from '../../infra/docker/stage.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGES_DIR = join(REPO_ROOT, 'test/chaos/images');
const BOOTSTRAPPED_NATS_SERVER = join(REPO_ROOT, '.tools/nats/nats-server');
const NATS_SERVER =
  process.env['NATS_SERVER_BIN'] ??
  (statExists(BOOTSTRAPPED_NATS_SERVER)
    ? BOOTSTRAPPED_NATS_SERVER
    : statExists('/usr/sbin/nats-server')
      ? '/usr/sbin/nats-server'
      : 'nats-server');

export type ChaosImages = { base: string; nats: string; agent: string; coordinator: string };
export type BuildReport = { image: string; built: boolean; ms: number; sizeMiB: number };

function statExists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** The shared libraries a dynamically linked binary loads (absolute paths, as ldd prints them); [] for a static one. */
function sharedLibraries(binary: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  } catch {
    return []; // "not a dynamic executable"
  }
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1] !== undefined) libs.push(m[1]);
  }
  return libs;
}

/** Copies a file to rootfs at the same path, following symlinks (the file's content under the link's name). */
function addFile(rootfs: string, path: string, mode?: number): void {
  const at = join(rootfs, path);
  mkdirSync(dirname(at), { recursive: true });
  copyFileSync(path, at);
  if (mode !== undefined) chmodSync(at, mode);
}

/** sha256 over a tree: relative path, mode, symlink target or content of each file. */
function hashTree(dir: string, extra: string[] = []): string {
  const h = createHash('sha256');
  for (const e of extra) h.update(e).update('\0');
  for (const file of listTree(dir)) {
    const st = lstatSync(file);
    h.update(relative(dir, file)).update('\0').update(String(st.mode)).update('\0');
    if (st.isSymbolicLink()) h.update(readlinkSync(file));
    else h.update(readFileSync(file));
    h.update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

async function imageExists(tag: string): Promise<boolean> {
  const client = await getContainerRuntimeClient();
  return client.image.exists(ImageName.fromString(tag));
}

async function imageSizeMiB(tag: string): Promise<number> {
  const client = await getContainerRuntimeClient();
  const info = await client.image.inspect(ImageName.fromString(tag));
  return Math.round((info.Size / 1048576) * 10) / 10;
}

/** Builds `context` with `dockerfile` (copied into the context) as `tag` unless that tag exists. */
async function buildIfMissing(
  tag: string,
  context: string,
  dockerfile: string,
  buildArgs: Record<string, string> = {},
): Promise<BuildReport> {
  const started = Date.now();
  if (await imageExists(tag)) return { image: tag, built: false, ms: Date.now() - started, sizeMiB: await imageSizeMiB(tag) };
  copyFileSync(dockerfile, join(context, 'Dockerfile.allot'));
  const builder = GenericContainer.fromDockerfile(context, 'Dockerfile.allot').withBuildArgs(buildArgs);
  // BuildKit makes no intermediate container per instruction: on the vfs driver (a full rootfs copy per container)
  // that is 20 s instead of 80-150 s for an app image. ALLOT_CHAOS_BUILDKIT=0 for engines without it.
  if (process.env['ALLOT_CHAOS_BUILDKIT'] !== '0') builder.withBuildkit();
  await builder.build(tag, { deleteOnExit: false });
  return { image: tag, built: true, ms: Date.now() - started, sizeMiB: await imageSizeMiB(tag) };
}

/** The rootfs of a FROM scratch image holding `binaries` (at their own paths or `as`) and their libraries. */
function assembleRootfs(dir: string, binaries: { path: string; as: string }[], withUsers: boolean): string {
  const rootfs = join(dir, 'rootfs');
  rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  mkdirSync(rootfs, { recursive: true });
  for (const b of binaries) {
    const at = join(rootfs, b.as);
    mkdirSync(dirname(at), { recursive: true });
    copyFileSync(b.path, at);
    chmodSync(at, 0o755);
    for (const lib of sharedLibraries(b.path)) addFile(rootfs, lib);
  }
  if (withUsers) {
    mkdirSync(join(rootfs, 'etc'), { recursive: true });
    writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000:node:/home/node:/sbin/nologin\n');
    writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnode:x:1000:\n');
    writeFileSync(join(rootfs, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
    mkdirSync(join(rootfs, 'home/node'), { recursive: true });
    chmodSync(join(rootfs, 'home/node'), 0o777);
  }
  mkdirSync(join(rootfs, 'tmp'), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  return rootfs;
}

/**
 * Builds (or finds) the four images. Returns their tags and what each build cost. Tags are
 * `allot-chaos-<name>:<hash of the inputs>`; the agent and coordinator hashes include the base's tag.
 */
export async function ensureImages(): Promise<{ images: ChaosImages; reports: BuildReport[] }> {
  const work = join(tmpdir(), `allot-chaos-build-${process.pid}`);
  const reports: BuildReport[] = [];
  try {
    let base = process.env['ALLOT_CHAOS_BASE_IMAGE'];
    if (base === undefined || base === '') {
      const nodeBin = process.execPath;
      const dir = join(work, 'base');
      assembleRootfs(dir, [{ path: nodeBin, as: '/usr/local/bin/node' }], true);
      base = `allot-chaos-base:${hashTree(dir, [readFileSync(join(IMAGES_DIR, 'base.Dockerfile'), 'utf8')])}`;
      reports.push(await buildIfMissing(base, dir, join(IMAGES_DIR, 'base.Dockerfile')));
    }
    const natsDir = join(work, 'nats');
    assembleRootfs(natsDir, [{ path: resolveBinary(NATS_SERVER), as: '/usr/sbin/nats-server' }], false);
    const nats = `allot-chaos-nats:${hashTree(natsDir, [readFileSync(join(IMAGES_DIR, 'nats.Dockerfile'), 'utf8')])}`;
    reports.push(await buildIfMissing(nats, natsDir, join(IMAGES_DIR, 'nats.Dockerfile')));

    const apps: Record<'agent' | 'coordinator', string> = { agent: '', coordinator: '' };
    for (const app of ['agent', 'coordinator'] as const) {
      const dir = join(work, app);
      stageApp(REPO_ROOT, `apps/${app}`, dir);
      mkdirSync(join(dir, 'state'), { recursive: true });
      const dockerfile = join(REPO_ROOT, `infra/docker/${app}.Dockerfile`);
      const tag = `allot-chaos-${app}:${hashTree(dir, [base, readFileSync(dockerfile, 'utf8')])}`;
      reports.push(await buildIfMissing(tag, dir, dockerfile, { BASE_IMAGE: base }));
      apps[app] = tag;
    }
    const images = { base, nats, agent: apps.agent, coordinator: apps.coordinator };
    await removeStaleTags(Object.values(images));
    return { images, reports };
  } finally {
    rmSync(work, { recursive: true, force: true, maxRetries: 5 });
  }
}

/** Removes earlier builds (allot-chaos-* tags other than the current ones) so a changing tree does not fill the disk. */
async function removeStaleTags(current: string[]): Promise<void> {
  const client = await getContainerRuntimeClient();
  const docker = client.container.dockerode;
  const listed = await docker.listImages();
  const stale = listed.flatMap((img) => (img.RepoTags ?? []).filter((t) => t.startsWith('allot-chaos-') && !current.includes(t)));
  // Children before parents: app images first, then bases.
  stale.sort((a, b) => Number(a.startsWith('allot-chaos-base')) - Number(b.startsWith('allot-chaos-base')));
  for (const tag of stale)
    await docker
      .getImage(tag)
      .remove()
      .catch(() => undefined);
}

function resolveBinary(name: string): string {
  if (name.startsWith('/')) return name;
  return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
}
