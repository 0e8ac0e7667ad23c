// pnpm release: each app as one self-contained executable (dist/release/bin/allot-agent, allot-coordinator, allot),
// and the Debian packages built from them (scripts/release/deb.ts). Development keeps running the TypeScript sources.
//
// The form: Node's single executable applications (SEA). rolldown bundles an app into one ES module; Node 24's SEA
// runs only a CommonJS main script, so the executable's main is a short CommonJS loader that imports the bundle,
// carried as an SEA asset, through a module hook. postject injects the blob into a copy of this Node binary. The result
// needs nothing on the host but glibc: no Node, no node_modules, no TypeScript stripping at start.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'rolldown';
import { APPS, type AppName } from './apps.ts';

export { APPS, type AppName } from './apps.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const RELEASE_DIR = join(ROOT, 'dist', 'release');

/** The fuse postject looks for in a Node binary (Node's documented sentinel). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/**
 * The single executable's main (CommonJS, as Node 24's SEA requires): the app is an ES module carried as an asset. A
 * module hook answers for the executable's own file URL with the asset, so the bundle loads as the file it came from
 * (`import.meta.url` and `import.meta.dirname` name the executable) and its text is held once. Imported from a
 * data: URL instead, the base64 URL (2.8 MB) stayed alive as the module's key and the idle agent held 14 MB more.
 */
const SEA_LOADER = `const { getRawAsset } = require('node:sea');
const { registerHooks } = require('node:module');
const { pathToFileURL } = require('node:url');
const APP = pathToFileURL(process.execPath).href;
registerHooks({
  resolve: (specifier, context, next) => (specifier === APP ? { url: APP, format: 'module', shortCircuit: true } : next(specifier, context)),
  load: (url, context, next) => (url === APP ? { format: 'module', source: Buffer.from(getRawAsset('app.mjs')), shortCircuit: true } : next(url, context)),
});
import(APP).catch((error) => {
  console.error(error);
  process.exit(70);
});
`;

/**
 * A build of this tree that announces another release and protocol version: the chaos suite's rolling upgrade runs the
 * release as is next to one announcing the next protocol version (test/chaos/images.ts). Never set for `pnpm release`.
 */
export type VersionOverride = { version: string; protocolVersion: number };

/** Rewrites the two constants in their source files before bundling; fails when either is no longer where it was. */
function versionOverridePlugin(override: VersionOverride): Plugin {
  const rewrites = [
    {
      file: join(ROOT, 'packages/core/src/version.ts'),
      from: /export const ALLOT_VERSION = '[^']*';/,
      to: `export const ALLOT_VERSION = ${JSON.stringify(override.version)};`,
    },
    {
      file: join(ROOT, 'packages/protocol/src/codec.ts'),
      from: /export const PROTOCOL_VERSION = \d+;/,
      to: `export const PROTOCOL_VERSION = ${override.protocolVersion};`,
    },
  ];
  const done = new Set<string>();
  return {
    name: 'allot-version-override',
    transform(code, id) {
      const rewrite = rewrites.find((r) => r.file === id);
      if (rewrite === undefined) return null;
      if (!rewrite.from.test(code)) throw new Error(`version override: ${rewrite.from} not found in ${id}`);
      done.add(id);
      return code.replace(rewrite.from, rewrite.to);
    },
    buildEnd() {
      const missed = rewrites.filter((r) => !done.has(r.file));
      if (missed.length > 0) throw new Error(`version override: never saw ${missed.map((r) => r.file).join(', ')}`);
    },
  };
}

/**
 * msgpackr's plain JavaScript build. Its Node entry looks for the native msgpackr-extract addon, which an executable
 * can never load (no node_modules beside it); the lookup alone loaded detect-libc, child_process and dgram.
 */
const MSGPACKR_PURE_JS = join(dirname(createRequire(join(ROOT, 'packages/protocol/package.json')).resolve('msgpackr')), '..', 'index.js');

/** `import { a, b as c } from "node:x"`, `import * as x from "x"`, `import x from "x"`: rolldown's hoisted imports. */
const HOISTED_IMPORT = /^import (?:\* as (?<namespace>[\w$]+)|(?<default>[\w$]+)|\{(?<names>[^}]*)\}) from "(?<from>[^"]+)";$/gm;

/**
 * Node builtins read through process.getBuiltinModule instead of `import`: an ES import of a builtin builds its
 * namespace, which reads every lazy getter of the module. For node:http those are WebSocket, CloseEvent and
 * MessageEvent, which load undici and http2: 14 MB of RSS in a process that never uses them. A destructuring reads
 * only the names the bundle uses. Builtins are constant objects, so a snapshot of the binding is the binding.
 */
export function builtinsWithoutNamespaces(code: string): string {
  return code.replace(HOISTED_IMPORT, (line, ...args) => {
    const groups = args.at(-1) as { namespace?: string; default?: string; names?: string; from: string };
    if (!isBuiltin(groups.from)) return line;
    const module = `process.getBuiltinModule(${JSON.stringify(groups.from)})`;
    if (groups.names === undefined) return `const ${groups.namespace ?? groups.default} = ${module};`;
    const names = groups.names
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== '')
      .map((n) => n.replace(/^([\w$]+) as ([\w$]+)$/, '$1: $2'));
    return `const { ${names.join(', ')} } = ${module};`;
  });
}

/** One app bundled into one ES module (all workspace packages and dependencies inlined). */
export async function bundle(app: (typeof APPS)[number], outDir: string, override?: VersionOverride): Promise<string> {
  const file = join(outDir, `${app.name}.mjs`);
  await build({
    input: join(ROOT, app.entry),
    platform: 'node',
    resolve: { alias: { msgpackr: MSGPACKR_PURE_JS } },
    logLevel: 'warn',
    // Held in memory for as long as the process runs (V8 compiles functions lazily from it): without comments, and
    // in ASCII so V8 keeps it as a one-byte string; one character past Latin-1 made it two-byte, 4.3 MB instead of 2.
    // Names and lines are kept (no mangling, no joined lines) so stack traces stay readable.
    output: {
      file,
      format: 'esm',
      codeSplitting: false,
      comments: false,
      minify: { compress: false, mangle: false, codegen: { removeWhitespace: false, asciiOnly: true } },
    },
    ...(override === undefined ? {} : { plugins: [versionOverridePlugin(override)] }),
  });
  writeFileSync(file, builtinsWithoutNamespaces(readFileSync(file, 'utf8')));
  return file;
}

/** The built dashboard (apps/dashboard/dist, built first when missing), as SEA assets under `dashboard/`. */
export function dashboardAssets(): Record<string, string> {
  const dist = join(ROOT, 'apps', 'dashboard', 'dist');
  if (!existsSync(join(dist, 'index.html'))) execFileSync('pnpm', ['--filter', '@allot/dashboard', 'build'], { cwd: ROOT, stdio: 'pipe' });
  const assets: Record<string, string> = {};
  for (const file of readdirSync(dist, { recursive: true, encoding: 'utf8' })) {
    // The key is the URL path under the dashboard's root (apps/coordinator/src/http/static.ts, DASHBOARD_ASSET_PREFIX).
    if (statSync(join(dist, file)).isFile()) assets[`dashboard/${file.split(sep).join('/')}`] = join(dist, file);
  }
  return assets;
}

/** What an app's executable carries beside its bundle. */
export function appAssets(app: (typeof APPS)[number]): Record<string, string> {
  return app.dashboard ? dashboardAssets() : {};
}

/** The bundle injected into a copy of this Node binary: one file to install. */
export function singleExecutable(
  name: string,
  bundleFile: string,
  outDir: string,
  execArgv: readonly string[] = [],
  assets: Record<string, string> = {},
): string {
  const work = join(outDir, '.sea', name);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  writeFileSync(join(work, 'loader.cjs'), SEA_LOADER);
  const blob = join(work, 'sea.blob');
  const config = {
    main: join(work, 'loader.cjs'),
    output: blob,
    disableExperimentalSEAWarning: true,
    useCodeCache: false,
    useSnapshot: false,
    execArgv,
    assets: { ...assets, 'app.mjs': bundleFile },
  };
  writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config));
  execFileSync(process.execPath, ['--experimental-sea-config', join(work, 'sea-config.json')], { stdio: 'pipe' });
  const exe = join(outDir, name);
  copyFileSync(process.execPath, exe);
  chmodSync(exe, 0o755);
  const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
  execFileSync(process.execPath, [postject, exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { stdio: 'pipe' });
  rmSync(work, { recursive: true, force: true });
  return exe;
}

/** Every app bundled and made an executable under dist/release; returns their paths by name. */
export async function buildArtifacts(
  log: (line: string) => void = () => undefined,
): Promise<Record<AppName, { bundle: string; executable: string }>> {
  const jsDir = join(RELEASE_DIR, 'js');
  const binDir = join(RELEASE_DIR, 'bin');
  mkdirSync(jsDir, { recursive: true });
  mkdirSync(binDir, { recursive: true });
  const out = {} as Record<AppName, { bundle: string; executable: string }>;
  for (const app of APPS) {
    const started = performance.now();
    const bundled = await bundle(app, jsDir);
    const executable = singleExecutable(app.name, bundled, binDir, app.execArgv, appAssets(app));
    out[app.name] = { bundle: bundled, executable };
    log(`${app.name}: ${executable} (${Math.round(performance.now() - started)} ms)`);
  }
  return out;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildArtifacts((line) => process.stdout.write(`${line}\n`));
  process.stdout.write(`release artifacts in ${dirname(join(RELEASE_DIR, 'bin', 'x'))}\n`);
}
