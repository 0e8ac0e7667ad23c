import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runCli } from '../cli.ts';
import { recordingContext } from '../testing/recording-context.ts';

async function script(shell: string): Promise<string> {
  const ctx = recordingContext();
  expect(await runCli(['completion', shell], ctx)).toBe(0);
  return ctx.text();
}

/** What bash offers for the words typed so far (the last one is being completed), with the generated script loaded. */
function bashOffers(completion: string, typed: string[]): string[] {
  const words = typed.map((w) => `'${w}'`).join(' ');
  const out = execFileSync(
    'bash',
    ['-c', `${completion}\nCOMP_WORDS=(${words}); COMP_CWORD=${typed.length - 1}; _allot; printf '%s\\n' "\${COMPREPLY[@]}"`],
    { encoding: 'utf8' },
  );
  return out.split('\n').filter((w) => w !== '');
}

describe('allot completion', () => {
  it("bash: completes commands, subcommands and each command's own flags", async () => {
    const bash = await script('bash');
    expect(bashOffers(bash, ['allot', 'quo'])).toEqual(['quotas']);
    expect(bashOffers(bash, ['allot', 'quotas', ''])).toEqual(['get', 'import-legacy', 'recount', 'set']);
    expect(bashOffers(bash, ['allot', 'place', '--te'])).toEqual(['--tenant']);
    expect(bashOffers(bash, ['allot', 'node', 'de'])).toEqual(['decommission']);
    expect(bashOffers(bash, ['allot', 'security', 'add-'])).toEqual(expect.arrayContaining(['add-node', 'add-tenant', 'add-operator']));
    expect(bashOffers(bash, ['allot', 'completion', ''])).toEqual(['bash', 'zsh']);
    expect(bashOffers(bash, ['allot', '--ver'])).toEqual(['--version']);
    // Flags of another command are not offered: --max-vms is a quota's, not a placement's.
    expect(bashOffers(bash, ['allot', 'place', '--max-v'])).toEqual([]);
    expect(bashOffers(bash, ['allot', 'quotas', '--max-v'])).toEqual(['--max-vcpus', '--max-vms', '--max-vms-per-node']);
  });

  it('zsh: a #compdef script naming every command with its summary', async () => {
    const zsh = await script('zsh');
    expect(zsh.startsWith('#compdef allot\n')).toBe(true);
    expect(zsh).toContain("'place:");
    expect(zsh).toContain('quotas) subs=(get import-legacy recount set);');
  });

  it('refuses an unknown shell with its usage', async () => {
    const ctx = recordingContext();
    expect(await runCli(['completion', 'fish'], ctx)).toBe(2);
    expect(ctx.stderr.join('\n')).toContain('unknown shell "fish": bash or zsh');
  });
});
