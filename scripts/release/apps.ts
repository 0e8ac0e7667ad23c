// The apps a release ships and the V8 flags each executable bakes in, apart from artifacts.ts so that a process that
// runs an app from the sources with its release's flags (the fleet simulator's coordinators) need not load the bundler.

/**
 * The apps shipped as executables: the name on the host, the entry point in this repository, and the V8 flags baked
 * into the executable. The agent shares its host with VMs: a 1 MiB young generation (V8's default is 16 MiB per
 * semi-space, mostly empty in an idle agent) and one GC helper thread cut its idle RSS by about 25 MB for a
 * scavenge every few ms under load, which an agent's small allocations absorb. No TurboFan (`--no-opt`; Maglev still
 * optimises hot code): its first compilation, which an idle agent reaches within a minute (msgpackr's pack on the
 * heartbeat), maps about 5 MB more of the executable's code for good, and under load the agent spent no more CPU per
 * allocate+release pair without it (docs/benchmarks.md, footprint).
 */
export const APPS = [
  {
    name: 'allot-agent',
    entry: 'apps/agent/src/main.ts',
    execArgv: ['--max-semi-space-size=1', '--v8-pool-size=1', '--no-opt'],
    dashboard: false,
  },
  // The coordinator serves the dashboard (config.http): the executable carries its built files, so the .deb and the
  // image hold one file and every install serves the dashboard of its own release. An 8 MiB semi-space (V8's default
  // here is 16): at 10,000 hosts (2,100 reports/s) each coordinator's RSS max was 212-259 MiB against 343-376 with the
  // default, for the same CPU per report (64-99 µs vs 66-92); 4 MiB gave 236-262, and 1-2 MiB more RSS and more CPU
  // (112-150 µs: reports that live a little while are promoted, then the old generation grows and is marked more
  // often). docs/benchmarks.md, "Fleet".
  { name: 'allot-coordinator', entry: 'apps/coordinator/src/main.ts', execArgv: ['--max-semi-space-size=8'], dashboard: true },
  { name: 'allot', entry: 'apps/cli/src/main.ts', execArgv: [], dashboard: false },
] as const;
export type AppName = (typeof APPS)[number]['name'];
