// Two workers on one database and one task queue (as `kindling worker` scaled to two replicas): the outbox relay
// of each claims rows with FOR UPDATE SKIP LOCKED, so every reward's workflow is started once and every coupon
// issued once; the sweeper is one workflow per definition whichever worker runs it; and two break/at-risk sweeps
// of the same definition at the same moment (two sweeper activities racing, e.g. a retried activity beside its
// slow first attempt) finalise each streak once, with one event each.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { WorkflowBundle } from "@temporalio/worker";
import type pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { RewardService } from "../../src/gen/kindling/v1/reward_service_pb.js";
import { RewardState } from "../../src/gen/kindling/v1/reward_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createLogger } from "../../src/observability/logger.ts";
import { createDefinitionCatalog } from "../../src/engine/definitions/definition-catalog.ts";
import { sweepAtRisk, sweepBreaks } from "../../src/engine/sweeps/window-sweeps.ts";
import { bundleWorkflows, startWorker, type RunningWorker } from "../../workers/worker.ts";
import { rewardWorkflowId, sweeperWorkflowId } from "../../src/workflows/messages.ts";
import { startTestApi, type TestApi } from "../support/api.ts";
import { connectToSharedTemporal, type SharedTemporal } from "../support/temporal.ts";
import { sqlPool } from "../support/fixtures.ts";
import { eventually as waitFor } from "../support/eventually.ts";

const DAY = 86_400_000;
const MEMBERS = 40;
let api: TestApi;
let temporal: SharedTemporal;
let bundle: WorkflowBundle;
let db: pg.Pool;
const workers: RunningWorker[] = [];

beforeAll(async () => {
  [api, temporal, bundle] = await Promise.all([startTestApi({ label: "two_workers" }), connectToSharedTemporal("two-workers"), bundleWorkflows()]);
  db = sqlPool(api.databaseUrl);
  for (let i = 0; i < 2; i++) {
    workers.push(await startWorker({
      databaseUrl: api.databaseUrl,
      temporalAddress: temporal.address,
      namespace: temporal.namespace,
      taskQueue: temporal.taskQueue,
      logger: createLogger("silent"),
      workflowBundle: bundle,
      relayPollMs: 20,
    }));
  }
});

afterAll(async () => {
  for (const w of workers) await w.stop();
  await db?.end();
  await temporal?.close();
  await api?.close();
});

const eventually = <T>(probe: () => Promise<T | undefined>, timeoutMs = 60_000) => waitFor(probe, timeoutMs);

async function executions(workflowId: string): Promise<number> {
  let n = 0;
  for await (const _ of temporal.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) n++;
  return n;
}

describe("two workers", () => {
  it("workers/two_relays_start_each_reward_once_and_the_sweeper_once_per_definition", async () => {
    const defs = api.client(DefinitionService);
    const { definition } = await defs.createDefinition({
      definition: {
        name: "Two workers",
        eventTypes: [],
        window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
        condition: { type: ConditionType.COUNT, min: 1 },
        milestones: [{
          threshold: 1,
          reward: { kind: RewardKind.COUPON, name: "Hello", fulfilmentMode: FulfilmentMode.PROVIDER, provider: { kind: { case: "codeGenerator", value: { prefix: "TW-", length: 10 } } } },
        }],
      },
    });
    const definitionId = definition!.id;
    await defs.publishDefinition({ definitionId });
    const activities = api.client(ActivityService);
    // In small groups, so the outbox fills while both relays poll it.
    for (let g = 0; g < MEMBERS; g += 8) {
      await Promise.all(Array.from({ length: 8 }, (_, k) => activities.recordActivity({
        activity: { memberRef: { case: "memberExternalId", value: `tw-${g + k}` }, target: { case: "definitionId", value: definitionId }, occurTime: timestampFromMs(Date.now()), uniqueIdentifier: `tw-${g + k}` },
      })));
    }
    const rewards = await eventually(async () => {
      const { rewards: page } = await api.client(RewardService).listRewards({ definitionId, pageSize: 100 });
      return page.length === MEMBERS && page.every((r) => r.state === RewardState.ISSUED) ? page : undefined;
    });
    expect(new Set(rewards.map((r) => r.couponCode)).size).toBe(MEMBERS);
    const { rows: issued } = await db.query<{ n: number }>("select count(*)::int as n from streak_event where type = 'reward.issued' and definition_id = $1", [definitionId]);
    expect(issued[0]!.n).toBe(MEMBERS);
    // Every outbox row relayed once, none retried (a second relay would have met a started workflow).
    const { rows: outbox } = await db.query<{ pending: number; retried: number }>(
      "select count(*) filter (where relayed_at is null)::int as pending, count(*) filter (where attempts > 0)::int as retried from outbox_message",
    );
    expect(outbox[0]).toEqual({ pending: 0, retried: 0 });
    // One workflow execution per reward, and one sweeper for the definition.
    for (const r of rewards.slice(0, 10)) expect(await executions(rewardWorkflowId(api.admin.tenantId, r.id))).toBe(1);
    expect(await executions(sweeperWorkflowId(api.admin.tenantId, definitionId))).toBe(1);
  });

  it("workers/racing_sweeps_of_one_definition_finalise_each_streak_once_with_one_event", async () => {
    const defs = api.client(DefinitionService);
    const { definition } = await defs.createDefinition({
      definition: {
        name: "Racing sweeps",
        eventTypes: [],
        window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
        condition: { type: ConditionType.COUNT, min: 1 },
        atRiskLeadDuration: { seconds: 3600n },
      },
    });
    const definitionId = definition!.id;
    await defs.publishDefinition({ definitionId });
    await api.client(ActivityService).recordActivities({
      activities: Array.from({ length: 200 }, (_, m) => ({
        memberRef: { case: "memberExternalId" as const, value: `race-${m}` }, target: { case: "definitionId" as const, value: definitionId },
        occurTime: timestampFromMs(Date.now()), uniqueIdentifier: `race-${m}`,
      })),
    });
    const def = (await createDefinitionCatalog(db, 0).get(api.admin.tenantId, definitionId))!;
    const other = sqlPool(api.databaseUrl);
    try {
      const evening = Math.floor(Date.now() / DAY) * DAY + DAY + 23 * 3_600_000 + 30 * 60_000;
      // Small pages, so the two interleave page by page.
      const [a, b] = await Promise.all([sweepAtRisk(db, def, evening, { pageSize: 16 }), sweepAtRisk(other, def, evening, { pageSize: 16 })]);
      expect(a + b).toBe(200);
      const [c, d] = await Promise.all([sweepBreaks(db, def, evening + DAY, { pageSize: 16 }), sweepBreaks(other, def, evening + DAY, { pageSize: 16 })]);
      expect(c + d).toBe(200);
    } finally {
      await other.end();
    }
    const { rows } = await db.query<{ type: string; n: number; members: number }>(
      `select type, count(*)::int as n, count(distinct member_id)::int as members from streak_event
        where definition_id = $1 and type in ('streak.at_risk', 'streak.broken') group by type order by type`,
      [definitionId],
    );
    expect(rows).toEqual([{ type: "streak.at_risk", n: 200, members: 200 }, { type: "streak.broken", n: 200, members: 200 }]);
  });
});
