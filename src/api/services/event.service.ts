// EventService handlers: listing and streaming persisted events, and managing webhook subscriptions. The stream
// is read by polling PostgreSQL (a short interval, gap-aware positions: see engine/delivery/event-stream.ts), which needs
// no extra connection per watcher and works the same behind any number of API replicas.
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Pool } from "pg";
import { EventService } from "../../gen/kindling/v1/event_service_pb.js";
import { WebhookDeliverySchema, WebhookDeliveryState, WebhookSubscriptionSchema } from "../../gen/kindling/v1/event_pb.js";
import type { EventType } from "../../gen/kindling/v1/event_pb.js";
import type { DeliveryStatus, StreakEventType } from "../../db/entities/index.ts";
import type { DefinitionCatalog } from "../../engine/definitions/definition-catalog.ts";
import { createStreamFloor, latestSeq, listEvents, pause, readSlice, retentionFloor } from "../../engine/delivery/event-stream.ts";
import type { StoredDelivery, StoredSubscription, WebhookStore } from "../../engine/delivery/webhook-store.ts";
import { eventMessages, eventTypeFromProto, eventTypeToProto, seqOfCursor } from "../../engine/delivery/event-messages.ts";
import { decodePageToken, encodePageToken, keysetPage, pageSize } from "../pagination.ts";
import { failedPrecondition, invalidArgument } from "../errors.ts";
import type { Principal } from "../context.ts";
import { principalOf } from "../context.ts";
import { assertOwnMember, definitionFilter } from "./member-streak.service.ts";

export interface EventServiceDeps {
  readonly pool: Pool;
  readonly catalog: DefinitionCatalog;
  readonly webhooks: WebhookStore;
  /** How often a watch stream looks for new events. */
  readonly watchPollMs?: number;
  /** How long a watch stream waits on a gap in event ids before treating it as settled (see event-stream.ts). */
  readonly gapTimeoutMs?: number;
}

const DEFAULT_EVENT_PAGE = 100;
const SLICE = 1000;

const deliveryStates: Record<DeliveryStatus, WebhookDeliveryState> = {
  PENDING: WebhookDeliveryState.PENDING,
  RETRYING: WebhookDeliveryState.RETRYING,
  SUCCEEDED: WebhookDeliveryState.SUCCEEDED,
  FAILED: WebhookDeliveryState.FAILED,
};

const types = (list: readonly EventType[]) => list.map(eventTypeFromProto).filter((t): t is StreakEventType => t !== undefined);
const ts = (v: number | null) => (v === null ? undefined : timestampFromMs(v));

/** End users see only their own member's events: the member filter is theirs whatever they asked for. */
function memberFilter(principal: Principal, requested: string): string | undefined {
  if (requested !== "") assertOwnMember(principal, requested);
  return principal.role === "END_USER" ? principal.memberExternalId : requested || undefined;
}

function cursor(value: string) {
  const seq = seqOfCursor(value);
  if (seq === undefined) throw invalidArgument("INVALID_CURSOR", "after_cursor is not an event cursor", [{ field: "after_cursor", description: "not an Event.cursor value" }]);
  return seq;
}

/**
 * Refuses a cursor behind retention: events after it may have been removed (docs/scaling.md "Retention"), so
 * resuming from it could silently skip them. The client starts again from a fresh read (no cursor).
 */
async function assertRetained(pool: Pool, tenantId: string, seq: bigint, field: string): Promise<void> {
  const floor = await retentionFloor(pool, tenantId);
  if (seq < floor) {
    throw failedPrecondition("CURSOR_EXPIRED", `${field} is older than the retained events: events after it were removed by retention`, {
      cursor: seq.toString(),
      oldest_resumable_cursor: floor.toString(),
    });
  }
}

function subscriptionMessage(s: StoredSubscription) {
  return create(WebhookSubscriptionSchema, {
    id: s.id,
    url: s.url,
    eventTypes: s.eventTypes.map((t) => eventTypeToProto[t]),
    definitionId: s.definitionId ?? "",
    description: s.description,
    createTime: timestampFromMs(s.createdAt),
  });
}

function deliveryMessage(d: StoredDelivery) {
  return create(WebhookDeliverySchema, {
    id: d.id,
    subscriptionId: d.subscriptionId,
    eventId: d.eventId,
    eventType: eventTypeToProto[d.eventType],
    state: deliveryStates[d.status],
    attempts: d.attempts,
    lastStatusCode: d.lastStatusCode ?? 0,
    lastError: d.lastError ?? "",
    createTime: timestampFromMs(d.createdAt),
    lastAttemptTime: ts(d.lastAttemptAt),
    nextAttemptTime: d.status === "RETRYING" ? ts(d.nextAttemptAt) : undefined,
    deliverTime: ts(d.deliveredAt),
  });
}

export function createEventService(deps: EventServiceDeps): ServiceImpl<typeof EventService> {
  const pollMs = deps.watchPollMs ?? 250;
  const gapTimeoutMs = deps.gapTimeoutMs ?? 10_000;

  async function* watch(req: Parameters<ServiceImpl<typeof EventService>["watchEvents"]>[0], context: HandlerContext) {
    const principal = principalOf(context);
    const tenantId = principal.tenantId;
    const member = memberFilter(principal, req.memberExternalId);
    const definitionId = definitionFilter(principal, req.definitionId);
    const wanted = new Set(types(req.types));
    let floor = req.afterCursor ? cursor(req.afterCursor) : await latestSeq(deps.pool);
    if (req.afterCursor) await assertRetained(deps.pool, tenantId, floor, "after_cursor");
    const floors = createStreamFloor(gapTimeoutMs);
    // Events above the floor already sent: a gap keeps the floor below them until it settles.
    const sent = new Set<bigint>();
    while (!context.signal.aborted) {
      const slice = await readSlice(deps.pool, floor, SLICE);
      const fresh = slice.entries.filter(
        (e) => e.tenantId === tenantId && !sent.has(e.seq) && (wanted.size === 0 || wanted.has(e.type)) && (definitionId === undefined || e.definitionId === definitionId),
      );
      if (fresh.length > 0) {
        const events = await listEvents(deps.pool, { tenantId, memberExternalId: member, onlySeqs: fresh.map((e) => e.seq), limit: fresh.length });
        for (const event of await eventMessages(deps.pool, deps.catalog, tenantId, events)) {
          if (context.signal.aborted) return;
          yield { event };
        }
        for (const e of fresh) sent.add(e.seq);
      }
      const before = floor;
      floor = floors.advance(floor, slice);
      for (const seq of sent) if (seq <= floor) sent.delete(seq);
      if (slice.entries.length < SLICE || floor === before) await pause(pollMs, context.signal);
    }
  }

  return {
    async listEvents(req, context) {
      const principal = principalOf(context);
      const limit = req.pageSize > 0 ? pageSize(req.pageSize) : DEFAULT_EVENT_PAGE;
      const after = decodePageToken(req.pageToken, 1)?.[0];
      const afterSeq = after === undefined ? undefined : cursor(String(after));
      if (afterSeq !== undefined) await assertRetained(deps.pool, principal.tenantId, afterSeq, "page_token");
      const events = await listEvents(deps.pool, {
        tenantId: principal.tenantId,
        types: types(req.types),
        definitionId: definitionFilter(principal, req.definitionId),
        memberExternalId: memberFilter(principal, req.memberExternalId),
        from: req.startTime ? timestampMs(req.startTime) : undefined,
        to: req.endTime ? timestampMs(req.endTime) : undefined,
        afterSeq,
        limit: limit + 1,
      });
      const page = events.slice(0, limit);
      const last = page.at(-1);
      return {
        events: await eventMessages(deps.pool, deps.catalog, principal.tenantId, page),
        nextPageToken: events.length > limit && last ? encodePageToken([last.seq.toString()]) : "",
      };
    },

    watchEvents: watch,

    async createWebhookSubscription(req, context) {
      const principal = principalOf(context);
      const { subscription, secret } = await deps.webhooks.create(principal.tenantId, {
        url: req.url,
        eventTypes: types(req.eventTypes),
        definitionId: req.definitionId || null,
        description: req.description,
      });
      return { subscription: subscriptionMessage(subscription), secret };
    },

    async listWebhookSubscriptions(req, context) {
      const principal = principalOf(context);
      const { rows, nextPageToken } = await keysetPage(
        req,
        (limit, after) => deps.webhooks.list(principal.tenantId, { limit, after }),
        (s) => [s.createdAt, s.id],
        DEFAULT_EVENT_PAGE,
      );
      return { subscriptions: rows.map(subscriptionMessage), nextPageToken };
    },

    async deleteWebhookSubscription(req, context) {
      await deps.webhooks.delete(principalOf(context).tenantId, req.subscriptionId);
      return {};
    },

    async listWebhookDeliveries(req, context) {
      const principal = principalOf(context);
      const statuses = (Object.entries(deliveryStates) as [DeliveryStatus, WebhookDeliveryState][]).filter(([, v]) => req.states.includes(v)).map(([k]) => k);
      const { rows, nextPageToken } = await keysetPage(
        req,
        (limit, after) =>
          deps.webhooks.deliveries(principal.tenantId, { subscriptionId: req.subscriptionId || undefined, eventId: req.eventId || undefined, statuses, limit, after }),
        (d) => [d.createdAt, d.id],
        DEFAULT_EVENT_PAGE,
      );
      return { deliveries: rows.map(deliveryMessage), nextPageToken };
    },
  };
}
