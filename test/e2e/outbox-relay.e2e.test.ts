// The outbox relay against the run's real Temporal dev server and a real database: a backlog of reward starts (as a
// Temporal outage leaves one) is relayed with starts of different workflows side by side, while one reward's
// messages keep their order (its claim signal after its start). No worker polls the task queue: only the relay's
// calls to Temporal are looked at, through a client interceptor that records when each begins and ends.
import { Client } from "@temporalio/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createOutboxRelay } from "../../src/engine/delivery/outbox-relay.ts";
import { enqueueOutbox } from "../../src/engine/delivery/outbox.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { rewardWorkflowId, sweeperWorkflowId } from "../../src/workflows/messages.ts";
import { startTestApi, type TestApi } from "../support/api.ts";
import { connectToSharedTemporal, type SharedTemporal } from "../support/temporal.ts";

let api: TestApi;
let temporal: SharedTemporal;
let pool: pg.Pool;

beforeAll(async () => {
  [api, temporal] = await Promise.all([startTestApi({ label: "outbox_relay" }), connectToSharedTemporal("outbox-relay")]);
  pool = new pg.Pool({ connectionString: api.databaseUrl, max: 2 });
});
afterAll(async () => {
  await pool?.end();
  await temporal?.close();
  await api?.close();
});

describe("outbox relay", () => {
  it("relay/a_backlog_is_started_side_by_side_and_one_rewards_messages_stay_in_order", async () => {
    const defs = api.client(DefinitionService);
    const { definition } = await defs.createDefinition({
      definition: {
        name: "Relay backlog",
        eventTypes: [],
        window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
        condition: { type: ConditionType.COUNT, min: 1 },
        milestones: [{ threshold: 1, reward: { kind: RewardKind.COUPON, name: "Backlog coupon", fulfilmentMode: FulfilmentMode.PROVIDER, provider: { kind: { case: "codeGenerator", value: { prefix: "RB-", length: 10 } } } } }],
      },
    });
    const definitionId = definition!.id;
    await defs.publishDefinition({ definitionId });
    // 40 rewards waiting in the outbox, as if Temporal had been away while they were earned.
    const members = 40;
    await api.client(ActivityService).recordActivities({
      activities: Array.from({ length: members }, (_, i) => ({
        memberRef: { case: "memberExternalId" as const, value: `backlog-${i}` },
        target: { case: "definitionId" as const, value: definitionId },
        uniqueIdentifier: `backlog-${i}`,
      })),
      omitProgress: true,
    });
    const rewards = (await pool.query<{ id: string }>("select id from reward where definition_id = $1 order by id", [definitionId])).rows.map((r) => r.id);
    expect(rewards).toHaveLength(members);
    // One reward also has a claim signal queued behind its start (the relay signals with start).
    const signalled = rewards[0]!;
    await enqueueOutbox(pool, api.admin.tenantId, "reward.claimed", `test-claimed:${signalled}`, { rewardId: signalled, tenantId: api.admin.tenantId });

    const calls: Array<{ workflowId: string; call: "start" | "signalWithStart"; begin: number; end: number }> = [];
    let inFlight = 0;
    let mostInFlight = 0;
    let clock = 0;
    const timed = async <T>(workflowId: string, call: "start" | "signalWithStart", next: () => Promise<T>): Promise<T> => {
      const begin = clock++;
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      try {
        return await next();
      } finally {
        inFlight--;
        calls.push({ workflowId, call, begin, end: clock++ });
      }
    };
    const client = new Client({
      connection: temporal.client.connection,
      namespace: temporal.namespace,
      interceptors: {
        workflow: [{
          start: (input, next) => timed(input.options.workflowId, "start", () => next(input)),
          signalWithStart: (input, next) => timed(input.options.workflowId, "signalWithStart", () => next(input)),
        }],
      },
    });
    // The rewards' starts, the claim signal, and the definition's sweeper start (from publishing it).
    const waiting = (await pool.query<{ n: number }>("select count(*)::int as n from outbox_message where relayed_at is null")).rows[0]!.n;
    expect(waiting).toBe(members + 2);
    const relay = createOutboxRelay({ pool, client, taskQueue: temporal.taskQueue, logger: createLogger("silent") });
    let relayed = 0;
    for (let pass = 0; pass < 5 && relayed < waiting; pass++) relayed += await relay.relayOnce();

    expect(relayed).toBe(waiting);
    expect((await pool.query<{ n: number }>("select count(*)::int as n from outbox_message where relayed_at is null")).rows[0]!.n).toBe(0);
    // Every reward's workflow started once, several at a time.
    expect(new Set(calls.filter((c) => c.call === "start").map((c) => c.workflowId)).size).toBe(members);
    expect(mostInFlight).toBeGreaterThan(1);
    // The claim signal went out after its reward's start had returned.
    const id = rewardWorkflowId(api.admin.tenantId, signalled, 0);
    const start = calls.find((c) => c.workflowId === id && c.call === "start");
    const signal = calls.find((c) => c.workflowId === id && c.call === "signalWithStart");
    expect(start && signal && start.end < signal.begin).toBe(true);
    await client.workflow.getHandle(sweeperWorkflowId(api.admin.tenantId, definitionId)).terminate("test over").catch(() => undefined);
    for (const reward of rewards) await client.workflow.getHandle(rewardWorkflowId(api.admin.tenantId, reward, 0)).terminate("test over").catch(() => undefined);
  });
});
