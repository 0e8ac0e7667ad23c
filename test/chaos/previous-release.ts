/**
 * The previous release for scenario 8's rolling upgrade: an older commit of this repository, built by that commit's
 * own release script (its scripts/release/artifacts.ts, with its own dependencies from its own lockfile) with the Node
 * of this checkout, so the cluster starts on the code as it was and is upgraded to this tree. Built once per commit:
 * a git worktree under .allot/prev-release/<commit> keeps the tree, its node_modules and the two executables.
 *
 * The older tree announces the same ALLOT_VERSION as this one (nobody bumped it between), so it is built with its
 * own VersionOverride as `<its version>-prev.<commit>`: the release number is the only thing changed, and it lets the
 * services ping tell the two releases apart after each step.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Session 6's last commit, the tree this session started from (what an operator would have installed). */
export const PREVIOUS_COMMIT = '7bcd952';
/** Its full id: what a fetch by commit needs when a shallow clone lacks it. */
const PREVIOUS_COMMIT_FULL = '7bcd9528ef706313b8003f369f01616622e572f6';

export type PreviousRelease = {
  commit: string;
  version: string;
  protocolVersion: number;
  executables: { agent: string; coordinator: string };
  /** Whether this call built them (false: found under .allot). */
  built: boolean;
  ms: number;
};

/** The previous release cannot be built here: its commit is not in this clone (a shallow one whose origin is gone). */
export class PreviousReleaseMissing extends Error {
  constructor(reason: string) {
    super(`previous release: ${reason}`);
    this.name = 'PreviousReleaseMissing';
  }
}

function constant(file: string, pattern: RegExp, what: string): string {
  const found = pattern.exec(readFileSync(file, 'utf8'))?.[1];
  if (found === undefined) throw new Error(`previous release: ${what} not found in ${file}`);
  return found;
}

/** Builds the previous release's agent and coordinator executables unless they are already there. */
export function ensurePreviousRelease(
  repoRoot: string,
  commit = PREVIOUS_COMMIT,
  log: (line: string) => void = () => undefined,
): PreviousRelease {
  const started = Date.now();
  const tree = join(repoRoot, '.allot', 'prev-release', commit);
  const out = join(tree, '.allot', 'release-prev');
  const executables = { agent: join(out, 'allot-agent'), coordinator: join(out, 'allot-coordinator') };
  const git = (args: string[]) => execFileSync('git', ['-C', repoRoot, ...args], { encoding: 'utf8', stdio: 'pipe' });
  if (!existsSync(join(tree, 'package.json'))) {
    const present = () => {
      try {
        git(['cat-file', '-e', `${commit}^{commit}`]);
        return true;
      } catch {
        return false;
      }
    };
    if (!present() && commit === PREVIOUS_COMMIT) {
      // A shallow clone (CI checkouts often are): ask the clone's origin for that one commit.
      try {
        execFileSync('git', ['-C', repoRoot, 'fetch', '--quiet', '--depth=1', 'origin', PREVIOUS_COMMIT_FULL], {
          stdio: 'pipe',
          timeout: 120_000,
        });
      } catch {
        // Answered below.
      }
    }
    if (!present()) throw new PreviousReleaseMissing(`commit ${commit} is not in this clone and its origin did not give it`);
    git(['worktree', 'prune']);
    mkdirSync(join(repoRoot, '.allot', 'prev-release'), { recursive: true });
    git(['worktree', 'add', '--detach', '--force', tree, commit]);
  }
  const ownVersion = constant(join(tree, 'packages/core/src/version.ts'), /export const ALLOT_VERSION = '([^']+)';/, 'ALLOT_VERSION');
  const protocolVersion = Number(
    constant(join(tree, 'packages/protocol/src/codec.ts'), /export const PROTOCOL_VERSION = (\d+);/, 'PROTOCOL_VERSION'),
  );
  const version = `${ownVersion}-prev.${commit}`;
  if (existsSync(executables.agent) && existsSync(executables.coordinator))
    return { commit, version, protocolVersion, executables, built: false, ms: Date.now() - started };
  log(`previous release ${commit}: installing its dependencies and building it (once; kept in ${tree})`);
  execFileSync('pnpm', ['install', '--frozen-lockfile', '--prefer-offline'], { cwd: tree, stdio: 'pipe', timeout: 600_000 });
  // That commit's own release script: its bundler settings, its SEA loader, its V8 flags.
  const build = `
    const { APPS, bundle, singleExecutable } = await import('./scripts/release/artifacts.ts');
    const [out, override] = [process.argv[1], JSON.parse(process.argv[2])];
    for (const name of ['allot-agent', 'allot-coordinator']) {
      const app = APPS.find((a) => a.name === name);
      singleExecutable(app.name, await bundle(app, out, override), out, app.execArgv);
    }`;
  execFileSync(process.execPath, ['--input-type=module', '-e', build, out, JSON.stringify({ version, protocolVersion })], {
    cwd: tree,
    stdio: 'pipe',
    timeout: 600_000,
  });
  log(`previous release ${commit} (${version}) built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { commit, version, protocolVersion, executables, built: true, ms: Date.now() - started };
}
