/* zod for the agent's config schema: one copy shared with @allot/core (same version range), so schemas compose. */
export { z } from 'zod';
