/**
 * What a command may touch of the world: its output streams, the environment, the clock and the stop signal.
 * main.ts wires the real process; tests pass a recording one.
 */
export interface CliContext {
  /** Writes one line (or several, joined) to standard output. */
  readonly out: (text: string) => void;
  /** Writes one line to standard error. */
  readonly err: (text: string) => void;
  /** Writes raw text to standard output (watch redraws in place with it). */
  readonly write: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Standard output is a terminal: redraw in place; never colour or redraw otherwise. */
  readonly isTTY: boolean;
  readonly now: () => number;
  readonly cwd: string;
  /**
   * From the first call on, Ctrl-C (SIGINT) and SIGTERM no longer kill the process: the promise resolves with the
   * signal's name and the long-running command (watch, events --follow, cluster) stops cleanly. Short commands never
   * call it, so Ctrl-C still interrupts them at once.
   */
  readonly stopRequested: () => Promise<string>;
}
