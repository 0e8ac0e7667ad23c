import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { registerCleanup } from './cleanup.ts';

export type SpawnOptions = {
  /** Shown in errors and in cleanup failures. */
  name: string;
  /** A .ts (or .js) file, run with this Node (process.execPath), so type stripping applies. */
  script: string;
  /** Run `script` itself as the executable (a release artifact), not with this Node. */
  executable?: boolean;
  args?: string[];
  /** Added to the parent's environment. */
  env?: Record<string, string>;
  cwd?: string;
};

/** A stdout line: the parsed object when the line is JSON (pino logs), else the raw text. */
export type OutputLine = Record<string, unknown> | string;

export type ProcessExit = { code: number | null; signal: NodeJS.Signals | null };

/** A child process the test owns. */
export type ProcessHandle = {
  readonly name: string;
  readonly pid: number;
  /** Every stdout line so far, in order. */
  readonly lines: OutputLine[];
  /** Every stderr line so far (raw text). */
  readonly stderr: string[];
  /** Resolves on exit; never rejects. */
  readonly exited: Promise<ProcessExit>;
  /** Resolves with the first stdout line (past or future) that matches; rejects on timeout or exit. */
  waitForLine(predicate: (line: OutputLine) => boolean, timeoutMs?: number): Promise<OutputLine>;
  /** Sends `signal`, waits up to graceMs for the exit, then SIGKILLs; resolves with the exit code (null if killed by signal). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
  /** SIGKILL, waits for the exit. */
  kill(): Promise<ProcessExit>;
};

function parseLine(text: string): OutputLine {
  if (text.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    } catch {
      // not JSON after all: keep the text
    }
  }
  return text;
}

/** Spawns `node <script> ...args`, collecting its output; cleanupAll() kills it if the test does not. */
export function spawnProcess(options: SpawnOptions): ProcessHandle {
  const [command, args] =
    options.executable === true ? [options.script, options.args ?? []] : [process.execPath, [options.script, ...(options.args ?? [])]];
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: OutputLine[] = [];
  const stderr: string[] = [];
  const watchers = new Set<(line: OutputLine) => void>();
  createInterface({ input: child.stdout }).on('line', (text) => {
    const line = parseLine(text);
    lines.push(line);
    for (const watcher of watchers) watcher(line);
  });
  createInterface({ input: child.stderr }).on('line', (text) => stderr.push(text));

  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: -1, signal: null }));
  });
  const running = () => child.exitCode === null && child.signalCode === null;

  const kill = async (): Promise<ProcessExit> => {
    if (running()) child.kill('SIGKILL');
    return exited;
  };
  const unregister = registerCleanup(
    `process ${options.name}`,
    async () => void (await kill()),
    () => child.kill('SIGKILL'),
  );
  void exited.then(unregister);

  const waitForLine = (predicate: (line: OutputLine) => boolean, timeoutMs = 10_000): Promise<OutputLine> => {
    const seen = lines.find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        watchers.delete(watcher);
      };
      const watcher = (line: OutputLine) => {
        if (!predicate(line)) return;
        done();
        resolve(line);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `${options.name}: no matching line within ${timeoutMs} ms; last lines: ${JSON.stringify(lines.slice(-5))}; stderr: ${stderr.slice(-5).join(' | ')}`,
          ),
        );
      }, timeoutMs);
      watchers.add(watcher);
      void exited.then((exit) => {
        if (!watchers.has(watcher)) return;
        done();
        reject(
          new Error(
            `${options.name} exited (code ${exit.code}, signal ${exit.signal}) before a matching line; stderr: ${stderr.slice(-5).join(' | ')}`,
          ),
        );
      });
    });
  };

  return {
    name: options.name,
    pid: child.pid ?? -1,
    lines,
    stderr,
    exited,
    waitForLine,
    stop: async (signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) => {
      if (running()) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const exit = await exited;
      clearTimeout(timer);
      return exit.code;
    },
    kill,
  };
}
