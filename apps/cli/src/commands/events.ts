import { AllotEventSchema, decode, EVENT_KINDS, eventSubject, EVENTS_STREAM } from '@allot/protocol';
import { NodeIdSchema } from '@allot/core';
import { DeliverPolicy, jetstream, type Consumer, type JsMsg } from '@nats-io/jetstream';
import { COMMON_OPTIONS, parseArgs, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import type { CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { reportError } from '../report.ts';
import { escapeControl, renderEvent } from '../render/events.ts';
import { withSession } from '../run-request.ts';
import type { Command } from './command.ts';

const HELP = `Usage: allot events [--follow] [--node <id>] [--kind <kind>]

The allocation lifecycle audit log (stream ALLOT_EVENTS, kept 7 days), oldest first, one event per line.
Without --follow it prints what is stored and exits; with --follow it then waits for new events until Ctrl-C.

  --follow, -f      keep printing new events
  --node <id>       one node's events (cluster for the coordinators' own: refused placements, lost nodes)
  --kind <kind>     one kind: ${EVENT_KINDS.join(', ')}

With --json, one JSON event per line.

${CONNECTION_HELP}`;

/** How long an empty fetch waits before the command concludes there is nothing (more) stored. */
const DRAIN_WAIT_MS = 1000;

export const eventsCommand: Command = {
  name: 'events',
  summary: 'the allocation audit log (--follow for new events)',
  help: HELP,
  async run(args, ctx) {
    const parsed = tryParse(() =>
      parseArgs({
        args,
        options: { ...COMMON_OPTIONS, ...CONNECTION_OPTIONS, follow: { type: 'boolean', short: 'f' }, node: { type: 'string' }, kind: { type: 'string' } },
        strict: true,
        allowPositionals: false,
      }),
    );
    if (!parsed.ok) return usageError(ctx, 'events', parsed.message);
    const v = parsed.value.values;
    if (v.help) {
      ctx.out(HELP);
      return EXIT.ok;
    }
    if (v.node !== undefined && !NodeIdSchema.safeParse(v.node).success) return usageError(ctx, 'events', `--node: "${v.node}" is not a node id`);
    if (v.kind !== undefined && !(EVENT_KINDS as readonly string[]).includes(v.kind)) return usageError(ctx, 'events', `--kind: "${v.kind}" is not one of ${EVENT_KINDS.join(', ')}`);
    const filter = eventSubject(v.node ?? '*', v.kind ?? '*');
    const json = v.json === true;
    return withSession(ctx, 'events', v, async (session) => {
      let consumer: Consumer;
      try {
        consumer = await jetstream(session.nc).consumers.get(EVENTS_STREAM, { filter_subjects: filter, deliver_policy: DeliverPolicy.All });
      } catch (e) {
        return reportError(ctx, 'events', { code: 'unavailable', message: `cannot read the stream ${EVENTS_STREAM}: ${(e as Error).message} (has a coordinator or agent created it yet?)` }, json);
      }
      const print = (m: JsMsg) => printEvent(ctx, m, json);
      return v.follow ? follow(consumer, print, ctx) : drain(consumer, print);
    });
  },
};

function printEvent(ctx: CliContext, m: JsMsg, json: boolean): void {
  const event = decode(AllotEventSchema, m.data, Number.POSITIVE_INFINITY);
  // A malformed event is shown as such, never a reason to stop reading the log.
  if (!event.ok) ctx.err(escapeControl(`allot events: message ${m.seq} on ${m.subject} is not a valid event: ${event.error.message}`));
  else ctx.out(json ? JSON.stringify(event.value) : renderEvent(event.value));
}

/** Everything stored now, then exit. An ordered consumer sees pending=0 on the last stored message. */
async function drain(consumer: Consumer, print: (m: JsMsg) => void): Promise<number> {
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 256, expires: DRAIN_WAIT_MS });
    let got = 0;
    for await (const m of batch) {
      got += 1;
      print(m);
      if (m.info.pending === 0) return EXIT.ok;
    }
    if (got === 0) return EXIT.ok;
  }
}

async function follow(consumer: Consumer, print: (m: JsMsg) => void, ctx: CliContext): Promise<number> {
  const messages = await consumer.consume();
  void ctx.stopRequested().then(() => messages.stop());
  for await (const m of messages) print(m);
  return EXIT.ok;
}
