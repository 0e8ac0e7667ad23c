// allot-agent ledger verify | export | import | compact: offline checks and backups of a host's ledger, run with the
// agent stopped (the ledger's lock refuses a second opener) and with the agent's own configuration, so the tool sees
// the host exactly as the agent would: same state directory, same limits, same restore.
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { err, ok, type Result } from '@allot/core';
import { LEDGER_FORMAT, seedLedger } from '@allot/ledger';
import { HostStateSnapshotSchema, type HostManager, type HostStateSnapshot } from '@allot/managers';
import type { Logger } from 'pino';
import { loadAgentConfig, type AgentConfig } from './config/index.ts';
import { createHostManager, createProbe } from './host.ts';
import { LedgerJournal } from './ledger-journal.ts';
import { secureStateDir } from './state-dir.ts';

export const LEDGER_TOOL_USAGE = `usage: allot-agent ledger <command> [--config <agent.json>]
  verify                 open the ledger as the agent would (discarding a torn tail, as a start does), restore the
                         host from it and print what it holds; exit 1 if it cannot be restored
  export [--out FILE]    the host's state as one JSON document (stdout by default): a backup
  import --from FILE     start an empty state directory from an export (a new disk); refuses one that holds records
  compact                write a snapshot of the current state and drop the records it covers
The agent must be stopped: the ledger's lock refuses a second process.`;

/** What an export file holds: the host's state at one seq, restorable with `import`. */
export interface LedgerExport {
  readonly kind: 'allot-ledger-export';
  readonly ledgerFormat: number;
  readonly nodeId: string;
  readonly exportedAt: number;
  readonly state: HostStateSnapshot;
}

/** One line of output per command: a summary a person or a script can read. */
export interface LedgerSummary {
  readonly nodeId: string;
  readonly ledgerDir: string;
  readonly ledgerFormat: number;
  readonly seq: number;
  readonly snapshotSeq: number;
  readonly recordsReplayed: number;
  readonly bytesDiscarded: number;
  readonly expiredWhileDown: number;
  readonly allocations: { readonly live: number; readonly reserved: number; readonly released: number };
}

interface Opened {
  readonly journal: LedgerJournal;
  readonly host: HostManager;
  readonly summary: LedgerSummary;
}

export interface LedgerToolIo {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly log: Logger;
  readonly stdout: (text: string) => void;
  /** Read when no --config names a file (the agent's own default, /etc/allot/agent.json). */
  readonly defaultConfigFile?: string;
}

/** Runs one command; the exit code is 0 on success, 1 when the ledger or the input is at fault, 2 on a usage error. */
export async function runLedgerTool(io: LedgerToolIo): Promise<{ code: number; message?: string }> {
  const [command, ...rest] = io.argv;
  const flags = parseFlags(rest);
  if (!flags.ok) return { code: 2, message: `${flags.error}\n${LEDGER_TOOL_USAGE}` };
  const loaded = loadAgentConfig({
    argv: flags.value.configArgv,
    env: io.env,
    readFile: (path) => readFileSync(path, 'utf8'),
    hostname: hostname(),
    ...(io.defaultConfigFile === undefined ? {} : { defaultConfigFile: io.defaultConfigFile }),
  });
  if (!loaded.ok) return { code: 2, message: loaded.error.message };
  const config = loaded.value;
  switch (command) {
    case 'verify':
      return report(await withLedger(config, io.log, (o) => Promise.resolve(ok(o.summary))), io);
    case 'export': {
      const exported = await withLedger(config, io.log, async (o) => exportOf(config, o));
      if (!exported.ok) return { code: 1, message: exported.error.message };
      const text = `${JSON.stringify(exported.value)}\n`;
      if (flags.value.out === undefined) io.stdout(text);
      else writeFileSync(flags.value.out, text, { mode: 0o600 });
      return { code: 0 };
    }
    case 'import': {
      if (flags.value.from === undefined) return { code: 2, message: `import needs --from <export file>\n${LEDGER_TOOL_USAGE}` };
      return report(await importExport(config, io.log, flags.value.from), io);
    }
    case 'compact':
      return report(await withLedger(config, io.log, (o) => compact(o)), io);
    default:
      return { code: 2, message: LEDGER_TOOL_USAGE };
  }
}

function report(result: Result<LedgerSummary>, io: LedgerToolIo): { code: number; message?: string } {
  if (!result.ok) return { code: 1, message: result.error.message };
  io.stdout(`${JSON.stringify(result.value)}\n`);
  return { code: 0 };
}

type Flags = { configArgv: string[]; out?: string; from?: string };

function parseFlags(args: readonly string[]): { ok: true; value: Flags } | { ok: false; error: string } {
  const configArgv: string[] = [];
  const values: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const match = /^--(config|out|from)(?:=(.*))?$/.exec(arg);
    if (match === null) return { ok: false, error: `unknown argument ${JSON.stringify(arg)}` };
    const name = match[1] as string;
    const value = match[2] ?? args[++i];
    if (value === undefined || value === '') return { ok: false, error: `--${name} needs a file path` };
    if (name === 'config') configArgv.push(`--config=${value}`);
    else values[name] = value;
  }
  return {
    ok: true,
    value: {
      configArgv,
      ...(values.out === undefined ? {} : { out: values.out }),
      ...(values.from === undefined ? {} : { from: values.from }),
    },
  };
}

function ledgerDirOf(config: AgentConfig): string {
  return join(config.stateDir, 'ledger');
}

/** Opens the ledger and restores the host from it exactly as the agent's start does, runs `fn`, then closes. */
async function withLedger<T>(config: AgentConfig, log: Logger, fn: (opened: Opened) => Promise<Result<T>>): Promise<Result<T>> {
  const dir = ledgerDirOf(config);
  const probe = await createProbe(config, log);
  if (!probe.ok) return probe;
  let journal: LedgerJournal;
  try {
    await secureStateDir(config.stateDir);
    journal = await LedgerJournal.open({ dir, log, onFatal: () => undefined, onDurable: () => undefined });
  } catch (e) {
    return err('internal', `cannot open the ledger in ${dir}: ${(e as Error).message}`, { dir });
  }
  try {
    const host = await createHostManager(config, probe.value, journal);
    if (!host.ok) return host;
    const durable = journal.durableState();
    const restored = await host.value.restore(durable.snapshot, durable.records);
    if (!restored.ok) return err('internal', `the ledger in ${dir} does not restore: ${restored.error.message}`, restored.error.details);
    const live = await host.value.getAllocations({ status: 'live' });
    if (!live.ok) return live;
    // Released allocations are kept for the retention window (so late retries are answered); the state holds them.
    const state = await host.value.exportState();
    if (!state.ok) return state;
    const summary: LedgerSummary = {
      nodeId: config.nodeId,
      ledgerDir: dir,
      ledgerFormat: LEDGER_FORMAT,
      seq: restored.value.seq,
      snapshotSeq: journal.recovery.snapshotSeq,
      recordsReplayed: journal.recovery.recordsReplayed,
      bytesDiscarded: journal.recovery.bytesDiscarded,
      expiredWhileDown: restored.value.expired,
      allocations: {
        live: live.value.length,
        reserved: live.value.filter((a) => a.status === 'reserved').length,
        released: state.value.released.length,
      },
    };
    const result = await fn({ journal, host: host.value, summary });
    await host.value.stop();
    return result;
  } finally {
    await journal.close();
  }
}

async function exportOf(config: AgentConfig, opened: Opened): Promise<Result<LedgerExport>> {
  const state = await opened.host.exportState();
  if (!state.ok) return state;
  return ok({
    kind: 'allot-ledger-export',
    ledgerFormat: LEDGER_FORMAT,
    nodeId: config.nodeId,
    exportedAt: Date.now(),
    state: state.value,
  });
}

async function compact(opened: Opened): Promise<Result<LedgerSummary>> {
  const state = await opened.host.exportState();
  if (!state.ok) return state;
  try {
    const result = await opened.journal.ledger.compact(state.value, state.value.seq);
    return ok({ ...opened.summary, snapshotSeq: result.snapshotSeq });
  } catch (e) {
    return err('internal', `compaction failed: ${(e as Error).message}`);
  }
}

/** Seeds an empty ledger from an export of this same node, then verifies it restores. */
async function importExport(config: AgentConfig, log: Logger, path: string): Promise<Result<LedgerSummary>> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    return err('invalid_request', `cannot read the export ${path}: ${(e as Error).message}`);
  }
  const header = raw as Partial<LedgerExport> | null;
  if (header?.kind !== 'allot-ledger-export') return err('invalid_request', `${path} is not an allot ledger export`);
  if (typeof header.ledgerFormat !== 'number' || header.ledgerFormat > LEDGER_FORMAT) {
    return err(
      'invalid_request',
      `${path} has ledger format ${String(header.ledgerFormat)}; this allot-agent reads formats up to ${LEDGER_FORMAT}`,
    );
  }
  const state = HostStateSnapshotSchema.safeParse(header.state);
  if (!state.success)
    return err('invalid_request', `${path}: the state does not match the host state schema: ${state.error.issues[0]?.message ?? ''}`);
  // Allocation ids are <nodeId>:<n>; another node's state would answer for allocations this host never made.
  if (state.data.nodeId !== config.nodeId) {
    return err(
      'invalid_request',
      `${path} is an export of node ${state.data.nodeId}, and this agent is ${config.nodeId}; restore it on that node's agent`,
    );
  }
  if (state.data.seq < 1) return err('invalid_request', `${path} holds an empty state (seq 0): nothing to restore`);
  try {
    await secureStateDir(config.stateDir);
    await seedLedger(ledgerDirOf(config), state.data.seq, state.data);
  } catch (e) {
    return err('invalid_request', `cannot restore into ${ledgerDirOf(config)}: ${(e as Error).message}`);
  }
  return withLedger(config, log, (o) => Promise.resolve(ok(o.summary)));
}
