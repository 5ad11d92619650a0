// EventService end to end: listing events after activity (filters, cursor pages), streaming them live over gRPC
// and Connect (with replay after a cursor, end users held to their own member), and webhooks: subscriptions,
// and the dispatcher delivering to a real local HTTP server with a valid signature, retrying a 500 until a 200.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, type Client } from "@connectrpc/connect";
import { SignJWT } from "jose";
import type pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { EventService, ListWebhookSubscriptionsResponseSchema } from "../../src/gen/kindling/v1/event_service_pb.js";
import { toJsonString } from "@bufbuild/protobuf";
import { RewardService } from "../../src/gen/kindling/v1/reward_service_pb.js";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { JwtAlgorithm } from "../../src/gen/kindling/v1/tenant_pb.js";
import { EventType, WebhookDeliveryState, type Event } from "../../src/gen/kindling/v1/event_pb.js";
import { FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createWebhookDispatcher } from "../../src/engine/delivery/webhook-dispatcher.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { startTestApi, type TestApi } from "../support/api.ts";
import { expectedSignature, startWebhookReceiver } from "../support/webhook-receiver.ts";
import { activityOnDay, createLiveDefinition, DAY, expectFailure, sqlPool, today } from "../support/fixtures.ts";

let api: TestApi;
let db: pg.Pool;
let defId: string;
let otherDefId: string;

beforeAll(async () => {
  api = await startTestApi({ label: "events" });
  db = sqlPool(api.databaseUrl);
  const defs = api.client(DefinitionService);
  defId = (
    await createLiveDefinition(defs, {
      name: "Evented",
      graceDuration: { seconds: 86_400n },
      milestones: [{ threshold: 2, reward: { kind: RewardKind.POINTS, points: 50, fulfilmentMode: FulfilmentMode.CLAIM } }],
    })
  ).id;
  otherDefId = (await createLiveDefinition(defs, { name: "Other" })).id;
});
afterAll(async () => {
  await db?.end();
  await api?.close();
});

/** Reads a server stream in the background until `until` holds for what arrived, then cancels it. */
function collect(stream: (signal: AbortSignal) => AsyncIterable<{ event?: Event }>, until: (events: Event[]) => boolean) {
  const abort = new AbortController();
  const events: Event[] = [];
  const done = (async () => {
    try {
      for await (const res of stream(abort.signal)) {
        if (res.event) events.push(res.event);
        if (until(events)) break;
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error;
    }
    return events;
  })();
  return { done, events, cancel: () => abort.abort() };
}

const record = (member: string, definitionId: string, key: string) =>
  api.client(ActivityService).recordActivity({ activity: { memberRef: { case: "memberExternalId", value: member }, target: { case: "definitionId", value: definitionId }, uniqueIdentifier: key } });

describe("ListEvents", () => {
  it("list/activity_events_in_stream_order_with_filters_and_cursor_pages", async () => {
    const activities = api.client(ActivityService);
    await activityOnDay(activities, "ev-1", defId, -1);
    const second = await activityOnDay(activities, "ev-1", defId, 0);
    const rewardId = second.results[0]!.rewards[0]!.id;
    await api.client(RewardService).claimReward({ target: { case: "rewardId", value: rewardId } });
    await record("ev-2", otherDefId, "ev-2-a");

    const events = api.client(EventService);
    const mine = (await events.listEvents({ memberExternalId: "ev-1" })).events;
    expect(mine.map((e) => e.type)).toEqual([EventType.STREAK_INCREMENTED, EventType.STREAK_INCREMENTED, EventType.STREAK_MILESTONE_REACHED, EventType.REWARD_CLAIMED]);
    expect(mine.map((e) => BigInt(e.cursor))).toEqual([...mine.map((e) => BigInt(e.cursor))].sort((a, b) => (a < b ? -1 : 1)));
    expect(mine[1]!.payload).toMatchObject({ case: "streakIncremented", value: { newCount: 2 } });
    expect(mine[2]!.payload).toMatchObject({ case: "streakMilestoneReached", value: { threshold: 2, rewardId } });
    expect(mine[3]!.payload).toMatchObject({ case: "reward", value: { reward: { id: rewardId, memberExternalId: "ev-1" } } });
    expect(mine.every((e) => e.memberExternalId === "ev-1" && e.definitionId === defId && /^[0-9a-f-]{36}$/.test(e.id))).toBe(true);

    expect((await events.listEvents({ definitionId: otherDefId })).events.map((e) => e.memberExternalId)).toEqual(["ev-2"]);
    expect((await events.listEvents({ types: [EventType.REWARD_CLAIMED] })).events.map((e) => e.id)).toEqual([mine[3]!.id]);
    expect((await events.listEvents({ memberExternalId: "ev-1", endTime: timestampFromMs(today() - DAY) })).events).toEqual([]);
    expect((await events.listEvents({ memberExternalId: "ev-1", startTime: timestampFromMs(Date.now() - 60_000) })).events.length).toBeGreaterThan(0);

    const first = await events.listEvents({ memberExternalId: "ev-1", pageSize: 3 });
    expect(first.events.map((e) => e.id)).toEqual(mine.slice(0, 3).map((e) => e.id));
    const rest = await events.listEvents({ memberExternalId: "ev-1", pageSize: 3, pageToken: first.nextPageToken });
    expect(rest.events.map((e) => e.id)).toEqual([mine[3]!.id]);
    expect(rest.nextPageToken).toBe("");
  });
});

describe("WatchEvents", () => {
  it("watch/grpc_stream_receives_events_persisted_after_it_started", async () => {
    const client: Client<typeof EventService> = api.client(EventService, api.admin, "grpc");
    const watch = collect((signal) => client.watchEvents({ memberExternalId: "live-1" }, { signal }), (e) => e.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await record("live-1", otherDefId, "live-1-a");
    const events = await watch.done;
    expect(events[0]).toMatchObject({ type: EventType.STREAK_INCREMENTED, memberExternalId: "live-1", definitionId: otherDefId });
    watch.cancel();
  });

  it("watch/connect_stream_replays_after_a_cursor_then_continues_live_with_filters", async () => {
    await record("replay-1", otherDefId, "replay-1-a");
    await record("replay-2", otherDefId, "replay-2-a");
    await record("replay-1", defId, "replay-1-b");
    const listed = (await api.client(EventService).listEvents({ memberExternalId: "replay-1" })).events;
    const cursor = listed[0]!.cursor;

    const client = api.client(EventService, api.admin, "connect-json");
    const watch = collect((signal) => client.watchEvents({ afterCursor: cursor, definitionId: defId, types: [EventType.STREAK_INCREMENTED] }, { signal }), (e) => e.length >= 2);
    await vi.waitFor(() => expect(watch.events.length).toBeGreaterThanOrEqual(1), { timeout: 5_000 });
    expect(watch.events[0]).toMatchObject({ memberExternalId: "replay-1", definitionId: defId });
    await record("replay-3", otherDefId, "replay-3-a");
    await record("replay-3", defId, "replay-3-b");
    const events = await watch.done;
    expect(events.map((e) => [e.memberExternalId, e.definitionId])).toEqual([
      ["replay-1", defId],
      ["replay-3", defId],
    ]);
    watch.cancel();
  });

  it("watch/end_users_stream_only_their_own_events_and_bad_input_is_refused", async () => {
    await api.client(TenantService).setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: "events-test-secret-events-test-secret-0001" } });
    const token = await new SignJWT({ tenant_id: api.admin.tenantId })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("watcher")
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode("events-test-secret-events-test-secret-0001"));
    const client = api.client(EventService, { authorization: `Bearer ${token}` }, "grpc");
    const mismatch = collect((signal) => client.watchEvents({ memberExternalId: "someone-else" }, { signal }), () => true);
    await expectFailure(mismatch.done, Code.PermissionDenied, "MEMBER_MISMATCH");
    const invalid = collect((signal) => client.watchEvents({ definitionId: "not-a-uuid" }, { signal }), () => true);
    await expectFailure(invalid.done, Code.InvalidArgument, "INVALID_REQUEST");
    await expectFailure(api.client(EventService, { authorization: `Bearer ${token}` }).listEvents({ memberExternalId: "ev-1" }), Code.PermissionDenied, "MEMBER_MISMATCH");

    const watch = collect((signal) => client.watchEvents({}, { signal }), (e) => e.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await record("not-the-watcher", otherDefId, "ntw-a");
    await record("watcher", otherDefId, "watcher-a");
    const events = await watch.done;
    expect(events.map((e) => e.memberExternalId)).toEqual(["watcher"]);
    watch.cancel();
  });
});

describe("webhooks", () => {
  it("webhooks/dispatcher_signs_retries_a_500_and_records_the_delivery", async () => {
    // The first attempt fails; the retry is acknowledged.
    const receiver = await startWebhookReceiver((_, all) => (all.length === 1 ? 500 : 200));
    const { received } = receiver;
    const url = `${receiver.url}/hooks`;
    const events = api.client(EventService);
    const { subscription, secret } = await events.createWebhookSubscription({ url, eventTypes: [EventType.STREAK_INCREMENTED], definitionId: otherDefId, description: "test" });
    expect(secret).toMatch(/^whsec_/);
    const other = await events.createWebhookSubscription({ url, eventTypes: [EventType.STREAK_BROKEN] });
    expect(toJsonString(ListWebhookSubscriptionsResponseSchema, await events.listWebhookSubscriptions({}))).not.toContain(secret);

    const dispatcher = createWebhookDispatcher({ pool: db, logger: createLogger("silent"), pollIntervalMs: 50, baseBackoffMs: 200 });
    dispatcher.start();
    try {
      await record("hooked", defId, "hooked-ignored");
      const recorded = await record("hooked", otherDefId, "hooked-a");
      await vi.waitFor(() => expect(received.length).toBe(2), { timeout: 15_000, interval: 100 });
      const [first, second] = received;
      expect(second!.body).toBe(first!.body);
      for (const r of received) {
        expect(r.headers["kindling-signature"]).toBe(expectedSignature(secret, r));
        expect(Math.abs(Number(r.headers["kindling-timestamp"]) - Date.now() / 1000)).toBeLessThan(60);
      }
      const body = JSON.parse(second!.body) as { id: string; type: string; memberExternalId: string; definitionId: string; streakIncremented: { newCount: number } };
      expect(body).toMatchObject({ type: "EVENT_TYPE_STREAK_INCREMENTED", memberExternalId: "hooked", definitionId: otherDefId, streakIncremented: { newCount: 1 } });
      expect(second!.headers["kindling-event-id"]).toBe(body.id);
      expect(recorded.results[0]!.applied).toBe(true);

      await vi.waitFor(async () => {
        const { deliveries } = await events.listWebhookDeliveries({ subscriptionId: subscription!.id });
        expect(deliveries).toHaveLength(1);
        expect(deliveries[0]).toMatchObject({ eventId: body.id, eventType: EventType.STREAK_INCREMENTED, state: WebhookDeliveryState.SUCCEEDED, attempts: 2, lastStatusCode: 200 });
      });
      const { deliveries } = await events.listWebhookDeliveries({ eventId: body.id });
      expect(deliveries[0]!.deliverTime).toBeDefined();
      expect((await events.listWebhookDeliveries({ subscriptionId: other.subscription!.id })).deliveries).toEqual([]);
      const rows = await db.query("select count(*)::int as n from webhook_delivery where subscription_id = $1", [subscription!.id]);
      expect(rows.rows[0].n).toBe(1);
    } finally {
      await dispatcher.stop();
      await receiver.close();
    }

    await events.deleteWebhookSubscription({ subscriptionId: subscription!.id });
    await expectFailure(events.deleteWebhookSubscription({ subscriptionId: subscription!.id }), Code.NotFound, "WEBHOOK_SUBSCRIPTION_NOT_FOUND");
    expect((await events.listWebhookSubscriptions({})).subscriptions.map((s) => s.id)).toEqual([other.subscription!.id]);
  });

  it("webhooks/unreachable_endpoint_is_retried_then_failed_with_the_error_recorded", async () => {
    const events = api.client(EventService);
    // Port 9 (discard) on loopback refuses connections.
    const { subscription } = await events.createWebhookSubscription({ url: "http://127.0.0.1:9/none", definitionId: otherDefId });
    const dispatcher = createWebhookDispatcher({ pool: db, logger: createLogger("silent"), pollIntervalMs: 50, baseBackoffMs: 50, maxAttempts: 2 });
    dispatcher.start();
    try {
      await record("unreachable", otherDefId, "unreachable-a");
      await vi.waitFor(
        async () => {
          const { deliveries } = await events.listWebhookDeliveries({ subscriptionId: subscription!.id, states: [WebhookDeliveryState.FAILED] });
          expect(deliveries).toHaveLength(1);
          expect(deliveries[0]).toMatchObject({ attempts: 2, lastStatusCode: 0 });
          expect(deliveries[0]!.lastError).not.toBe("");
        },
        { timeout: 15_000, interval: 100 },
      );
    } finally {
      await dispatcher.stop();
      await events.deleteWebhookSubscription({ subscriptionId: subscription!.id });
    }
  });
});
