// Kindling behind a real PgBouncer in transaction mode (Debian's pgbouncer, installed by .ci/run; the file fails,
// not skips, without it): the API's pool and the worker go through PgBouncer with a server pool smaller than the
// clients in flight, prepared statements off (KINDLING_DB_PREPARED_STATEMENTS=false); migrations and change
// notices take the direct connection (DATABASE_DIRECT_URL). Recording (single and batched, concurrent), reads, the
// break and at-risk sweeps and the outbox relay that starts reward workflows all work, and give the answers they
// give on a direct connection.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { WorkflowBundle } from "@temporalio/worker";
import pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { RewardService } from "../../src/gen/kindling/v1/reward_service_pb.js";
import { RewardState } from "../../src/gen/kindling/v1/reward_pb.js";
import { NotAppliedReason } from "../../src/gen/kindling/v1/activity_pb.js";
import { MemberStreakState } from "../../src/gen/kindling/v1/member_streak_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createLogger } from "../../src/observability/logger.ts";
import { createDefinitionCatalog } from "../../src/engine/definitions/definition-catalog.ts";
import { sweepAtRisk, sweepBreaks } from "../../src/engine/sweeps/window-sweeps.ts";
import { bundleWorkflows, startWorker, type RunningWorker } from "../../workers/worker.ts";
import { startTestApi, type TestApi } from "../support/api.ts";
import { connectToSharedTemporal, type SharedTemporal } from "../support/temporal.ts";
import { startPgBouncer, type PgBouncer } from "../support/pgbouncer.ts";
import { eventually as waitFor } from "../support/eventually.ts";

const DAY = 86_400_000;
let bouncer: PgBouncer;
let api: TestApi;
let temporal: SharedTemporal;
let bundle: WorkflowBundle;
let worker: RunningWorker | undefined;
let viaBouncer: pg.Pool;

/** The same database, reached through PgBouncer. */
function throughBouncer(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  const proxy = new URL(bouncer.url);
  url.hostname = proxy.hostname;
  url.port = proxy.port;
  return url.toString();
}

beforeAll(async () => {
  // Three server connections for every client of the file: API pool (20), worker, test pool.
  bouncer = await startPgBouncer(inject("databaseUrl"), { poolSize: 3 });
  [api, temporal, bundle] = await Promise.all([
    startTestApi({
      label: "pgbouncer",
      env: (direct) => ({ DATABASE_URL: throughBouncer(direct), DATABASE_DIRECT_URL: direct, KINDLING_DB_PREPARED_STATEMENTS: "false" }),
    }),
    connectToSharedTemporal("pgbouncer"),
    bundleWorkflows(),
  ]);
  viaBouncer = new pg.Pool({ connectionString: throughBouncer(api.databaseUrl), max: 4 });
  worker = await startWorker({
    databaseUrl: throughBouncer(api.databaseUrl),
    temporalAddress: temporal.address,
    namespace: temporal.namespace,
    taskQueue: temporal.taskQueue,
    logger: createLogger("silent"),
    workflowBundle: bundle,
    relayPollMs: 100,
  });
});

afterAll(async () => {
  await worker?.stop();
  await viaBouncer?.end();
  await temporal?.close();
  await api?.close();
  await bouncer?.stop();
});

const eventually = <T>(probe: () => Promise<T | undefined>, timeoutMs = 30_000) => waitFor(probe, timeoutMs);

describe("behind PgBouncer in transaction mode", () => {
  it("pgbouncer/migrations_and_notices_take_the_direct_connection", async () => {
    const direct = new pg.Client({ connectionString: api.databaseUrl });
    await direct.connect();
    try {
      const { rows: migrations } = await direct.query<{ n: string }>("select count(*) as n from mikro_orm_migrations");
      expect(Number(migrations[0]!.n)).toBeGreaterThanOrEqual(9);
      // The API's change listener is a session of its own on the direct URL (LISTEN cannot live in a transaction pool).
      const { rows } = await direct.query<{ application_name: string }>(
        "select application_name from pg_stat_activity where datname = current_database() and query like 'listen %'",
      );
      expect(rows.map((r) => r.application_name)).toEqual([expect.stringMatching(/^kindling-api-notices:/)]);
    } finally {
      await direct.end();
    }
    // The API's own pool reaches the database only through PgBouncer.
    expect(bouncer.log()).not.toMatch(/ERROR|FATAL/);
  });

  it("pgbouncer/recording_reads_sweeps_and_the_outbox_relay_work_through_it", async () => {
    const defs = api.client(DefinitionService);
    const { definition } = await defs.createDefinition({
      definition: {
        name: "Through PgBouncer",
        eventTypes: ["visit"],
        window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
        condition: { type: ConditionType.COUNT, min: 1 },
        atRiskLeadDuration: { seconds: 3600n },
        milestones: [{
          threshold: 1,
          reward: { kind: RewardKind.COUPON, name: "Welcome", fulfilmentMode: FulfilmentMode.PROVIDER, provider: { kind: { case: "codeGenerator", value: { prefix: "PGB-", length: 10 } } } },
        }],
      },
    });
    const definitionId = definition!.id;
    await defs.publishDefinition({ definitionId });

    // 60 concurrent single calls (batched by the API into shared transactions, over 3 server connections) and one
    // batch of 20, each member once, plus a repeat of every single call (duplicates change nothing).
    const activities = api.client(ActivityService);
    const one = (m: number) =>
      activities.recordActivity({
        activity: { memberRef: { case: "memberExternalId", value: `pgb-${m}` }, target: { case: "eventType", value: "visit" }, occurTime: timestampFromMs(Date.now()), uniqueIdentifier: `pgb-${m}` },
      });
    const singles = await Promise.all(Array.from({ length: 60 }, (_, m) => one(m)));
    expect(singles.every((r) => r.results[0]?.applied === true)).toBe(true);
    const repeats = await Promise.all(Array.from({ length: 60 }, (_, m) => one(m)));
    expect(repeats.every((r) => r.results[0]?.notAppliedReason === NotAppliedReason.DUPLICATE)).toBe(true);
    const batch = await activities.recordActivities({
      activities: Array.from({ length: 20 }, (_, k) => ({
        memberRef: { case: "memberExternalId" as const, value: `pgb-${60 + k}` }, target: { case: "eventType" as const, value: "visit" },
        occurTime: timestampFromMs(Date.now()), uniqueIdentifier: `pgb-${60 + k}`,
      })),
    });
    expect(batch.results.every((r) => r.results[0]?.applied === true)).toBe(true);

    // Reads: the batched single read and the list.
    const reads = api.client(MemberStreakService);
    const progress = await Promise.all(Array.from({ length: 80 }, (_, m) => reads.getMemberStreak({ memberExternalId: `pgb-${m}`, definitionId })));
    expect(progress.map((p) => p.streak?.currentCount)).toEqual(Array.from({ length: 80 }, () => 1));
    expect((await reads.listMemberStreaks({ memberExternalId: "pgb-7" })).streaks.map((s) => s.state)).toEqual([MemberStreakState.IN_PROGRESS]);

    // The outbox relay (the worker, through PgBouncer) starts each reward's workflow: 80 coupons issued, once each.
    const rewards = api.client(RewardService);
    const issued = await eventually(async () => {
      const { rewards: page } = await rewards.listRewards({ definitionId, pageSize: 100 });
      return page.length === 80 && page.every((r) => r.state === RewardState.ISSUED) ? page : undefined;
    }, 60_000);
    expect(new Set(issued.map((r) => r.couponCode)).size).toBe(80);
    const { rows: events } = await viaBouncer.query<{ n: string }>("select count(*) as n from streak_event where type = 'reward.issued' and definition_id = $1", [definitionId]);
    expect(Number(events[0]!.n)).toBe(80);

    // The sweeps, set-based statements over the pool through PgBouncer: tomorrow evening every member is at risk,
    // the day after every streak is broken — each once, however often the sweep runs.
    const def = (await createDefinitionCatalog(viaBouncer, 0).get(api.admin.tenantId, definitionId))!;
    const tomorrowEvening = Math.floor(Date.now() / DAY) * DAY + DAY + 23 * 3_600_000 + 30 * 60_000;
    expect(await sweepAtRisk(viaBouncer, def, tomorrowEvening)).toBe(80);
    expect(await sweepAtRisk(viaBouncer, def, tomorrowEvening)).toBe(0);
    expect(await sweepBreaks(viaBouncer, def, tomorrowEvening + DAY)).toBe(80);
    expect(await sweepBreaks(viaBouncer, def, tomorrowEvening + DAY)).toBe(0);
    const { rows } = await viaBouncer.query<{ status: string; n: string }>("select status, count(*) as n from member_streak where definition_id = $1 group by status", [definitionId]);
    expect(rows.map((r) => [r.status, Number(r.n)])).toEqual([["BROKEN", 80]]);
  });
});
