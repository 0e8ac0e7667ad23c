// Debian packages allot-agent and allot-coordinator from the release executables (scripts/release/artifacts.ts), built
// with dpkg-deb: no debhelper, because the packages hold one static-enough executable, a unit, a conffile and three
// maintainer scripts, and dpkg-deb is on every Debian host. `node scripts/release/deb.ts` builds both into dist/release.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildArtifacts, RELEASE_DIR, ROOT } from './artifacts.ts';

const TEMPLATES = join(ROOT, 'infra', 'deb');

export interface DebPackage {
  readonly name: 'allot-agent' | 'allot-coordinator';
  readonly description: string;
  readonly config: string;
  /** What postrm says of the state left behind on purge, and the shell line it runs. */
  readonly state: { readonly note: string; readonly purge: string };
}

export const PACKAGES: readonly DebPackage[] = [
  {
    name: 'allot-agent',
    description:
      'allot agent: CPU and memory allocation authority of a hypervisor host\n The agent validates and durably commits every allocation of its host (ledger under /var/lib/allot/agent)\n and serves the coordinators over NATS.',
    config: 'agent.json',
    state: {
      note: "/var/lib/allot/agent holds the ledger, the host's acknowledged allocations.",
      purge:
        'if [ -d /var/lib/allot/agent ]; then echo "allot-agent: kept /var/lib/allot/agent (the ledger: this host\'s acknowledged allocations); remove it once nothing needs it" >&2; fi',
    },
  },
  {
    name: 'allot-coordinator',
    description:
      "allot coordinator: cluster-wide view and scheduler endpoints\n Aggregates the agents over NATS and answers schedulers: place, release, quotas, cordon and drain,\n with the live dashboard and the operators' command line, allot.",
    config: 'coordinator.json',
    state: { note: 'the coordinator keeps none (its view is rebuilt from NATS).', purge: ':' },
  },
];

function architecture(): string {
  return execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
}

function fill(template: string, pkg: DebPackage): string {
  return template
    .replaceAll('@PACKAGE@', pkg.name)
    .replaceAll('@CONFIG@', pkg.config)
    .replaceAll('@STATE@', pkg.state.note)
    .replaceAll('@PURGE_STATE@', pkg.state.purge);
}

function place(root: string, path: string, from: string, mode: number): void {
  const target = join(root, path);
  mkdirSync(join(target, '..'), { recursive: true });
  copyFileSync(from, target);
  chmodSync(target, mode);
}

function write(root: string, path: string, text: string, mode: number): void {
  const target = join(root, path);
  mkdirSync(join(target, '..'), { recursive: true });
  writeFileSync(target, text);
  chmodSync(target, mode);
}

/** One .deb from its executable; the dashboard's built files go with the coordinator. */
/** The release, as the built CLI itself reports it (`allot 0.2.0 (node v24...)`): the package cannot disagree with it. */
export function releaseVersion(cli: string): string {
  const printed = execFileSync(cli, ['--version'], { encoding: 'utf8' });
  const version = /^allot (\d+\.\d+\.\d+\S*)/.exec(printed)?.[1];
  if (version === undefined) throw new Error(`${cli} --version printed ${JSON.stringify(printed)}`);
  return version;
}

export function buildDeb(pkg: DebPackage, version: string, executable: string, extra: { cli: string }): string {
  const arch = architecture();
  const root = join(RELEASE_DIR, 'deb', pkg.name);
  rmSync(root, { recursive: true, force: true });
  place(root, `usr/bin/${pkg.name}`, executable, 0o755);
  place(root, `lib/systemd/system/${pkg.name}.service`, join(TEMPLATES, `${pkg.name}.service`), 0o644);
  place(root, `etc/allot/${pkg.config}`, join(TEMPLATES, pkg.config), 0o640);
  place(root, `usr/share/doc/${pkg.name}/operations.md`, join(ROOT, 'docs', 'operations.md'), 0o644);
  place(root, `usr/share/doc/${pkg.name}/security.md`, join(ROOT, 'docs', 'security.md'), 0o644);
  if (pkg.name === 'allot-coordinator') {
    // The operators' CLI goes with the coordinator: where the cluster is run from.
    place(root, 'usr/bin/allot', extra.cli, 0o755);
  }
  const installedKiB = Math.ceil(Number(execFileSync('du', ['-sk', '--exclude=DEBIAN', root], { encoding: 'utf8' }).split('\t')[0]));
  const control = [
    `Package: ${pkg.name}`,
    `Version: ${version}`,
    `Architecture: ${arch}`,
    'Maintainer: allot maintainers <allot@example.invalid>',
    // The executable is a Node binary: glibc and libstdc++ (the same libraries `ldd` lists for node), adduser for postinst.
    'Depends: libc6 (>= 2.28), libstdc++6, libgcc-s1, adduser',
    'Section: admin',
    'Priority: optional',
    `Installed-Size: ${installedKiB}`,
    `Description: ${pkg.description}`,
    '',
  ].join('\n');
  write(root, 'DEBIAN/control', control, 0o644);
  // A conffile: an operator's edits survive upgrades (dpkg asks when the packaged default changed too).
  write(root, 'DEBIAN/conffiles', `/etc/allot/${pkg.config}\n`, 0o644);
  for (const script of ['postinst', 'prerm', 'postrm'])
    write(root, `DEBIAN/${script}`, fill(readFileSync(join(TEMPLATES, script), 'utf8'), pkg), 0o755);
  const deb = join(RELEASE_DIR, `${pkg.name}_${version}_${arch}.deb`);
  // gzip, not xz: xz takes minutes over a 125 MB executable on two cores, for a third less on the wire.
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, deb], { stdio: 'pipe' });
  return deb;
}

/** The executables (the coordinator's carries the dashboard) and both packages; returns the .deb paths. */
export async function buildDebs(log: (line: string) => void = () => undefined): Promise<string[]> {
  const artifacts = await buildArtifacts(log);
  const version = releaseVersion(artifacts.allot.executable);
  const debs = PACKAGES.map((pkg) => buildDeb(pkg, version, artifacts[pkg.name].executable, { cli: artifacts.allot.executable }));
  for (const deb of debs) log(`${deb} (${Math.round(statSync(deb).size / 1024 / 1024)} MiB)`);
  return debs;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildDebs((line) => process.stdout.write(`${line}\n`));
}
