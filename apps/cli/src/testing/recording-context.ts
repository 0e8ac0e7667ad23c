import type { CliContext } from '../context.ts';

/** A CliContext that records what a command prints, for tests. */
export interface RecordingContext extends CliContext {
  readonly stdout: string[];
  readonly stderr: string[];
  /** Everything printed to stdout, as one text. */
  text(): string;
  /** Simulates Ctrl-C. */
  interrupt(): void;
}

export function recordingContext(
  options: { env?: Record<string, string>; now?: number; isTTY?: boolean; cwd?: string } = {},
): RecordingContext {
  const stdout: string[] = [];
  const stderr: string[] = [];
  let interrupt: (signal: string) => void = () => undefined;
  const stop = new Promise<string>((resolve) => (interrupt = resolve));
  return {
    stdout,
    stderr,
    out: (text) => stdout.push(text),
    err: (text) => stderr.push(text),
    write: (text) => stdout.push(text),
    env: options.env ?? {},
    isTTY: options.isTTY ?? false,
    now: () => options.now ?? Date.now(),
    cwd: options.cwd ?? process.cwd(),
    stopRequested: () => stop,
    text: () => stdout.join('\n'),
    interrupt: () => interrupt('SIGINT'),
  };
}
