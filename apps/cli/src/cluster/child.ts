import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

export type ChildExit = { code: number | null; signal: NodeJS.Signals | null };

/** One process of the local cluster: its output goes to its log file, and its ready line is watched for. */
export interface Child {
  readonly name: string;
  readonly logFile: string;
  readonly pid: number | undefined;
  /** The ready line has been logged. */
  readonly ready: boolean;
  /** Resolves on exit, never rejects. A process that cannot be started exits with code -1. */
  readonly exited: Promise<ChildExit>;
  readonly running: boolean;
  /** Its stop signal, then SIGKILL after graceMs; resolves with the exit and whether it had to be killed. */
  stop(graceMs: number): Promise<{ exit: ChildExit; killed: boolean }>;
  /** SIGKILL now, synchronously (for the process exit hook). */
  killNow(): void;
}

export interface ChildSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Record<string, string>;
  readonly logFile: string;
  /** A stdout/stderr line that says the process serves (pino JSON `msg`); absent: ready once started. */
  readonly readyMsg?: string;
  /** How it is asked to stop; default SIGTERM. nats-server takes SIGINT: it exits 1 after a SIGTERM shutdown, 0 after SIGINT. */
  readonly stopSignal?: NodeJS.Signals;
}

function isReadyLine(line: string, msg: string): boolean {
  if (!line.startsWith('{')) return false;
  try {
    return (JSON.parse(line) as { msg?: unknown }).msg === msg;
  } catch {
    return false;
  }
}

/**
 * Starts a child in its own process group (detached), so the terminal's Ctrl-C reaches only the CLI, which then stops
 * the children in order instead of all of them at once.
 */
export function startChild(spec: ChildSpec): Child {
  const log: WriteStream = createWriteStream(spec.logFile, { flags: 'a' });
  log.write(`--- ${new Date().toISOString()} allot cluster starts ${spec.command} ${spec.args.join(' ')}\n`);
  let ready = spec.readyMsg === undefined;
  let running = true;
  let proc: ChildProcess;
  const exited = new Promise<ChildExit>((resolve) => {
    proc = spawn(spec.command, [...spec.args], { cwd: spec.cwd, env: spec.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let done = false;
    const finish = (exit: ChildExit) => {
      if (done) return;
      done = true;
      running = false;
      log.end(`--- ${new Date().toISOString()} exited code=${exit.code} signal=${exit.signal}\n`, () => resolve(exit));
    };
    proc.once('error', (e) => {
      log.write(`cannot start: ${e.message}\n`);
      finish({ code: -1, signal: null });
    });
    // 'close', not 'exit': all of the output is in the log file by then.
    proc.once('close', (code, signal) => finish({ code, signal }));
    for (const stream of [proc.stdout, proc.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        log.write(`${line}\n`);
        if (!ready && spec.readyMsg !== undefined && isReadyLine(line, spec.readyMsg)) ready = true;
      });
    }
  });

  const signal = (s: NodeJS.Signals) => {
    if (!running) return;
    try {
      proc.kill(s);
    } catch {
      // already gone
    }
  };

  return {
    name: spec.name,
    logFile: spec.logFile,
    get pid() {
      return proc.pid;
    },
    get ready() {
      return ready;
    },
    get running() {
      return running;
    },
    exited,
    stop: async (graceMs) => {
      let killed = false;
      signal(spec.stopSignal ?? 'SIGTERM');
      const timer = setTimeout(() => {
        killed = true;
        signal('SIGKILL');
      }, graceMs);
      const exit = await exited;
      clearTimeout(timer);
      return { exit, killed };
    },
    killNow: () => signal('SIGKILL'),
  };
}

/** The last lines of a log file, to show why a child died without sending the operator digging. */
export function tailOf(file: string, lines: number): string[] {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines);
  } catch {
    return [];
  }
}

export function describeExit(exit: ChildExit): string {
  if (exit.code === -1) return 'could not be started';
  return exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}
