import { AllotEventSchema, decode, EVENT_KINDS, eventSubject, EVENTS_STREAM } from '@allot/protocol';
import { NodeIdSchema, RequestIdSchema, TenantIdSchema } from '@allot/core';
import { jetstream, type Consumer, type JsMsg } from '@nats-io/jetstream';
import { COMMON_OPTIONS, parseArgs, parseInteger, tryParse, usageError } from '../args.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from '../connection.ts';
import type { CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { reportError } from '../report.ts';
import { escapeControl, renderEvent } from '../render/events.ts';
import { withSession } from '../run-request.ts';
import type { Command } from './command.ts';
import { matches, parseInstant, pastUntil, startOf, type EventsQuery } from './events-query.ts';

const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 100_000;

const HELP = `Usage: allot events [--follow] [--node <id>] [--kind <kind>] [--tenant <id>] [--request <id>]
                   [--since <t>] [--until <t>] [--after-seq <n>] [--limit <n>]

The allocation lifecycle audit log (stream ALLOT_EVENTS, kept 7 days), oldest first, one event per line.
Without --follow it prints what is stored and exits; with --follow it then waits for new events until Ctrl-C.

  --follow, -f      keep printing new events
  --node <id>       one node's events (cluster for the coordinators' own: refused placements, lost nodes)
  --kind <kind>     one kind: ${EVENT_KINDS.join(', ')}
  --tenant <id>     one tenant's events
  --request <id>    one request id's events
  --since <t>       events stored at or after t: an ISO instant (2026-11-30T10:00:00Z) or ago (30s, 10m, 2h, 7d);
                    the server starts there, nothing before it is read
  --until <t>       events stored at or before t (same forms); not with --follow
  --after-seq <n>   events after stream sequence n: the page after one that printed "more: --after-seq n"
  --limit <n>       print at most n events, then the cursor of the next page on stderr (1 to ${MAX_LIMIT},
                    default ${DEFAULT_LIMIT}); not with --follow

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
        options: {
          ...COMMON_OPTIONS,
          ...CONNECTION_OPTIONS,
          follow: { type: 'boolean', short: 'f' },
          node: { type: 'string' },
          kind: { type: 'string' },
          tenant: { type: 'string' },
          request: { type: 'string' },
          since: { type: 'string' },
          until: { type: 'string' },
          'after-seq': { type: 'string' },
          limit: { type: 'string' },
        },
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
    if (v.node !== undefined && !NodeIdSchema.safeParse(v.node).success)
      return usageError(ctx, 'events', `--node: "${v.node}" is not a node id`);
    if (v.kind !== undefined && !(EVENT_KINDS as readonly string[]).includes(v.kind))
      return usageError(ctx, 'events', `--kind: "${v.kind}" is not one of ${EVENT_KINDS.join(', ')}`);
    if (v.tenant !== undefined && !TenantIdSchema.safeParse(v.tenant).success)
      return usageError(ctx, 'events', `--tenant: "${v.tenant}" is not a tenant id`);
    if (v.request !== undefined && !RequestIdSchema.safeParse(v.request).success)
      return usageError(ctx, 'events', `--request: "${v.request}" is not a request id`);
    const since = v.since === undefined ? undefined : parseInstant(v.since, ctx.now());
    if (v.since !== undefined && since === undefined)
      return usageError(ctx, 'events', `--since: "${v.since}" is not an ISO instant or an age like 10m`);
    const until = v.until === undefined ? undefined : parseInstant(v.until, ctx.now());
    if (v.until !== undefined && until === undefined)
      return usageError(ctx, 'events', `--until: "${v.until}" is not an ISO instant or an age like 10m`);
    const afterSeq = v['after-seq'] === undefined ? undefined : parseInteger('after-seq', v['after-seq'], 0, Number.MAX_SAFE_INTEGER);
    if (afterSeq !== undefined && !afterSeq.ok) return usageError(ctx, 'events', afterSeq.message);
    const limit = v.limit === undefined ? undefined : parseInteger('limit', v.limit, 1, MAX_LIMIT);
    if (limit !== undefined && !limit.ok) return usageError(ctx, 'events', limit.message);
    if (v.follow && (until !== undefined || limit !== undefined))
      return usageError(ctx, 'events', '--until and --limit end a listing; --follow does not end');
    const query: EventsQuery = {
      limit: limit?.value ?? DEFAULT_LIMIT,
      ...(v.tenant === undefined ? {} : { tenantId: v.tenant }),
      ...(v.request === undefined ? {} : { requestId: v.request }),
      ...(since === undefined ? {} : { since }),
      ...(until === undefined ? {} : { until }),
      ...(afterSeq === undefined ? {} : { afterSeq: afterSeq.value }),
    };
    const filter = eventSubject(v.node ?? '*', v.kind ?? '*');
    const json = v.json === true;
    return withSession(ctx, 'events', v, async (session) => {
      let consumer: Consumer;
      try {
        consumer = await jetstream(session.nc).consumers.get(EVENTS_STREAM, { filter_subjects: filter, ...startOf(query) });
      } catch (e) {
        return reportError(
          ctx,
          'events',
          {
            code: 'unavailable',
            message: `cannot read the stream ${EVENTS_STREAM}: ${(e as Error).message} (has a coordinator or agent created it yet?)`,
          },
          json,
        );
      }
      const print = (m: JsMsg) => printEvent(ctx, m, json, query);
      return v.follow ? follow(consumer, print, ctx) : drain(consumer, print, query, ctx);
    });
  },
};

/** Prints the event if it matches; says whether it printed (a malformed one is reported on stderr and counts). */
function printEvent(ctx: CliContext, m: JsMsg, json: boolean, query: EventsQuery): boolean {
  const event = decode(AllotEventSchema, m.data, Number.POSITIVE_INFINITY);
  // A malformed event is shown as such, never a reason to stop reading the log.
  if (!event.ok) ctx.err(escapeControl(`allot events: message ${m.seq} on ${m.subject} is not a valid event: ${event.error.message}`));
  else if (!matches(event.value, query)) return false;
  else ctx.out(json ? JSON.stringify(event.value) : renderEvent(event.value));
  return true;
}

/**
 * What is stored now from the start position, then exit: at the last stored message (an ordered consumer sees
 * pending=0 there), at the first stored after --until, or once --limit are printed, saying on stderr where the next page
 * starts. A fetch asks no more than the page needs, so the consumer does not run far past the end of a page.
 */
async function drain(consumer: Consumer, print: (m: JsMsg) => boolean, query: EventsQuery, ctx: CliContext): Promise<number> {
  let printed = 0;
  for (;;) {
    const batch = await consumer.fetch({ max_messages: Math.min(256, query.limit - printed + 1), expires: DRAIN_WAIT_MS });
    let got = 0;
    for await (const m of batch) {
      got += 1;
      if (pastUntil(Math.floor(m.info.timestampNanos / 1e6), query)) return EXIT.ok;
      if (print(m)) printed += 1;
      if (m.info.pending === 0) return EXIT.ok;
      if (printed >= query.limit) {
        ctx.err(`more: --after-seq ${m.seq}`);
        return EXIT.ok;
      }
    }
    if (got === 0) return EXIT.ok;
  }
}

async function follow(consumer: Consumer, print: (m: JsMsg) => unknown, ctx: CliContext): Promise<number> {
  const messages = await consumer.consume();
  void ctx.stopRequested().then(() => messages.stop());
  for await (const m of messages) print(m);
  return EXIT.ok;
}
