import type { SchedVerb } from '@allot/protocol';
import { usageError } from './args.ts';
import { connectionConfig, type ConnectionFlags } from './connection.ts';
import type { CliContext } from './context.ts';
import { EXIT } from './exit-codes.ts';
import { reportError } from './report.ts';
import { openSession, type SchedReply, type Session } from './session.ts';

/**
 * Connects with the command's connection flags, runs `work`, and closes. A bad flag is exit 2, NATS out of reach is
 * exit 3; `work` returns its own exit code.
 */
export async function withSession(
  ctx: CliContext,
  command: string,
  flags: ConnectionFlags & { json?: boolean | undefined },
  work: (session: Session) => Promise<number>,
): Promise<number> {
  const config = connectionConfig(flags, ctx.env);
  if (!config.ok) return usageError(ctx, command, config.message);
  const session = await openSession(config.value);
  if (!session.ok) return reportError(ctx, command, session.error, flags.json === true);
  try {
    return await work(session.value);
  } finally {
    await session.value.close();
  }
}

/** One scheduler request: the reply as JSON (--json) or rendered for people, an error reply as its exit code. */
export async function requestAndPrint<V extends SchedVerb>(
  ctx: CliContext,
  command: string,
  session: Session,
  verb: V,
  payload: unknown,
  json: boolean,
  render: (value: SchedReply<V>) => string,
): Promise<number> {
  const reply = await session.call(verb, payload);
  if (!reply.ok) return reportError(ctx, command, reply.error, json);
  ctx.out(json ? JSON.stringify(reply.value, null, 2) : render(reply.value));
  return EXIT.ok;
}
