/**
 * The chaos suite's images, built locally and cached by content hash (a tag that exists is not rebuilt):
 * - runtime: FROM scratch, the shared libraries the release executables load (`ldd`: glibc, libstdc++, libgcc_s) and
 *   /etc/passwd with user 1000: the base the app images are built on, referenced by its digest (below);
 * - nats: FROM scratch, the host's nats-server + its libraries;
 * - agent / coordinator: the production Dockerfiles of infra/docker, whose only file is the release's single
 *   executable (scripts/release/artifacts.ts, what `pnpm release` makes): the same artifact the .deb installs.
 *
 * The base by digest, without a registry: this engine (Docker 20.10) resolves `FROM sha256:<image id>` from its own
 * store with the classic builder only (BuildKit, and `FROM name@sha256:...` in either builder, ask a registry), so the
 * app images are built with the classic builder and BASE_IMAGE=sha256:<the runtime's image id>. The image id is the
 * digest of the image's config, which names its layers' digests: the pin fixes the base's content as a repo digest
 * does. The runtime itself (FROM scratch) needs no pin and is built with BuildKit.
 *
 * The rolling upgrade (scenario 8) also needs the previous release, an older commit built by its own release script
 * (`previousAppImages`, previous-release.ts), and the next one: `nextAppImages` builds this tree once more with the
 * release and protocol version moved one ahead (artifacts.ts, VersionOverride).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  createReadStream,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALLOT_VERSION } from '@allot/core';
import { PROTOCOL_VERSION } from '@allot/protocol';
import { GenericContainer, getContainerRuntimeClient, ImageName } from 'testcontainers';
import {
  APPS,
  appAssets,
  buildArtifacts,
  bundle,
  RELEASE_DIR,
  singleExecutable,
  type VersionOverride,
} from '../../scripts/release/artifacts.ts';
import { ensurePreviousRelease, PREVIOUS_COMMIT } from './previous-release.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGES_DIR = join(REPO_ROOT, 'test/chaos/images');
const DOCKERFILES = join(REPO_ROOT, 'infra/docker');
const BOOTSTRAPPED_NATS_SERVER = join(REPO_ROOT, '.tools/nats/nats-server');
const NATS_SERVER =
  process.env['NATS_SERVER_BIN'] ??
  (statExists(BOOTSTRAPPED_NATS_SERVER)
    ? BOOTSTRAPPED_NATS_SERVER
    : statExists('/usr/sbin/nats-server')
      ? '/usr/sbin/nats-server'
      : 'nats-server');

/** One release's agent and coordinator images, and what they announce. */
export type AppImages = { agent: string; coordinator: string; version: string; protocolVersion: number };
/** `content`: the sha256 of each release executable (the next release's images are keyed by it). */
export type ChaosImages = { runtime: string; nats: string; content: { agent: string; coordinator: string } } & AppImages;
export type BuildReport = { image: string; built: boolean; ms: number; sizeMiB: number };

/** The next release as the upgrade scenario runs it: this tree, one protocol version ahead. */
export const NEXT_RELEASE: VersionOverride = { version: `${ALLOT_VERSION}-next`, protocolVersion: PROTOCOL_VERSION + 1 };

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
function addFile(rootfs: string, path: string): void {
  const at = join(rootfs, path);
  mkdirSync(dirname(at), { recursive: true });
  copyFileSync(path, at);
}

function listTree(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(p, ...listTree(p));
    else out.push(p);
  }
  return out.sort();
}

/** sha256 over a tree: relative path, mode, symlink target or content of each file. */
function hashTree(dir: string, extra: string[] = []): string {
  const h = createHash('sha256');
  for (const e of extra) h.update(e).update('\0');
  for (const file of listTree(dir)) {
    const st = lstatSync(file);
    h.update(relative(dir, file)).update('\0').update(String(st.mode)).update('\0');
    if (st.isSymbolicLink()) h.update(readlinkSync(file));
    else if (st.isFile()) h.update(readFileSync(file));
    h.update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function imageExists(tag: string): Promise<boolean> {
  const client = await getContainerRuntimeClient();
  return client.image.exists(ImageName.fromString(tag));
}

async function imageInfo(tag: string): Promise<{ id: string; sizeMiB: number }> {
  const client = await getContainerRuntimeClient();
  const info = await client.image.inspect(ImageName.fromString(tag));
  return { id: info.Id, sizeMiB: Math.round((info.Size / 1048576) * 10) / 10 };
}

/** Builds a FROM scratch `context` with `dockerfile` (copied into the context) as `tag` unless that tag exists. */
async function buildScratchIfMissing(tag: string, context: string, dockerfile: string): Promise<BuildReport> {
  const started = Date.now();
  if (await imageExists(tag)) return { image: tag, built: false, ms: Date.now() - started, sizeMiB: (await imageInfo(tag)).sizeMiB };
  copyFileSync(dockerfile, join(context, 'Dockerfile.allot'));
  const builder = GenericContainer.fromDockerfile(context, 'Dockerfile.allot');
  // BuildKit makes no intermediate container per instruction (on the vfs driver, a full rootfs copy each).
  // ALLOT_CHAOS_BUILDKIT=0 for engines without it.
  if (process.env['ALLOT_CHAOS_BUILDKIT'] !== '0') builder.withBuildkit();
  await builder.build(tag, { deleteOnExit: false });
  return { image: tag, built: true, ms: Date.now() - started, sizeMiB: (await imageInfo(tag)).sizeMiB };
}

/**
 * `docker build --build-arg BASE_IMAGE=<base> -f infra/docker/<app>.Dockerfile <dir of the executable>` with the
 * classic builder, the context being only the executable and the Dockerfile (the release directory holds all three
 * executables, 128 MB each). Fails with the builder's own error line.
 */
async function buildAppImage(tag: string, app: 'agent' | 'coordinator', executable: string, base: string): Promise<void> {
  const client = await getContainerRuntimeClient();
  const d = client.container.dockerode;
  const tar = spawn('tar', ['-c', '-C', dirname(executable), `allot-${app}`, '-C', DOCKERFILES, `${app}.Dockerfile`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stream = await d.buildImage(tar.stdout, {
    t: tag,
    dockerfile: `${app}.Dockerfile`,
    buildargs: { BASE_IMAGE: base },
    rm: true,
    forcerm: true,
  });
  const failure = await new Promise<string | undefined>((resolveBuild, reject) => {
    let error: string | undefined;
    d.modem.followProgress(
      stream,
      (e: Error | null) => (e === null ? resolveBuild(error) : reject(e)),
      (event: { error?: string }) => {
        if (event.error !== undefined) error = event.error;
      },
    );
  });
  if (failure !== undefined) throw new Error(`docker build ${tag}: ${failure}`);
}

/** The rootfs of a FROM scratch image holding `binaries` (at their own paths or `as`) and their libraries. */
function assembleRootfs(dir: string, binaries: { path: string; as?: string }[], withUsers: boolean): string {
  const rootfs = join(dir, 'rootfs');
  rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  mkdirSync(rootfs, { recursive: true });
  for (const b of binaries) {
    if (b.as !== undefined) {
      const at = join(rootfs, b.as);
      mkdirSync(dirname(at), { recursive: true });
      copyFileSync(b.path, at);
      chmodSync(at, 0o755);
    }
    for (const lib of sharedLibraries(b.path)) addFile(rootfs, lib);
  }
  if (withUsers) {
    mkdirSync(join(rootfs, 'etc'), { recursive: true });
    writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/sbin/nologin\nallot:x:1000:1000:allot:/nonexistent:/sbin/nologin\n');
    writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nallot:x:1000:\n');
    writeFileSync(join(rootfs, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
  }
  mkdirSync(join(rootfs, 'tmp'), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  return rootfs;
}

/**
 * The release executables of this tree: dist/release/bin as `pnpm release` (or the release test) left it when
 * ALLOT_RELEASE_BUILT=1, else built now (about a minute: bundle + single executable, three apps). Copied into `into`
 * first: what is hashed is what is built, even if dist/release is rebuilt meanwhile.
 */
async function releaseExecutables(into: string, log: (line: string) => void): Promise<{ agent: string; coordinator: string }> {
  const dir = process.env['ALLOT_RELEASE_DIR'] ?? RELEASE_DIR;
  if (process.env['ALLOT_RELEASE_BUILT'] !== '1' && process.env['ALLOT_RELEASE_DIR'] === undefined) {
    const started = Date.now();
    await buildArtifacts();
    log(`release executables built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  mkdirSync(into, { recursive: true });
  const copy = (name: string) => {
    copyFileSync(join(dir, 'bin', name), join(into, name));
    chmodSync(join(into, name), 0o755);
    return join(into, name);
  };
  return { agent: copy('allot-agent'), coordinator: copy('allot-coordinator') };
}

/** The tag of an app image: its repository, and a hash of the base's digest, the Dockerfile and `content`. */
function appTag(app: 'agent' | 'coordinator', base: string, content: string, repoSuffix = ''): string {
  const dockerfile = readFileSync(join(DOCKERFILES, `${app}.Dockerfile`), 'utf8');
  const hash = createHash('sha256').update(`${base}\0${dockerfile}\0${content}`).digest('hex').slice(0, 16);
  return `allot-chaos-${app}${repoSuffix}:${hash}`;
}

/** Builds each tag of `tags` that is missing from its executable (made by `executables()` only when one is missing). */
async function appImages(
  tags: Record<'agent' | 'coordinator', string>,
  base: string,
  executables: () => Promise<{ agent: string; coordinator: string }>,
  reports: BuildReport[],
): Promise<void> {
  let made: { agent: string; coordinator: string } | undefined;
  for (const app of ['agent', 'coordinator'] as const) {
    const started = Date.now();
    const built = !(await imageExists(tags[app]));
    if (built) {
      made ??= await executables();
      await buildAppImage(tags[app], app, made[app], base);
    }
    reports.push({ image: tags[app], built, ms: Date.now() - started, sizeMiB: (await imageInfo(tags[app])).sizeMiB });
  }
}

/**
 * Builds (or finds) the runtime, nats, agent and coordinator images. Returns their tags and what each build cost.
 * Tags are `allot-chaos-<name>:<hash of the inputs>`; the app hashes include the runtime's digest.
 */
export async function ensureImages(
  log: (line: string) => void = () => undefined,
): Promise<{ images: ChaosImages; reports: BuildReport[] }> {
  const work = join(tmpdir(), `allot-chaos-build-${process.pid}`);
  const reports: BuildReport[] = [];
  try {
    const executables = await releaseExecutables(join(work, 'release'), log);
    const runtimeDir = join(work, 'runtime');
    assembleRootfs(runtimeDir, [{ path: executables.agent }, { path: executables.coordinator }], true);
    const runtime = `allot-chaos-runtime:${hashTree(runtimeDir, [readFileSync(join(IMAGES_DIR, 'runtime.Dockerfile'), 'utf8')])}`;
    reports.push(await buildScratchIfMissing(runtime, runtimeDir, join(IMAGES_DIR, 'runtime.Dockerfile')));

    const natsDir = join(work, 'nats');
    assembleRootfs(natsDir, [{ path: resolveBinary(NATS_SERVER), as: '/usr/sbin/nats-server' }], false);
    const nats = `allot-chaos-nats:${hashTree(natsDir, [readFileSync(join(IMAGES_DIR, 'nats.Dockerfile'), 'utf8')])}`;
    reports.push(await buildScratchIfMissing(nats, natsDir, join(IMAGES_DIR, 'nats.Dockerfile')));

    const base = (await imageInfo(runtime)).id; // sha256:<digest of the runtime's config>
    const content = { agent: await hashFile(executables.agent), coordinator: await hashFile(executables.coordinator) };
    const apps = { agent: appTag('agent', base, content.agent), coordinator: appTag('coordinator', base, content.coordinator) };
    await appImages(apps, base, async () => executables, reports);
    const images: ChaosImages = { runtime, nats, ...apps, version: ALLOT_VERSION, protocolVersion: PROTOCOL_VERSION, content };
    await removeStaleTags([runtime, nats, apps.agent, apps.coordinator]);
    return { images, reports };
  } finally {
    rmSync(work, { recursive: true, force: true, maxRetries: 5 });
  }
}

/**
 * The next release's agent and coordinator images (NEXT_RELEASE): this tree bundled again with the version constants
 * moved one ahead, made single executables as `pnpm release` makes them, on the same runtime. Kept by
 * removeStaleTags while they match the tree (`allot-chaos-*-next` tags).
 */
export async function nextAppImages(
  images: ChaosImages,
  reports: BuildReport[],
  log: (line: string) => void = () => undefined,
): Promise<AppImages> {
  const base = (await imageInfo(images.runtime)).id;
  // The next build is a function of this release's executable and the override: hash those, build only when missing.
  const override = JSON.stringify(NEXT_RELEASE);
  const tags = {
    agent: appTag('agent', base, `${images.content.agent}\0${override}`, '-next'),
    coordinator: appTag('coordinator', base, `${images.content.coordinator}\0${override}`, '-next'),
  };
  const work = join(tmpdir(), `allot-chaos-next-${process.pid}`);
  try {
    await appImages(
      tags,
      base,
      async () => {
        const started = Date.now();
        mkdirSync(work, { recursive: true });
        const made = { agent: '', coordinator: '' };
        for (const app of ['agent', 'coordinator'] as const) {
          const spec = APPS.find((a) => a.name === `allot-${app}`);
          if (spec === undefined) throw new Error(`no release app allot-${app}`);
          made[app] = singleExecutable(spec.name, await bundle(spec, work, NEXT_RELEASE), work, spec.execArgv, appAssets(spec));
        }
        log(
          `next release executables (${NEXT_RELEASE.version}, protocol ${NEXT_RELEASE.protocolVersion}) built in ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
        return made;
      },
      reports,
    );
    await removeStaleTags([tags.agent, tags.coordinator], '-next:');
    return { ...tags, ...NEXT_RELEASE };
  } finally {
    rmSync(work, { recursive: true, force: true, maxRetries: 5 });
  }
}

/**
 * The previous release's agent and coordinator images (test/chaos/previous-release.ts: an older commit built by its
 * own release script, once), on the same runtime; `-prev` tags keyed by the executables' content.
 */
export async function previousAppImages(
  images: ChaosImages,
  reports: BuildReport[],
  log: (line: string) => void = () => undefined,
): Promise<AppImages> {
  const previous = ensurePreviousRelease(REPO_ROOT, PREVIOUS_COMMIT, log);
  const base = (await imageInfo(images.runtime)).id;
  const tags = {
    agent: appTag('agent', base, await hashFile(previous.executables.agent), '-prev'),
    coordinator: appTag('coordinator', base, await hashFile(previous.executables.coordinator), '-prev'),
  };
  await appImages(tags, base, () => Promise.resolve(previous.executables), reports);
  await removeStaleTags([tags.agent, tags.coordinator], '-prev:');
  return { ...tags, version: previous.version, protocolVersion: previous.protocolVersion };
}

/**
 * Removes earlier builds (allot-chaos-* tags other than the current ones) so a changing tree does not fill the disk;
 * the previous and the next release's images (`-prev:`, `-next:` tags) and the others are cleaned apart.
 */
async function removeStaleTags(current: string[], only?: '-next:' | '-prev:'): Promise<void> {
  const client = await getContainerRuntimeClient();
  const docker = client.container.dockerode;
  const listed = await docker.listImages();
  const group = (tag: string) => (tag.includes('-next:') ? '-next:' : tag.includes('-prev:') ? '-prev:' : undefined);
  const stale = listed.flatMap((img) =>
    (img.RepoTags ?? []).filter((t) => t.startsWith('allot-chaos-') && group(t) === only && !current.includes(t)),
  );
  // Children before parents: app images first, then bases.
  stale.sort((a, b) => Number(/^allot-chaos-(base|runtime)/.test(a)) - Number(/^allot-chaos-(base|runtime)/.test(b)));
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
