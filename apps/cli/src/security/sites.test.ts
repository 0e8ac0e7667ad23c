import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli.ts';
import { recordingContext } from '../testing/recording-context.ts';
import { ensureSites } from './sites.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function freshDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'allot-sites-'));
  dirs.push(d);
  return d;
}

describe('allot security add-site (ensureSites)', () => {
  it("gives each site's link account on the hub only its own nodes' usage, and keeps every key on a re-run", async () => {
    const dir = await freshDir();
    const first = await ensureSites(dir, [
      { site: 'a', nodes: ['a1'], tenants: ['acme'] },
      { site: 'b', nodes: ['b1'] },
    ]);
    if (!first.ok) throw new Error(first.error.message);
    const linkSeed = await readFile(join(dir, 'sites', 'a', 'link', 'nkey.seed'), 'utf8');
    const a1Seed = await readFile(join(dir, 'sites', 'a', 'identities', 'agent', 'a1', 'nkey.seed'), 'utf8');

    const again = await ensureSites(dir, [{ site: 'a', nodes: ['a2'] }]);
    if (!again.ok) throw new Error(again.error.message);
    const hub = await readFile(again.value.hubAuthConfig, 'utf8');
    const account = (name: string) => hub.slice(hub.indexOf(`${name}: {`), hub.indexOf('exports', hub.indexOf(`${name}: {`)));
    expect(account('LINK_A')).toContain('publish: { allow: ["allot.usage.a1", "allot.usage.a2"] }');
    expect(account('LINK_B')).toContain('publish: { allow: ["allot.usage.b1"] }');
    expect(await readFile(join(dir, 'sites', 'a', 'link', 'nkey.seed'), 'utf8')).toBe(linkSeed);
    expect(await readFile(join(dir, 'sites', 'a', 'identities', 'agent', 'a1', 'nkey.seed'), 'utf8')).toBe(a1Seed);
    // The link file holds the seed: only its owner may read it.
    const link = join(dir, 'sites', 'a', 'nats', 'site-link.conf');
    expect((await stat(link)).mode & 0o777).toBe(0o600);
    expect(await readFile(link, 'utf8')).toContain(`nkey: "${linkSeed.trim()}"`);
    expect(await readFile(again.value.sites.get('a')?.serverConfig ?? '', 'utf8')).toMatch(/domain: "a"[\s\S]*include "site-link.conf"/);
  });

  it('refuses a node id another site has (the view and the link accounts key by node id)', async () => {
    const dir = await freshDir();
    expect((await ensureSites(dir, [{ site: 'a', nodes: ['n1'] }])).ok).toBe(true);
    const clash = await ensureSites(dir, [{ site: 'b', nodes: ['n1'] }]);
    expect(clash.ok ? 'made' : clash.error.message).toBe('node n1 is in site a already: node ids are unique across sites');
  });

  it('allot security add-site: the leaf URL a site dials and the hub leaf port end up in the generated files', async () => {
    const dir = await freshDir();
    const ctx = recordingContext();
    const code = await runCli(
      ['security', 'add-site', 'east', '--dir', dir, '--node', 'e1', '--leaf-port', '17422', '--leaf-url', 'nats-leaf://hub.example:7422'],
      ctx,
    );
    expect({ code, stderr: ctx.stderr }).toEqual({ code: 0, stderr: [] });
    expect(ctx.text()).toContain("reload site east's servers, then restart the hub's one at a time");
    expect(await readFile(join(dir, 'sites', 'east', 'nats', 'site-link.conf'), 'utf8')).toContain(
      'urls: ["nats-leaf://hub.example:7422"]',
    );
    expect(await readFile(join(dir, 'hub', 'nats', 'hub-auth.conf'), 'utf8')).toContain('listen: "0.0.0.0:17422"');
    const usage = recordingContext();
    expect(await runCli(['security', 'add-site', 'east', 'west', '--dir', dir], usage)).toBe(2);
  });
});
