// Builds the publishable @allot/client: dist/index.js (the client with allot's wire code bundled in, the npm
// dependencies left as imports), dist/index.d.ts (from the hand-written public types), and the wire contract as JSON
// Schema, one request and one reply schema per endpoint, generated from the zod schemas the processes validate with:
// schemas/ in the package (scheduler endpoints) and docs/wire-schemas/ in the repository (every endpoint).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_ENDPOINTS, SCHED_ENDPOINTS } from '@allot/protocol';
import { rolldown } from 'rolldown';
import { z } from 'zod';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(HERE, '..', '..');
const pkg = JSON.parse(readFileSync(join(HERE, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
const external = [...Object.keys(pkg.dependencies), ...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

/** One endpoint's request and reply as JSON Schema (what a value on the wire must look like). */
function schemasOf(
  endpoints: Record<string, { request: z.ZodType; reply: z.ZodType }>,
): Record<string, { request: unknown; reply: unknown }> {
  const out: Record<string, { request: unknown; reply: unknown }> = {};
  for (const [verb, spec] of Object.entries(endpoints)) {
    // Requests as a sender writes them (defaults optional), replies as they arrive; what JSON Schema cannot say
    // (refinements, transforms) is left open rather than failing the build.
    out[verb] = {
      request: z.toJSONSchema(spec.request, { io: 'input', unrepresentable: 'any' }),
      reply: z.toJSONSchema(spec.reply, { io: 'output', unrepresentable: 'any' }),
    };
  }
  return out;
}

function writeSchemas(dir: string, endpoints: Record<string, { request: unknown; reply: unknown }>, prefix: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [verb, { request, reply }] of Object.entries(endpoints)) {
    writeFileSync(
      join(dir, `${verb}.request.json`),
      `${JSON.stringify({ $id: `${prefix}.${verb}.request`, ...(request as object) }, null, 2)}\n`,
    );
    writeFileSync(
      join(dir, `${verb}.reply.json`),
      `${JSON.stringify({ $id: `${prefix}.${verb}.reply`, ...(reply as object) }, null, 2)}\n`,
    );
  }
}

export async function buildClient(): Promise<void> {
  rmSync(join(HERE, 'dist'), { recursive: true, force: true });
  const bundle = await rolldown({ input: join(HERE, 'src', 'index.ts'), platform: 'node', external, logLevel: 'warn' });
  await bundle.write({ file: join(HERE, 'dist', 'index.js'), format: 'esm' });
  await bundle.close();
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(HERE, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  const sched = schemasOf(SCHED_ENDPOINTS as unknown as Record<string, { request: z.ZodType; reply: z.ZodType }>);
  const agent = schemasOf(AGENT_ENDPOINTS as unknown as Record<string, { request: z.ZodType; reply: z.ZodType }>);
  writeSchemas(join(HERE, 'schemas'), sched, 'allot.sched');
  writeSchemas(join(ROOT, 'docs', 'wire-schemas', 'sched'), sched, 'allot.sched');
  writeSchemas(join(ROOT, 'docs', 'wire-schemas', 'agent'), agent, 'allot.agent');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await buildClient();
