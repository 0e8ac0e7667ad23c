import { decode, USAGE_STREAM, USAGE_SUBJECTS } from '@allot/protocol';
import { UsageSnapshotSchema, type UsageSnapshot } from '@allot/core';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { COMMON_OPTIONS, parseArgs, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import { EXIT } from '../exit-codes.ts';
import { reportError } from '../report.ts';
import { renderWatchFrame } from '../render/watch.ts';
import { withSession } from '../run-request.ts';
import type { Command } from './command.ts';

const HELP = `Usage: allot watch

Live cluster and per-node usage, redrawn in place on every usage snapshot the agents publish (stream ALLOT_USAGE).
Reads the stream directly, so it works without a coordinator; liveness is judged from each node's heartbeat.
Ctrl-C exits. When standard output is not a terminal, each frame is printed after the last.

${CONNECTION_HELP.replace(/\n\s+--json[^\n]*/, '')}`;

/** Snapshots arriving together (one per node per heartbeat) are drawn as one frame. */
const FRAME_COALESCE_MS = 100;
const CLEAR_SCREEN = '\u001b[H\u001b[2J';

export const watchCommand: Command = {
  name: 'watch',
  summary: 'live cluster and per-node usage in the terminal',
  help: HELP,
  async run(args, ctx) {
    const parsed = tryParse(() =>
      parseArgs({ args, options: { ...COMMON_OPTIONS, ...CONNECTION_OPTIONS }, strict: true, allowPositionals: false }),
    );
    if (!parsed.ok) return usageError(ctx, 'watch', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(HELP);
      return EXIT.ok;
    }
    if (v.json)
      return usageError(ctx, 'watch', "--json: watch draws for people; scripts read 'allot usage --json' or the ALLOT_USAGE stream");
    return withSession(ctx, 'watch', v, async (session) => {
      let messages;
      try {
        const consumer = await jetstream(session.nc).consumers.get(USAGE_STREAM, {
          filter_subjects: USAGE_SUBJECTS,
          deliver_policy: DeliverPolicy.LastPerSubject,
        });
        messages = await consumer.consume({ expires: 5_000, idle_heartbeat: 2_000 }); // quick recovery when a server dies
      } catch (e) {
        return reportError(
          ctx,
          'watch',
          { code: 'unavailable', message: `cannot read the stream ${USAGE_STREAM}: ${(e as Error).message} (has an agent started yet?)` },
          false,
        );
      }
      const latest = new Map<string, { snapshot: UsageSnapshot; receivedAt: number }>();
      let pending: ReturnType<typeof setTimeout> | undefined;
      const draw = () => {
        pending = undefined;
        const frame = renderWatchFrame(latest, ctx.now());
        if (ctx.isTTY) ctx.write(`${CLEAR_SCREEN}${frame}\n`);
        else ctx.out(`${frame}\n`);
      };
      const stopped = messages;
      void ctx.stopRequested().then(() => stopped.stop());
      if (ctx.isTTY) ctx.write(`${CLEAR_SCREEN}waiting for usage snapshots...\n`);
      for await (const m of messages) {
        const snapshot = decode(UsageSnapshotSchema, m.data, Number.POSITIVE_INFINITY);
        if (!snapshot.ok) continue; // a malformed snapshot is not drawn; the next heartbeat replaces it
        const known = latest.get(snapshot.value.nodeId);
        // An older incarnation's or an out-of-order snapshot must not overwrite a newer one.
        if (known && known.snapshot.bootId === snapshot.value.bootId && known.snapshot.seq > snapshot.value.seq) continue;
        latest.set(snapshot.value.nodeId, {
          snapshot: snapshot.value,
          receivedAt: Math.min(ctx.now(), Math.max(snapshot.value.at, ctx.now() - 60_000)),
        });
        pending ??= setTimeout(draw, FRAME_COALESCE_MS);
      }
      if (pending !== undefined) clearTimeout(pending);
      return EXIT.ok;
    });
  },
};
