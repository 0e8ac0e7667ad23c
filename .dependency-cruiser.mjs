// The import graph's rules, checked by `pnpm lint` (the root's lint:graph task; docs/architecture.md draws the floors).
// A workspace package is `packages/<name>` or `apps/<name>`; their tests and benchmarks are held to the same rules.
// `test/` (the integration, chaos and simulation bed, and the NATS harness packages' tests start servers with) stands
// above every floor: it drives the apps' own modules on purpose, so it is checked for cycles only.
const WORKSPACE = '^(packages/[^/]+|apps/[^/]+)/';
// What a package's package.json `exports` names: its entry, the `./testing` of managers and core, protocol's `./http`.
const ENTRY = '^(packages|apps)/[^/]+/src/(index|testing/index)\\.ts$|^packages/protocol/src/http-api\\.ts$';
// The dashboard: a Vite bundle for the browser.
const DASHBOARD = '^apps/dashboard/';

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-cycles',
      comment:
        'A cycle makes load order matter and hides which module is the lower one. Type-only cycles count too: erased ' +
        'before Node loads anything, they still hide the lower module; types two modules share go in a leaf of their own.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'packages-never-import-apps',
      comment: 'Packages are the floors apps stand on; an arrow back up would make a package need a process.',
      severity: 'error',
      from: { path: '^packages/' },
      to: { path: '^apps/' },
    },
    {
      name: 'core-imports-no-workspace-package',
      comment:
        'core is the domain at the bottom: its types and schemas, error codes, the ResourceManager contract; it stands on nothing of ours.',
      severity: 'error',
      from: { path: '^packages/core/' },
      to: { path: WORKSPACE, pathNot: '^packages/core/' },
    },
    {
      name: 'protocol-stands-on-core-only',
      comment: 'protocol is the wire: the domain of core put into messages, subjects and bytes; nothing else of ours.',
      severity: 'error',
      from: { path: '^packages/protocol/' },
      to: { path: WORKSPACE, pathNot: '^packages/(protocol|core)/' },
    },
    {
      name: 'domain-packages-speak-no-wire',
      comment:
        'managers, placement, quota, ledger and actor work on the domain (core); the processes (apps) and their transport ' +
        '(nats, telemetry) put it on the wire.',
      severity: 'error',
      from: { path: '^packages/(managers|placement|quota|ledger|actor)/' },
      // by name too: without protocol among its package's dependencies the import does not resolve to a path
      to: { path: '^(packages/protocol/|@allot/protocol)' },
    },
    {
      name: 'other-packages-through-their-entry',
      comment: 'Another workspace package is imported by its name and through its entry (its exports), never its src/ files.',
      severity: 'error',
      from: { path: WORKSPACE },
      to: { path: WORKSPACE, pathNot: ['^$1', ENTRY] },
    },
    {
      name: 'other-packages-by-name',
      comment: 'A relative path into another workspace package skips its package.json (exports, dependencies): use its name.',
      severity: 'error',
      from: { path: WORKSPACE },
      to: { path: WORKSPACE, pathNot: '^$1', dependencyTypes: ['local'] },
    },
    {
      name: 'dashboard-reaches-only-core-and-protocol',
      comment:
        'The dashboard is built by Vite for the browser: of our packages it reads only the entries of core and protocol (the HTTP API).',
      severity: 'error',
      from: { path: DASHBOARD },
      to: { path: WORKSPACE, pathNot: [DASHBOARD, '^packages/(core|protocol)/src/(index|http-api)\\.ts$'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist|\\.turbo|\\.tools)/' },
    tsPreCompilationDeps: true,
    combinedDependencies: false,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'default'],
      extensions: ['.ts', '.js', '.tsx', '.mjs'],
    },
    reporterOptions: {
      archi: { collapsePattern: '^(packages|apps)/[^/]+|^test' },
    },
  },
};
