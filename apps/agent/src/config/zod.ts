/*
 * zod for the agent's config schema.
 * WORKAROUND: apps/agent/package.json does not list zod, and pnpm's strict layout hides @allot/core's copy from
 * `import 'zod'` here. Until `zod` is added to the agent's dependencies, load the very copy @allot/core uses (so
 * its schemas compose with ours). Replace this line with `export { z } from 'zod';` once the dependency is there.
 */
export { z } from '../../../../packages/core/node_modules/zod/index.js';
