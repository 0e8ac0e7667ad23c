/**
 * Stages the Docker build context of one allot app (agent or coordinator) from this pnpm workspace:
 *
 *   node infra/docker/stage.ts apps/agent <out-dir>
 *
 * The apps run their TypeScript sources directly (Node's type stripping), and Node refuses to strip types under
 * node_modules, so `pnpm deploy` (which copies workspace packages into node_modules) cannot be used as is. Instead the
 * workspace layout is kept: the app's and every workspace package's `package.json` + `src/` (tests left out) and only
 * the entries of `node_modules/.pnpm` that the app's production dependencies reach, with pnpm's relative symlinks
 * copied verbatim so they resolve inside the image exactly as in the repository. Prints the staged byte count.
 */
import { cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

type PackageJson = { name?: string; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; peerDependencies?: Record<string, string> };

/** Files of a workspace package that go into the image: sources without their tests and benches. */
function keepWorkspaceFile(path: string): boolean {
  return !/\.(test|bench)\.ts$/.test(path);
}

export function stageApp(root: string, appDir: string, out: string): number {
  root = realpathSync(root);
  rmSync(out, { recursive: true, force: true, maxRetries: 5 });
  mkdirSync(out, { recursive: true });
  const visitedPackages = new Set<string>();
  const links = new Map<string, string>();
  const workspace = new Set<string>();
  const external = new Set<string>();

  const resolveDep = (fromDir: string, name: string): string | undefined => {
    // Node's lookup: <dir>/node_modules/<name>, then each parent directory's node_modules.
    let dir = fromDir;
    for (;;) {
      const candidate = join(dir, 'node_modules', name);
      if (existsSync(candidate)) return candidate;
      const parent = dirname(dir);
      if (parent === dir || !parent.startsWith(root)) return undefined;
      dir = parent;
    }
  };

  const visit = (pkgDir: string): void => {
    const real = realpathSync(pkgDir);
    if (visitedPackages.has(real)) return;
    visitedPackages.add(real);
    const inPnpmStore = relative(root, real).split(sep).includes('node_modules');
    if (inPnpmStore) external.add(real);
    else workspace.add(real);
    const pkg = JSON.parse(readFileSync(join(real, 'package.json'), 'utf8')) as PackageJson;
    const names = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})];
    if (inPnpmStore) {
      // pnpm puts everything a store package may import (dependencies and the peers it was linked with) next to it:
      // .pnpm/<slot>/node_modules/<name>. Take every sibling link of that directory.
      const slot = pkg.name?.startsWith('@') ? dirname(dirname(real)) : dirname(real);
      for (const entry of readdirSync(slot)) {
        if (entry.startsWith('@')) names.push(...readdirSync(join(slot, entry)).map((n) => `${entry}/${n}`));
        else if (entry !== '.bin') names.push(entry);
      }
    }
    for (const name of new Set(names)) {
      if (name === pkg.name) continue;
      const found = resolveDep(real, name);
      if (found === undefined) continue; // an optional dependency not installed on this platform
      // Every symlink on the way (the package's own entry, scoped or not) is recreated verbatim.
      let p = found;
      while (p.startsWith(root) && p !== root) {
        if (lstatSync(p).isSymbolicLink()) links.set(p, readlinkSync(p));
        p = dirname(p);
      }
      visit(found);
    }
  };
  visit(resolve(root, appDir));

  let bytes = 0;
  const copy = (from: string, filter: (p: string) => boolean) => {
    cpSync(from, join(out, relative(root, from)), {
      recursive: true,
      verbatimSymlinks: true,
      filter: (src) => {
        if (!filter(src)) return false;
        const st = lstatSync(src);
        if (st.isFile()) bytes += st.size;
        return true;
      },
    });
  };
  for (const dir of workspace) {
    mkdirSync(join(out, relative(root, dir)), { recursive: true });
    copy(join(dir, 'package.json'), () => true);
    if (existsSync(join(dir, 'src'))) copy(join(dir, 'src'), keepWorkspaceFile);
  }
  for (const dir of external) copy(dir, () => true);
  for (const [link, target] of links) {
    const at = join(out, relative(root, link));
    if (existsSync(at) || lstatExists(at)) continue;
    mkdirSync(dirname(at), { recursive: true });
    symlinkSync(target, at);
  }
  // The root package.json says "type": "module" for every .ts file that has no closer package.json.
  copy(join(root, 'package.json'), () => true);
  return bytes;
}

function lstatExists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Lists the staged tree's files for hashing: path, mode, symlink target or size+mtime are what the caller hashes. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

if (import.meta.main) {
  const [appDir, out] = process.argv.slice(2);
  if (appDir === undefined || out === undefined) {
    console.error('usage: node infra/docker/stage.ts <apps/agent|apps/coordinator> <out-dir>');
    process.exit(2);
  }
  const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');
  const bytes = stageApp(root, appDir, resolve(out));
  console.log(`staged ${appDir} into ${out}: ${(bytes / 1048576).toFixed(1)} MiB`);
}
