// Kindling on a real Citus cluster (issue 18): a coordinator and two workers (PostgreSQL 15, Citus 13.2.2, started
// by ../shared/tools/citus/cluster.sh in a temporary folder and stopped after the file, also when it fails). The
// API and the worker run against the coordinator (KINDLING_DATABASE_KIND=citus); migrations distribute the
// tables by member (migration 0018). The same recording workload also runs on one PostgreSQL (the run's shared
// one) and both must give the same answers: counts, duplicates, rewards, reads. Without Citus installed the file
// fails with the command that installs it.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService, ImportMilestonePolicy } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { TeamService } from "../../src/gen/kindling/v1/team_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { MemberService } from "../../src/gen/kindling/v1/member_service_pb.js";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { RewardService } from "../../src/gen/kindling/v1/reward_service_pb.js";
import { RewardState } from "../../src/gen/kindling/v1/reward_pb.js";
import { MemberStreakState } from "../../src/gen/kindling/v1/member_streak_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createLogger } from "../../src/observability/logger.ts";
import { createDefinitionCatalog } from "../../src/engine/definitions/definition-catalog.ts";
import { createActivityIngestor } from "../../src/engine/ingest/activity-ingestor.ts";
import { sweepAdvance, sweepAtRisk, sweepBreaks } from "../../src/engine/sweeps/window-sweeps.ts";
import { memberIdFor } from "../../src/db/member-id.ts";
import { applyRetention, ensurePartitions, listPartitions, setTenantRetention, weekStart } from "../../src/engine/retention/retention.ts";
import { ALL_TENANTS, retentionFloor } from "../../src/engine/delivery/event-stream.ts";
import { bundleWorkflows, startWorker, type RunningWorker } from "../../workers/worker.ts";
import { retentionWorkflowId } from "../../src/workflows/messages.ts";
import { createTestClock, startTestApi, type TestApi } from "../support/api.ts";
import { connectToSharedTemporal, type SharedTemporal } from "../support/temporal.ts";
import { startCitusCluster, type CitusCluster } from "../support/citus.ts";
import { eventually } from "../support/eventually.ts";
import { expectFailure, isUuidV7Sql } from "../support/fixtures.ts";
import { Code } from "@connectrpc/connect";
import { EventService } from "../../src/gen/kindling/v1/event_service_pb.js";
import { LeaderboardMetric, LeaderboardService } from "../../src/gen/kindling/v1/leaderboard_service_pb.js";
import { EventType, WebhookDeliveryState } from "../../src/gen/kindling/v1/event_pb.js";
import { createWebhookDispatcher } from "../../src/engine/delivery/webhook-dispatcher.ts";
import { expectedSignature, startWebhookReceiver } from "../support/webhook-receiver.ts";

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MEMBERS = 40;
const DAYS = 4;
// Noon UTC, ten days ago: the workload plays four daily windows by moving the servers' clock.
const START = Math.floor(Date.now() / DAY) * DAY - 10 * DAY + 12 * HOUR;

let cluster: CitusCluster | undefined;
let citusApi: TestApi | undefined;
let plainApi: TestApi | undefined;
let temporal: SharedTemporal | undefined;
let worker: RunningWorker | undefined;
let coordinator: pg.Pool | undefined;
const clock = createTestClock(START);

beforeAll(async () => {
  cluster = await startCitusCluster(2);
  coordinator = new pg.Pool({ connectionString: cluster.url, max: 4 });
  const url = cluster.url;
  [citusApi, plainApi, temporal] = await Promise.all([
    startTestApi({ label: "citus", now: clock.now, env: { KINDLING_DATABASE_KIND: "citus" }, database: { name: "postgres", url, drop: async () => {} } }),
    startTestApi({ label: "citus_twin", now: clock.now }),
    connectToSharedTemporal("citus"),
  ]);
}, 300_000);

afterAll(async () => {
  await worker?.stop().catch(() => undefined);
  await temporal?.close().catch(() => undefined);
  await citusApi?.close().catch(() => undefined);
  await plainApi?.close().catch(() => undefined);
  await coordinator?.end().catch(() => undefined);
  await cluster?.stop();
});

async function createDefinition(api: TestApi, name: string): Promise<string> {
  const defs = api.client(DefinitionService);
  const { definition } = await defs.createDefinition({
    definition: {
      name,
      eventTypes: [name],
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 1 },
      atRiskLeadDuration: { seconds: 3600n },
      milestones: [{
        threshold: 3,
        reward: { kind: RewardKind.COUPON, name: "Three days", fulfilmentMode: FulfilmentMode.PROVIDER, provider: { kind: { case: "codeGenerator", value: { prefix: "CIT-", length: 10 } } } },
      }],
    },
  });
  await defs.publishDefinition({ definitionId: definition!.id });
  return definition!.id;
}

interface Outcome {
  readonly applied: number;
  readonly duplicates: number;
  readonly counts: readonly (number | undefined)[];
  readonly rewards: readonly number[];
}

/**
 * Four days: on each, every member records that day's activity twice at once (the repeat is a duplicate) as single
 * calls, all members concurrently, and members 40-59 record theirs in one RecordActivities batch that spans them.
 */
async function workload(api: TestApi, eventType: string, definitionId: string): Promise<Outcome> {
  const activities = api.client(ActivityService);
  let applied = 0;
  let duplicates = 0;
  for (let d = 0; d < DAYS; d++) {
    clock.set(START + d * DAY);
    const at = timestampFromMs(clock.now());
    const one = (m: number) => activities.recordActivity({
      activity: { memberRef: { case: "memberExternalId", value: `m-${m}` }, target: { case: "eventType", value: eventType }, occurTime: at, uniqueIdentifier: `m-${m}-d${d}` },
    });
    const singles = await Promise.all(Array.from({ length: MEMBERS }, (_, m) => [one(m), one(m)]).flat());
    const batch = activities.recordActivities({
      activities: Array.from({ length: 20 }, (_, k) => ({
        memberRef: { case: "memberExternalId" as const, value: `m-${MEMBERS + k}` }, target: { case: "eventType" as const, value: eventType },
        occurTime: at, uniqueIdentifier: `m-${MEMBERS + k}-d${d}`,
      })),
    });
    const repeated = activities.recordActivities({
      activities: Array.from({ length: 20 }, (_, k) => ({
        memberRef: { case: "memberExternalId" as const, value: `m-${MEMBERS + k}` }, target: { case: "eventType" as const, value: eventType },
        occurTime: at, uniqueIdentifier: `m-${MEMBERS + k}-d${d}`,
      })),
    });
    const batches = await Promise.all([batch, repeated]);
    for (const r of [...singles, ...batches.flatMap((b) => b.results)]) {
      if (r.duplicate) duplicates++;
      else applied++;
    }
  }
  const reads = api.client(MemberStreakService);
  const counts = (await Promise.all(Array.from({ length: MEMBERS + 20 }, (_, m) => reads.getMemberStreak({ memberExternalId: `m-${m}`, definitionId }))))
    .map((p) => p.streak?.currentCount);
  const rewards = await Promise.all(Array.from({ length: MEMBERS + 20 }, async (_, m) =>
    (await api.client(RewardService).listRewards({ memberExternalId: `m-${m}`, definitionId, pageSize: 100 })).rewards.length));
  return { applied, duplicates, counts, rewards };
}

/** Every plan node in an EXPLAIN (FORMAT JSON) answer, the tasks' remote plans of a Citus query included. */
function planNodes(value: unknown): Record<string, unknown>[] {
  if (Array.isArray(value)) return value.flatMap(planNodes);
  if (value === null || typeof value !== "object") return [];
  const node = value as Record<string, unknown>;
  return [...("Node Type" in node ? [node] : []), ...Object.values(node).flatMap(planNodes)];
}

/** Rows of `table` per worker port, counted on its shards. */
async function rowsPerWorker(table: string): Promise<Map<number, number>> {
  const { rows } = await coordinator!.query<{ nodeport: number; n: string }>(
    `select s.nodeport, sum(r.result::bigint)::text as n
       from run_command_on_shards($1, 'select count(*) from %s') r join citus_shards s on s.shardid = r.shardid
      group by s.nodeport`,
    [table],
  );
  return new Map(rows.map((r) => [Number(r.nodeport), Number(r.n)]));
}

describe("Kindling on a Citus cluster", () => {
  let definitionId = "";

  it("citus/migrations_distribute_by_member_colocated_and_reference_the_tenant_tables", async () => {
    const { rows } = await coordinator!.query<{ table_name: string; citus_table_type: string; distribution_column: string; colocation_id: number }>(
      "select table_name::text, citus_table_type, distribution_column, colocation_id from citus_tables order by 1",
    );
    const byName = new Map(rows.map((r) => [r.table_name, r]));
    const distributed = ["member", "member_streak", "member_streak_state", "activity", "activity_key", "reward", "streak_event", "streak_event_key", "streak_window"];
    for (const t of distributed) expect(byName.get(t)?.citus_table_type, t).toBe("distributed");
    expect(byName.get("member")!.distribution_column).toBe("id");
    for (const t of distributed.slice(1)) expect(byName.get(t)!.distribution_column, t).toBe("member_id");
    expect(new Set(distributed.map((t) => byName.get(t)!.colocation_id)).size).toBe(1);
    for (const t of ["tenant", "api_key", "streak_definition", "tenant_browser_access", "webhook_subscription"]) expect(byName.get(t)?.citus_table_type, t).toBe("reference");
    // The outbox stays on the coordinator, as a Citus local table (its writes commit by two-phase commit with the
    // shards the same transaction wrote); the other coordinator tables are plain.
    expect(byName.get("outbox_message")?.citus_table_type).toBe("local");
    expect(byName.has("webhook_delivery")).toBe(false);
  });

  it("citus/concurrent_recording_gives_the_answers_of_one_postgresql", async () => {
    definitionId = await createDefinition(citusApi!, "visit");
    const plainDefinition = await createDefinition(plainApi!, "visit");
    const onCitus = await workload(citusApi!, "visit", definitionId);
    const onPostgres = await workload(plainApi!, "visit", plainDefinition);
    // Every activity counted once, every repeat a duplicate, the same streaks and one reward per milestone.
    expect(onCitus.applied).toBe((MEMBERS + 20) * DAYS);
    expect(onCitus.duplicates).toBe((MEMBERS + 20) * DAYS);
    expect(onCitus.counts).toEqual(Array.from({ length: MEMBERS + 20 }, () => DAYS));
    expect(onCitus.rewards).toEqual(Array.from({ length: MEMBERS + 20 }, () => 1));
    expect(onCitus).toEqual(onPostgres);
    const { rows } = await coordinator!.query<{ activities: string; keys: string; members: string }>(
      `select (select count(*) from activity)::text as activities, (select count(*) from activity_key)::text as keys,
              (select count(*) from member where id = any($1::uuid[]))::text as members`,
      [Array.from({ length: MEMBERS + 20 }, (_, m) => memberIdFor(citusApi!.admin.tenantId, `m-${m}`))],
    );
    expect(rows[0]).toEqual({ activities: String((MEMBERS + 20) * DAYS), keys: String((MEMBERS + 20) * DAYS), members: String(MEMBERS + 20) });
  }, 360_000);

  it("citus/rows_of_many_members_land_on_both_workers", async () => {
    for (const table of ["member", "member_streak", "activity", "reward"]) {
      const perWorker = await rowsPerWorker(table);
      expect([...perWorker.keys()].sort(), table).toEqual([...cluster!.workerPorts].sort());
      for (const port of cluster!.workerPorts) expect(perWorker.get(port)!, `${table} on ${port}`).toBeGreaterThan(0);
      expect([...perWorker.values()].reduce((a, b) => a + b, 0), table).toBe(table === "activity" ? (MEMBERS + 20) * DAYS : MEMBERS + 20);
    }
  });

  it("citus/leaderboard_top_and_rank_equal_a_sort_of_every_shard_s_rows", async () => {
    // Every member has the same count: the board is ordered by who reached it first, then by row id, across shards.
    const { rows } = await coordinator!.query<{ external_id: string }>(
      `select m.external_id from member_streak s join member m on m.id = s.member_id and m.tenant_id = s.tenant_id
        where s.definition_id = $1 and s.current_count > 0 and not s.leaderboard_opt_out
        order by s.current_count desc, s.count_reached_at, s.id`,
      [definitionId],
    );
    expect(rows).toHaveLength(MEMBERS + 20);
    const expected = rows.map((r) => r.external_id);
    const boards = citusApi!.client(LeaderboardService);
    const { entries } = await boards.getLeaderboard({ definitionId, metric: LeaderboardMetric.CURRENT_COUNT, limit: 25 });
    expect(entries.map((e) => [e.rank, e.memberExternalId, e.count])).toEqual(expected.slice(0, 25).map((m, i) => [i + 1, m, DAYS]));
    const at = 30;
    const rank = await boards.getLeaderboardRank({ definitionId, metric: LeaderboardMetric.CURRENT_COUNT, memberExternalId: expected[at]!, neighbours: 2 });
    expect(rank.entry).toMatchObject({ rank: at + 1, memberExternalId: expected[at] });
    expect([...rank.above, ...rank.below].map((e) => [e.rank, e.memberExternalId])).toEqual(
      [at - 2, at - 1, at + 1, at + 2].map((i) => [i + 1, expected[i]]));
  });

  it("citus/sweeps_remind_and_break_the_due_streaks_once", async () => {
    const def = (await createDefinitionCatalog(coordinator!, 0).get(citusApi!.admin.tenantId, definitionId))!;
    const lastDay = Math.floor((START + (DAYS - 1) * DAY) / DAY) * DAY;
    const nextEvening = lastDay + DAY + 23 * HOUR + 30 * 60_000;
    expect(await sweepAtRisk(coordinator!, def, nextEvening, { citus: true })).toBe(MEMBERS + 20);
    expect(await sweepAtRisk(coordinator!, def, nextEvening, { citus: true })).toBe(0);
    expect(await sweepBreaks(coordinator!, def, nextEvening + DAY, { citus: true, pageSize: 7 })).toBe(MEMBERS + 20);
    expect(await sweepBreaks(coordinator!, def, nextEvening + DAY, { citus: true })).toBe(0);
    const { rows } = await coordinator!.query<{ status: string; n: string }>(
      "select status, count(*)::text as n from member_streak where definition_id = $1 group by status", [definitionId]);
    expect(rows.map((r) => [r.status, r.n])).toEqual([["BROKEN", String(MEMBERS + 20)]]);
    const events = await coordinator!.query<{ type: string; n: string }>(
      "select type, count(*)::text as n from streak_event where definition_id = $1 and type in ('streak.at_risk', 'streak.broken') group by type order by type", [definitionId]);
    expect(events.rows.map((r) => [r.type, r.n])).toEqual([["streak.at_risk", String(MEMBERS + 20)], ["streak.broken", String(MEMBERS + 20)]]);
    // Their public ids are time-ordered (migration 0020), and the function behind the default exists on every worker
    // (the shards' default names it).
    const v7 = await coordinator!.query<{ n: string }>(
      `select count(*)::text as n from streak_event where definition_id = $1 and type in ('streak.at_risk', 'streak.broken') and ${isUuidV7Sql("public_id")}`,
      [definitionId]);
    expect(v7.rows[0]!.n).toBe(String(2 * (MEMBERS + 20)));
    const onWorkers = await coordinator!.query<{ success: boolean; result: string }>(
      "select success, result from run_command_on_workers($$select substr(kindling_time_ordered_uuid()::text, 15, 1)$$)");
    expect(onWorkers.rows.length).toBeGreaterThan(0);
    expect(onWorkers.rows.every((r) => r.success && r.result === "7")).toBe(true);
    const windows = await coordinator!.query<{ n: string }>("select count(*)::text as n from streak_window where definition_id = $1 and outcome = 'MISSED'", [definitionId]);
    expect(windows.rows[0]!.n).toBe(String(MEMBERS + 20));
  });

  describe("the advance sweep", () => {
    // A daily streak with one freeze held from the start, and a daily streak paused over a window's close.
    async function define(api: TestApi, name: string, freezes: boolean): Promise<string> {
      const defs = api.client(DefinitionService);
      const { definition } = await defs.createDefinition({
        definition: {
          name, eventTypes: [name],
          window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
          condition: { type: ConditionType.COUNT, min: 1 },
          ...(freezes ? { freezePolicy: { maxHeld: 1, initialGrant: 1 } } : {}),
        },
      });
      await defs.publishDefinition({ definitionId: definition!.id });
      return definition!.id;
    }

    it("citus/the_advance_sweep_advances_freeze_and_paused_rows_as_on_one_postgresql", async () => {
      const day = Math.floor(START / DAY) * DAY;
      const asOf = day + 2 * DAY + HOUR;
      const plainPool = new pg.Pool({ connectionString: plainApi!.databaseUrl, max: 2 });
      try {
        const outcome = async (api: TestApi, pool: pg.Pool, citus: boolean) => {
          const frozen = await define(api, "adv-frozen", true);
          const paused = await define(api, "adv-paused", false);
          const activities = api.client(ActivityService);
          const record = (m: string, d: number, eventType: string) => activities.recordActivity({
            activity: { memberRef: { case: "memberExternalId", value: m }, target: { case: "eventType", value: eventType }, occurTime: timestampFromMs(clock.now()), uniqueIdentifier: `${m}-${eventType}-${d}` },
          });
          const members = ["adv-a", "adv-b", "adv-c", "adv-d"];
          clock.set(day + 12 * HOUR);
          for (const m of members) for (const e of ["adv-frozen", "adv-paused"]) await record(m, 0, e);
          clock.set(day + DAY + 12 * HOUR);
          for (const e of ["adv-frozen", "adv-paused"]) await record("adv-a", 1, e);
          // Paused from day 1, 13:00 on, over day 1's close (day 2, 00:00): the others' breaks fall in the pause.
          clock.set(day + DAY + 13 * HOUR);
          await api.client(DefinitionService).pauseDefinition({ definitionId: paused });
          const catalog = createDefinitionCatalog(pool, 0);
          const frozenDef = (await catalog.get(api.admin.tenantId, frozen))!;
          const pausedDef = (await catalog.get(api.admin.tenantId, paused))!;
          const swept = {
            breaks: [await sweepBreaks(pool, frozenDef, asOf, { citus }), await sweepBreaks(pool, pausedDef, asOf, { citus })],
            advanced: [await sweepAdvance(pool, frozenDef, asOf, { citus, pageSize: 2 }), await sweepAdvance(pool, pausedDef, asOf, { citus, pageSize: 2 })],
            again: [await sweepAdvance(pool, frozenDef, asOf, { citus }), await sweepAdvance(pool, pausedDef, asOf, { citus })],
          };
          const { rows } = await pool.query<{ def: string; external_id: string; status: string; current_count: number; break_kind: string | null; break_at: Date | null }>(
            `select case s.definition_id when $1 then 'frozen' else 'paused' end as def, m.external_id, s.status, s.current_count, s.break_kind, s.break_at
               from member_streak s join member m on m.id = s.member_id
              where s.definition_id = any($2::uuid[]) and m.external_id = any($3::text[]) order by 1, 2`,
            [frozen, [frozen, paused], members],
          );
          const events = await pool.query<{ def: string; type: string; n: string }>(
            `select case definition_id when $1 then 'frozen' else 'paused' end as def, type, count(*)::text as n from streak_event
              where definition_id = any($2::uuid[]) group by 1, 2 order by 1, 2`, [frozen, [frozen, paused]]);
          return { swept, rows, events: events.rows };
        };
        const onCitus = await outcome(citusApi!, coordinator!, true);
        const onPostgres = await outcome(plainApi!, plainPool, false);
        // Three members missed day 1 on each: the frozen ones spend their freeze, the paused ones' windows are neutral.
        expect(onCitus.swept).toEqual({ breaks: [0, 0], advanced: [3, 3], again: [0, 0] });
        expect(onCitus.rows.filter((r) => r.status === "BROKEN")).toEqual([]);
        expect(onCitus).toEqual(onPostgres);
      } finally {
        await plainPool.end();
      }
    });

    // As on one PostgreSQL (test/db/sweep-plans.test.ts, plans/advance_page_reads_none_of_a_cohort_due_to_break):
    // a cohort due to BREAK costs the advance sweep nothing. On every shard its page is a range read of the partial
    // index member_streak_advance_page (migration 0017), which holds none of the cohort; paging through every due
    // row read the whole cohort, 500 rows a shard per page.
    it("citus/advance_page_reads_none_of_a_cohort_due_to_break", async () => {
      const cohortDef = await define(citusApi!, "adv-cohort", false);
      const def = (await createDefinitionCatalog(coordinator!, 0).get(citusApi!.admin.tenantId, cohortDef))!;
      const breakAt = Math.floor(START / DAY) * DAY;
      try {
        await coordinator!.query(
          `insert into member_streak (id, tenant_id, member_id, definition_id, status, current_count, longest_count, version, created_at, updated_at,
             leaderboard_opt_out, window_start_at, window_close_at, break_at, break_kind, break_window_key)
           select gen_random_uuid(), $1, gen_random_uuid(), $2, 'IN_PROGRESS', 1, 1, 1, now(), now(), false, $3::timestamptz - interval '1 day', $3, $3, 'BREAK', 'w'
             from generate_series(1, 20000)`,
          [citusApi!.admin.tenantId, cohortDef, new Date(breakAt)],
        );
        await coordinator!.query("analyze member_streak");
        let page: { text: string; values: unknown[] } | undefined;
        const spy = { query: (text: string, values: unknown[]) => ((page ??= { text, values }), Promise.reject(new Error("captured"))) } as unknown as pg.Pool;
        await sweepAdvance(spy, def, breakAt + HOUR, { citus: true }).catch(() => undefined);
        const client = await coordinator!.connect();
        try {
          await client.query("set citus.explain_all_tasks = on");
          const { rows } = await client.query<{ "QUERY PLAN": unknown }>(`explain (analyze, format json) ${page!.text}`, page!.values);
          const scans = planNodes(rows[0]!["QUERY PLAN"]).filter((n) => /^member_streak_\d+$/.test(String(n["Relation Name"])));
          expect(scans.length).toBeGreaterThanOrEqual(32);
          expect(scans.filter((n) => !String(n["Index Name"]).startsWith("member_streak_advance_page"))).toEqual([]);
          expect(scans.reduce((sum, n) => sum + Number(n["Actual Rows"]) * Number(n["Actual Loops"]) + Number(n["Rows Removed by Filter"] ?? 0), 0)).toBe(0);
        } finally {
          await client.query("reset citus.explain_all_tasks").catch(() => undefined);
          client.release();
        }
        expect(await sweepAdvance(coordinator!, def, breakAt + HOUR, { citus: true })).toBe(0);
      } finally {
        await coordinator!.query("delete from member_streak where definition_id = $1", [cohortDef]);
      }
    }, 120_000);
  });

  describe("repairs and claims", () => {
    // A daily streak with a CLAIM-mode reward at 2 and a week to repair: members check in on two days after the
    // restart test's day, so their milestone is AVAILABLE to claim; the Citus sweep breaks them two days later.
    let repairDef = "";
    const firstDay = Math.floor((START + (DAYS + 1) * DAY) / DAY) * DAY;
    const breakTime = firstDay + 3 * DAY + 23 * HOUR + 30 * 60_000;

    async function twoDayStreak(member: string): Promise<void> {
      const activities = citusApi!.client(ActivityService);
      for (const d of [0, 1]) {
        clock.set(firstDay + d * DAY + 12 * HOUR);
        await activities.recordActivity({
          activity: { memberRef: { case: "memberExternalId", value: member }, target: { case: "definitionId", value: repairDef }, occurTime: timestampFromMs(clock.now()), uniqueIdentifier: `${member}-${d}` },
        });
      }
    }

    beforeAll(async () => {
      const defs = citusApi!.client(DefinitionService);
      const { definition } = await defs.createDefinition({
        definition: {
          name: "repair-claim",
          eventTypes: ["repair-claim"],
          window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
          condition: { type: ConditionType.COUNT, min: 1 },
          repairDuration: { seconds: BigInt(7 * 86_400) },
          milestones: [{ threshold: 2, reward: { kind: RewardKind.POINTS, points: 100, fulfilmentMode: FulfilmentMode.CLAIM } }],
        },
      });
      await defs.publishDefinition({ definitionId: definition!.id });
      repairDef = definition!.id;
      for (const m of ["claim-a", "claim-b", "claim-c", "repair-a", "repair-b", "repair-c"]) await twoDayStreak(m);
    }, 120_000);

    it("citus/a_claim_mode_reward_is_claimed_exactly_once", async () => {
      clock.set(firstDay + DAY + 13 * HOUR);
      const rewards = citusApi!.client(RewardService);
      const members = citusApi!.client(MemberService);
      // By milestone, then again by id and by milestone: ALREADY_CLAIMED, as on one PostgreSQL.
      const claimed = await rewards.claimReward({ target: { case: "milestone", value: { memberExternalId: "claim-a", definitionId: repairDef, threshold: 2 } } });
      expect(claimed).toMatchObject({ bonusPoints: 100, milestoneThreshold: 2, currentCount: 2 });
      expect(claimed.reward).toMatchObject({ state: RewardState.CLAIMED, memberExternalId: "claim-a" });
      await expectFailure(rewards.claimReward({ target: { case: "rewardId", value: claimed.reward!.id } }), Code.FailedPrecondition, "ALREADY_CLAIMED");
      await expectFailure(rewards.claimReward({ target: { case: "milestone", value: { memberExternalId: "claim-a", definitionId: repairDef, threshold: 2 } } }), Code.FailedPrecondition, "ALREADY_CLAIMED");
      // Several members' claims at once, each raced by id and by milestone: one wins per member.
      const racers = ["claim-b", "claim-c"];
      const ids = await Promise.all(racers.map(async (m) => (await rewards.listRewards({ memberExternalId: m, definitionId: repairDef, pageSize: 10 })).rewards[0]!.id));
      const outcomes = await Promise.allSettled(racers.flatMap((m, i) => [
        rewards.claimReward({ target: { case: "rewardId", value: ids[i]! } }),
        rewards.claimReward({ target: { case: "milestone", value: { memberExternalId: m, definitionId: repairDef, threshold: 2 } } }),
      ]));
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(racers.length);
      for (const o of outcomes) if (o.status === "rejected") await expectFailure(Promise.reject(o.reason as Error), Code.FailedPrecondition, "ALREADY_CLAIMED");
      for (const m of ["claim-a", ...racers]) expect((await members.getMember({ memberExternalId: m })).member!.pointsBalance, m).toBe(100);
      // One CLAIMED reward, one reward.claimed event and one outbox row each (the outbox is a coordinator table).
      const claimedIds = (await coordinator!.query<{ id: string; state: string }>(
        "select id::text, state from reward where definition_id = $1 and member_id = any($2::uuid[])",
        [repairDef, ["claim-a", ...racers].map((m) => memberIdFor(citusApi!.admin.tenantId, m))],
      )).rows;
      expect(claimedIds.map((r) => r.state)).toEqual(["CLAIMED", "CLAIMED", "CLAIMED"]);
      const keys = claimedIds.map((r) => `reward:${r.id}:claimed`);
      const events = await coordinator!.query<{ n: string }>("select count(*)::text as n from streak_event where type = 'reward.claimed' and dedupe_key = any($1::text[])", [keys]);
      expect(events.rows[0]!.n).toBe("3");
      const outbox = await coordinator!.query<{ n: string }>("select count(*)::text as n from outbox_message where kind = 'reward.claimed' and dedupe_key = any($1::text[])", [keys]);
      expect(outbox.rows[0]!.n).toBe("3");
    });

    it("citus/a_streak_broken_by_the_sweep_is_repaired_exactly_once", async () => {
      const def = (await createDefinitionCatalog(coordinator!, 0).get(citusApi!.admin.tenantId, repairDef))!;
      expect(await sweepBreaks(coordinator!, def, breakTime, { citus: true })).toBe(6);
      clock.set(breakTime + HOUR);
      const members = citusApi!.client(MemberService);
      const streaks = citusApi!.client(MemberStreakService);
      expect((await streaks.getMemberStreak({ memberExternalId: "repair-a", definitionId: repairDef })).streak).toMatchObject({ state: MemberStreakState.BROKEN, currentCount: 0, longestCount: 2 });
      const repaired = await members.repairStreak({ memberExternalId: "repair-a", definitionId: repairDef });
      expect(repaired.restoredCount).toBe(2);
      expect(repaired.streak).toMatchObject({ state: MemberStreakState.IN_PROGRESS, currentCount: 2 });
      expect((await streaks.getMemberStreak({ memberExternalId: "repair-a", definitionId: repairDef })).streak).toMatchObject({ state: MemberStreakState.IN_PROGRESS, currentCount: 2 });
      await expectFailure(members.repairStreak({ memberExternalId: "repair-a", definitionId: repairDef }), Code.FailedPrecondition, "ALREADY_REPAIRED");
      // Two members repaired twice at once: one repair each, the other ALREADY_REPAIRED.
      const racers = ["repair-b", "repair-c"];
      const outcomes = await Promise.allSettled(racers.flatMap((m) => [0, 1].map(() => members.repairStreak({ memberExternalId: m, definitionId: repairDef }))));
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(racers.length);
      for (const o of outcomes) if (o.status === "rejected") await expectFailure(Promise.reject(o.reason as Error), Code.FailedPrecondition, "ALREADY_REPAIRED");
      const ids = ["repair-a", ...racers].map((m) => memberIdFor(citusApi!.admin.tenantId, m));
      const { rows } = await coordinator!.query<{ status: string; current_count: number }>(
        "select status, current_count from member_streak where definition_id = $1 and member_id = any($2::uuid[])", [repairDef, ids]);
      expect(rows).toEqual(ids.map(() => ({ status: "IN_PROGRESS", current_count: 2 })));
      // One repaired event each, and no milestone granted twice.
      const events = await coordinator!.query<{ type: string; n: string }>(
        `select type, count(*)::text as n from streak_event where definition_id = $1 and member_id = any($2::uuid[])
            and type in ('streak.repaired', 'streak.milestone_reached') group by type order by type`, [repairDef, ids]);
      expect(events.rows).toEqual([{ type: "streak.milestone_reached", n: "3" }, { type: "streak.repaired", n: "3" }]);
      const rewards = await coordinator!.query<{ n: string }>("select count(*)::text as n from reward where definition_id = $1 and member_id = any($2::uuid[])", [repairDef, ids]);
      expect(rewards.rows[0]!.n).toBe("3");
    });
  });

  describe("features not on Citus answer FAILED_PRECONDITION and change nothing", () => {
    // Each refusal names Citus (reason CITUS_UNSUPPORTED) instead of a raw SQL error, and writes nothing.
    async function refused(call: Promise<unknown>): Promise<void> {
      const error = await expectFailure(call, Code.FailedPrecondition, "CITUS_UNSUPPORTED");
      expect(error.rawMessage).toMatch(/Citus/);
    }
    const count = async (sql: string, params: unknown[] = []) => (await coordinator!.query<{ n: string }>(sql, params)).rows[0]!.n;
    let individual = "";

    beforeAll(async () => {
      individual = await createDefinition(citusApi!, "refusals");
      clock.set(START + 6 * DAY);
      await citusApi!.client(ActivityService).recordActivity({
        activity: { memberRef: { case: "memberExternalId", value: "keep-me" }, target: { case: "eventType", value: "refusals" }, occurTime: timestampFromMs(clock.now()), uniqueIdentifier: "keep-me" },
      });
    }, 60_000);

    it("citus/a_team_definition_is_refused", async () => {
      const defs = citusApi!.client(DefinitionService);
      const before = await count("select count(*)::text as n from streak_definition");
      await refused(defs.createDefinition({
        definition: {
          name: "team", eventTypes: ["team"], team: {},
          window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
          condition: { type: ConditionType.COUNT, min: 1 },
        },
      }));
      expect(await count("select count(*)::text as n from streak_definition")).toBe(before);
    });

    it("citus/import_activities_is_refused", async () => {
      const before = await count("select count(*)::text as n from activity");
      await refused(citusApi!.client(ActivityService).importActivities({
        activities: [{ memberRef: { case: "memberExternalId", value: "imp-1" }, target: { case: "eventType", value: "visit" }, occurTime: timestampFromMs(START), uniqueIdentifier: "imp-1" }],
        milestonePolicy: ImportMilestonePolicy.NONE,
      }));
      expect(await count("select count(*)::text as n from activity")).toBe(before);
      expect(await count("select count(*)::text as n from member where id = $1", [memberIdFor(citusApi!.admin.tenantId, "imp-1")])).toBe("0");
    });

    it("citus/team_service_is_refused", async () => {
      const before = await count("select count(*)::text as n from team");
      await refused(citusApi!.client(TeamService).createTeam({ definitionId: individual, name: "t", memberExternalIds: ["keep-me", "other"] }));
      expect(await count("select count(*)::text as n from team")).toBe(before);
    });
  });

  describe("webhooks and member erasure", () => {
    const hooked = ["hook-1", "hook-2"];
    let hooksDef = "";
    let erasureDef = "";

    /** The rows naming `memberId` on every shard of `table` (counted on the workers, shard by shard). */
    async function rowsOnShards(table: string, memberId: string): Promise<number> {
      const column = table === "member" ? "id" : "member_id";
      const { rows } = await coordinator!.query<{ n: string }>(
        `select coalesce(sum(result::bigint), 0)::text as n from run_command_on_shards($1, format('select count(*) from %%s where ${column} = %L', $2::text))`,
        [table, memberId],
      );
      return Number(rows[0]!.n);
    }

    it("citus/webhook_events_are_delivered_once_signed_and_retried", async () => {
      // Two subscriptions on a real local endpoint: /once acknowledges every request, /flaky answers 500 to the
      // first attempt of each event. Two dispatchers run at once, as two worker processes would.
      hooksDef = await createDefinition(citusApi!, "hooks");
      const receiver = await startWebhookReceiver((r, all) =>
        r.path === "/flaky" && all.filter((x) => x.path === "/flaky" && x.headers["kindling-event-id"] === r.headers["kindling-event-id"]).length === 1 ? 500 : 200);
      const events = citusApi!.client(EventService);
      const subscribe = (path: string) => events.createWebhookSubscription({ url: `${receiver.url}${path}`, eventTypes: [EventType.STREAK_INCREMENTED], definitionId: hooksDef });
      const [once, flaky] = [await subscribe("/once"), await subscribe("/flaky")];
      const pools = [0, 1].map(() => new pg.Pool({ connectionString: cluster!.url, max: 3 }));
      const logger = createLogger(process.env.TEST_LOG_LEVEL === "silent" ? "silent" : "error");
      const dispatchers = pools.map((pool) => createWebhookDispatcher({ pool, logger, pollIntervalMs: 50, baseBackoffMs: 200 }));
      try {
        for (const d of dispatchers) d.start();
        clock.set(START + 7 * DAY);
        for (const m of hooked) {
          const { results } = await citusApi!.client(ActivityService).recordActivity({
            activity: { memberRef: { case: "memberExternalId", value: m }, target: { case: "eventType", value: "hooks" }, occurTime: timestampFromMs(clock.now()), uniqueIdentifier: m },
          });
          expect(results[0]!.applied).toBe(true);
        }
        const settled = async (subscriptionId: string) => (await events.listWebhookDeliveries({ subscriptionId })).deliveries;
        await eventually(async () => {
          const all = [...(await settled(once.subscription!.id)), ...(await settled(flaky.subscription!.id))];
          return all.length === 4 && all.every((d) => d.state === WebhookDeliveryState.SUCCEEDED) ? true : undefined;
        }, 60_000);
        // More ticks of both dispatchers: nothing is delivered again.
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      } finally {
        await Promise.all(dispatchers.map((d) => d.stop()));
        await Promise.all(pools.map((p) => p.end()));
        await receiver.close();
      }
      const { rows: stored } = await coordinator!.query<{ public_id: string; external_id: string }>(
        `select e.public_id::text, m.external_id from streak_event e join member m on m.id = e.member_id
          where e.definition_id = $1 and e.type = 'streak.incremented' and e.member_id = any($2::uuid[])`,
        [hooksDef, hooked.map((m) => memberIdFor(citusApi!.admin.tenantId, m))],
      );
      expect(stored.map((e) => e.external_id).sort()).toEqual(hooked);
      for (const [path, secret, attempts] of [["/once", once.secret, 1], ["/flaky", flaky.secret, 2]] as const) {
        const got = receiver.received.filter((r) => r.path === path);
        // Each event once to /once; to /flaky twice (the 500, then the retry), with the same body.
        expect(got.map((r) => r.headers["kindling-event-id"]).sort(), path).toEqual(stored.flatMap((e) => Array.from({ length: attempts }, () => e.public_id)).sort());
        for (const r of got) {
          expect(r.headers["kindling-signature"], path).toBe(expectedSignature(secret, r));
          const body = JSON.parse(r.body) as { id: string; type: string; memberExternalId: string; definitionId: string };
          expect(body).toMatchObject({ id: r.headers["kindling-event-id"], type: "EVENT_TYPE_STREAK_INCREMENTED", definitionId: hooksDef });
          expect(body.memberExternalId).toBe(stored.find((e) => e.public_id === body.id)!.external_id);
        }
      }
      expect((await events.listWebhookDeliveries({ subscriptionId: flaky.subscription!.id })).deliveries.map((d) => [d.attempts, d.lastStatusCode])).toEqual([[2, 200], [2, 200]]);
      for (const s of [once, flaky]) await events.deleteWebhookSubscription({ subscriptionId: s.subscription!.id });
    }, 120_000);

    it("citus/erase_member_deletes_its_rows_on_every_shard_and_nothing_else", async () => {
      // hook-1 and hook-2 reach a provider reward (threshold 3) on a second definition: streaks, states, windows,
      // activities and their keys, events and their keys, a reward and its outbox row, beside the webhook deliveries
      // of their events above; so do ten more members, spread over both workers.
      const defId = await createDefinition(citusApi!, "erasure");
      erasureDef = defId;
      const members = [...hooked, ...Array.from({ length: 10 }, (_, k) => `erase-keep-${k}`)];
      for (let d = 0; d < 3; d++) {
        clock.set(START + (7 + d) * DAY);
        await Promise.all(members.map((m) => citusApi!.client(ActivityService).recordActivity({
          activity: { memberRef: { case: "memberExternalId", value: m }, target: { case: "eventType", value: "erasure" }, occurTime: timestampFromMs(clock.now()), uniqueIdentifier: `${m}-erasure-${d}` },
        })));
      }
      const erased = memberIdFor(citusApi!.admin.tenantId, "hook-1");
      const tables = ["member", "member_streak", "member_streak_state", "streak_window", "activity", "activity_key", "reward", "streak_event", "streak_event_key"];
      const before = new Map<string, number>();
      for (const t of tables) before.set(t, await rowsOnShards(t, erased));
      // Everything the member has, on its shard (streak_window: the finalised windows of its two streaks).
      for (const t of tables) expect(before.get(t), t).toBeGreaterThan(0);
      const eventIds = async () => (await coordinator!.query<{ id: string }>("select id::text from streak_event where member_id = $1", [erased])).rows.map((r) => r.id);
      const rewardIds = (await coordinator!.query<{ id: string }>("select id::text from reward where member_id = $1", [erased])).rows.map((r) => r.id);
      expect(rewardIds).toHaveLength(1);
      /** Every row of the cluster's member tables and coordinator tables that is not the erased member's. */
      const others = async () => {
        const snapshot: Record<string, string[]> = {};
        for (const t of tables) {
          const column = t === "member" ? "id" : "member_id";
          snapshot[t] = (await coordinator!.query<{ r: string }>(`select row_to_json(t)::text as r from ${t} t where t.${column} <> $1`, [erased])).rows.map((x) => x.r).sort();
        }
        snapshot.webhook_delivery = (await coordinator!.query<{ r: string }>(
          "select row_to_json(t)::text as r from webhook_delivery t where t.event_id <> all($1::bigint[])", [await eventIds()])).rows.map((x) => x.r).sort();
        snapshot.outbox_message = (await coordinator!.query<{ r: string }>(
          `select row_to_json(t)::text as r from outbox_message t
            where coalesce(t.payload->>'memberId', '') <> $1 and coalesce(t.payload->>'rewardId', '') <> all($2::text[]) and t.kind <> 'reward.cancel'`, [erased, rewardIds])).rows.map((x) => x.r).sort();
        return snapshot;
      };
      const ids = await eventIds();
      expect(Number((await coordinator!.query<{ n: string }>("select count(*)::text as n from webhook_delivery where event_id = any($1::bigint[])", [ids])).rows[0]!.n)).toBe(2);
      const othersBefore = await others();
      expect(othersBefore.webhook_delivery!.length).toBeGreaterThanOrEqual(2);
      expect(othersBefore.reward!.length).toBeGreaterThan(0);

      const answer = await citusApi!.client(MemberService).eraseMember({ memberExternalId: "hook-1" });
      expect(answer.erased).toBe(true);
      expect(answer.cancelledRewardCount).toBe(1);
      const deleted = Object.fromEntries(answer.tables.map((t) => [t.table, Number(t.deletedCount)]));
      for (const t of tables) expect(deleted[t], t).toBe(before.get(t));
      expect(deleted.webhook_delivery).toBe(2);
      // Gone from every shard of every member table, and from the coordinator's tables.
      for (const t of tables) expect(await rowsOnShards(t, erased), t).toBe(0);
      expect(Number((await coordinator!.query<{ n: string }>("select count(*)::text as n from webhook_delivery where event_id = any($1::bigint[])", [ids])).rows[0]!.n)).toBe(0);
      const outbox = await coordinator!.query<{ kind: string }>(
        "select kind from outbox_message where payload->>'memberId' = $1 or payload->>'rewardId' = any($2::text[]) order by kind", [erased, rewardIds]);
      expect(outbox.rows.map((r) => r.kind)).toEqual(["reward.cancel"]);
      const tally = await coordinator!.query<{ erased_members: number; erased_activities: string; erased_rewards: number }>(
        "select erased_members, erased_activities::text, erased_rewards from member_erasure_tally where tenant_id = $1 and definition_id = $2", [citusApi!.admin.tenantId, defId]);
      expect(tally.rows).toEqual([{ erased_members: 1, erased_activities: "3", erased_rewards: 1 }]);
      // Everyone else's rows, the other hooked member's deliveries among them, are as they were.
      expect(await others()).toEqual(othersBefore);
      expect((await citusApi!.client(MemberService).eraseMember({ memberExternalId: "hook-1" })).erased).toBe(false);
    }, 120_000);

    // As on one PostgreSQL (test/api/data-rights.test.ts, erase/activity_recorded_during_the_erasure_leaves_no_orphan_rows):
    // whichever of an erasure and a member's new activities goes first, no row on any shard names a member that
    // no longer exists (a recording that read the member's id before the erasure committed is undone by its second pass).
    it("citus/activity_recorded_during_an_erasure_leaves_no_orphan_rows", async () => {
      const activities = citusApi!.client(ActivityService);
      const record = (member: string, key: string) => activities.recordActivity({
        activity: { memberRef: { case: "memberExternalId", value: member }, target: { case: "definitionId", value: erasureDef }, occurTime: timestampFromMs(clock.now()), uniqueIdentifier: `${member}-${key}` },
      });
      clock.set(START + 9 * DAY + HOUR);
      for (let round = 0; round < 6; round++) {
        const member = `era-race-${round}`;
        await record(member, "first");
        const results = await Promise.allSettled([citusApi!.client(MemberService).eraseMember({ memberExternalId: member }), record(member, "late"), record(member, "late-2")]);
        expect(results.map((r) => (r.status === "rejected" ? String(r.reason) : r.status))).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
      }
      const orphans = await coordinator!.query<{ t: string; n: number }>(
        `select 'activity' as t, count(*)::int as n from activity a where not exists (select 1 from member m where m.id = a.member_id)
         union all select 'member_streak', count(*)::int from member_streak s where not exists (select 1 from member m where m.id = s.member_id)
         union all select 'reward', count(*)::int from reward r where not exists (select 1 from member m where m.id = r.member_id)
         union all select 'streak_event', count(*)::int from streak_event e where not exists (select 1 from member m where m.id = e.member_id)`,
      );
      expect(orphans.rows).toEqual([{ t: "activity", n: 0 }, { t: "member_streak", n: 0 }, { t: "reward", n: 0 }, { t: "streak_event", n: 0 }]);
    }, 120_000);
  });

  it("citus/a_tenant_sets_changes_and_clears_its_data_retention", async () => {
    // tenant_retention is a reference table: the upsert's second call takes its DO UPDATE (it called now() there,
    // which Citus refuses in a DO UPDATE on a distributed or reference table, and answered INTERNAL on every call).
    const tenants = citusApi!.client(TenantService);
    expect(await tenants.setDataRetention({ retentionDays: 30 })).toMatchObject({ retentionDays: 30, tenantOverride: true });
    expect(await tenants.setDataRetention({ retentionDays: 60 })).toMatchObject({ retentionDays: 60, tenantOverride: true });
    expect(await tenants.getDataRetention({})).toMatchObject({ retentionDays: 60, tenantOverride: true });
    const { rows } = await coordinator!.query<{ retention_days: number }>("select retention_days from tenant_retention where tenant_id = $1", [citusApi!.admin.tenantId]);
    expect(rows).toEqual([{ retention_days: 60 }]);
    expect(await tenants.setDataRetention({ retentionDays: 0 })).toMatchObject({ tenantOverride: false });
    expect((await coordinator!.query("select 1 from tenant_retention where tenant_id = $1", [citusApi!.admin.tenantId])).rows).toEqual([]);
  });

  it("citus/a_recording_aborted_as_a_deadlock_victim_is_recorded_by_a_retry", async () => {
    // Two definitions on one event type: a recording locks the member's two streak rows in definition-id order. A
    // session on the member's worker holds the second row, waits until the recording holds the first and waits
    // for the second, then asks for the first: a deadlock, and the recording's transaction is the one aborted
    // (40P01; the session never runs the deadlock check itself). The recording is run again and answers applied.
    const ids = [await createDefinition(citusApi!, "deadlock"), await createDefinition(citusApi!, "deadlock")].sort();
    const member = "deadlock-1";
    const memberId = memberIdFor(citusApi!.admin.tenantId, member);
    const activities = citusApi!.client(ActivityService);
    const record = (d: number) => {
      clock.set(START + (8 + d) * DAY);
      return activities.recordActivities({
        activities: [{ memberRef: { case: "memberExternalId", value: member }, target: { case: "eventType", value: "deadlock" }, occurTime: timestampFromMs(clock.now()), uniqueIdentifier: `${member}-${d}` }],
      });
    };
    expect((await record(0)).results[0]!.duplicate).toBe(false);
    const { rows: [shard] } = await coordinator!.query<{ nodeport: number; shard_name: string }>(
      `select nodeport, shard_name from citus_shards
        where table_name = 'member_streak'::regclass and shardid = get_shard_id_for_distribution_column('member_streak', $1::uuid)`, [memberId]);
    const workerUrl = cluster!.url.replace(`:${cluster!.coordinatorPort}/`, `:${shard!.nodeport}/`);
    const blocker = new pg.Client({ connectionString: workerUrl });
    const watcher = new pg.Client({ connectionString: workerUrl });
    await Promise.all([blocker.connect(), watcher.connect()]);
    try {
      await blocker.query("begin");
      await blocker.query("set local deadlock_timeout = '10min'");
      await blocker.query("set local citus.enable_manual_changes_to_shards = on");
      const blockerPid = (await blocker.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid;
      const lock = (definitionId: string) => blocker.query(`select 1 from ${shard!.shard_name} where member_id = $1 and definition_id = $2 for update`, [memberId, definitionId]);
      await lock(ids[1]!);
      // Settled as it comes (on the old code it failed INTERNAL while the session still held its locks).
      const recorded = record(1).then((answer) => ({ answer }), (error: unknown) => ({ error }));
      await eventually(async () => {
        const { rows } = await watcher.query<{ waiting: boolean }>(
          "select exists (select 1 from pg_stat_activity where $1 = any(pg_blocking_pids(pid))) as waiting", [blockerPid]);
        return rows[0]!.waiting ? true : undefined;
      }, 60_000);
      // Returns once the recording's transaction was aborted and its lock on the first row released.
      await lock(ids[0]!);
      await blocker.query("commit");
      const settled = await recorded;
      if ("error" in settled) throw settled.error;
      const [answer] = settled.answer.results;
      expect(answer!.error).toBeUndefined();
      expect(answer!.duplicate).toBe(false);
      expect(answer!.results.map((r) => [r.definitionId, r.applied, r.streak?.currentCount])).toEqual(ids.map((id) => [id, true, 2]));
    } finally {
      await blocker.query("rollback").catch(() => undefined);
      await Promise.all([blocker.end(), watcher.end()]);
    }
    // Stored once and counted once in each definition.
    const stored = await coordinator!.query<{ n: string }>("select count(*)::text as n from activity where member_id = $1", [memberId]);
    expect(stored.rows[0]!.n).toBe("2");
    const counts = await coordinator!.query<{ definition_id: string; current_count: number }>(
      "select definition_id::text, current_count from member_streak where member_id = $1", [memberId]);
    expect(counts.rows.map((r) => [r.definition_id, r.current_count]).sort()).toEqual(ids.map((id) => [id, 2]));
  }, 120_000);

  it("citus/a_worker_restarted_mid_run_loses_nothing_acknowledged", async () => {
    const id = await createDefinition(citusApi!, "restart");
    clock.set(START + DAYS * DAY);
    const activities = citusApi!.client(ActivityService);
    const at = timestampFromMs(clock.now());
    const acknowledged: string[] = [];
    const failed: string[] = [];
    const send = async (n: number) => {
      const key = `r-${n}`;
      try {
        await activities.recordActivity({ activity: { memberRef: { case: "memberExternalId", value: key }, target: { case: "eventType", value: "restart" }, occurTime: at, uniqueIdentifier: key } });
        acknowledged.push(key);
      } catch {
        failed.push(key);
      }
    };
    // 8 writers in a loop; the first worker restarts once 100 recordings were acknowledged.
    let next = 0;
    const total = 600;
    const writers = Array.from({ length: 8 }, async () => {
      for (let n = next++; n < total; n = next++) await send(n);
    });
    await eventually(async () => (acknowledged.length >= 100 ? true : undefined), 60_000);
    await cluster!.restartWorker(cluster!.workerPorts[0]!);
    // Mid-run: writers were still sending when the worker came back.
    expect(next).toBeLessThan(total);
    await Promise.all(writers);
    expect(acknowledged.length + failed.length).toBe(total);
    // Everything acknowledged is stored, once, and counted.
    const { rows } = await coordinator!.query<{ unique_identifier: string; n: string; counted: boolean }>(
      `select a.unique_identifier, count(*)::text as n, bool_and(s.current_count = 1) as counted
         from activity a join member_streak s on s.member_id = a.member_id and s.definition_id = $2
        where a.unique_identifier = any($1::text[]) group by a.unique_identifier`,
      [acknowledged, id],
    );
    expect(rows.length).toBe(acknowledged.length);
    expect(rows.every((r) => r.n === "1" && r.counted)).toBe(true);
    // Those that failed are recorded by a retry, once (a retry of one that did commit answers duplicate).
    for (const key of failed) {
      await activities.recordActivity({ activity: { memberRef: { case: "memberExternalId", value: key }, target: { case: "eventType", value: "restart" }, occurTime: at, uniqueIdentifier: key } });
    }
    const stored = await coordinator!.query<{ n: string }>("select count(*)::text as n from activity where definition_id is null and event_type = 'restart'");
    expect(stored.rows[0]!.n).toBe(String(total));
  }, 240_000);

  it("citus/the_outbox_relay_issues_each_reward_once", async () => {
    // The worker starts last: its relay also starts each definition's sweeper, which sweeps by the real clock, and
    // the workload's days (by the servers' test clock) are all in the past by it.
    worker = await startWorker({
      databaseUrl: cluster!.url, temporalAddress: temporal!.address, namespace: temporal!.namespace, taskQueue: temporal!.taskQueue,
      logger: createLogger(process.env.TEST_LOG_LEVEL === "silent" ? "silent" : "error"), workflowBundle: await bundleWorkflows(), relayPollMs: 100, databaseKind: "citus",
    });
    // The worker starts the retention workflow on Citus as on one PostgreSQL (its sweeps: the last test below).
    await eventually(async () => {
      const described = await temporal!.client.workflow.getHandle(retentionWorkflowId(temporal!.taskQueue)).describe().catch(() => undefined);
      return described?.status.name === "RUNNING" ? true : undefined;
    }, 30_000);
    const rewards = citusApi!.client(RewardService);
    const issued = await eventually(async () => {
      const { rewards: page } = await rewards.listRewards({ definitionId, pageSize: 100 });
      return page.length === MEMBERS + 20 && page.every((r) => r.state === RewardState.ISSUED) ? page : undefined;
    }, 90_000);
    expect(new Set(issued.map((r) => r.couponCode)).size).toBe(MEMBERS + 20);
    const { rows } = await coordinator!.query<{ n: string }>("select count(*)::text as n from streak_event where type = 'reward.issued' and definition_id = $1", [definitionId]);
    expect(rows[0]!.n).toBe(String(MEMBERS + 20));
  }, 240_000);
  // Last: a pass drops whole weeks older than every tenant's retention, which takes the earlier tests' rows too.
  // Two tenants' activities and events spread over 64 members each (both workers) on a Monday and a Wednesday of
  // ten weeks ahead of the real clock, plus one far ahead; the weeks from the fifth on are created by the sweep, the
  // rows of those weeks waiting in the default partition until then (times with microseconds, as the database's
  // clock writes them). At week 10's Tuesday, with a default of 49
  // days and 14 days for the short tenant: weeks up to 2 are dropped (both tenants), and the short tenant's rows
  // older than 14 days are deleted row by row (pages of 100), week 8's Monday among them, its Wednesday kept.
  it("citus/retention_drops_old_weeks_and_deletes_a_short_tenants_rows_on_every_shard", async () => {
    const WEEK = 7 * DAY;
    const monday = weekStart(Date.now());
    const now = monday + 10 * WEEK + DAY;
    const [short, long] = [randomUUID(), randomUUID()];
    for (const [id, name] of [[short, "retention-short"], [long, "retention-long"]]) {
      await coordinator!.query("insert into tenant (id, name, created_at, updated_at) values ($1, $2, now(), now())", [id, name]);
    }
    await setTenantRetention(coordinator!, short, 14);
    const slots = [...Array.from({ length: 10 }, (_, k) => [monday + (k + 1) * WEEK + 12 * HOUR, monday + (k + 1) * WEEK + 2 * DAY + 12 * HOUR]).flat(), monday + 20 * WEEK];
    const at = slots.map((ms) => new Date(ms));
    await coordinator!.query(
      `insert into activity (id, tenant_id, member_id, definition_id, applied_definition_ids, occurred_at, value, unique_identifier, metadata, recorded_at, imported)
       select gen_random_uuid(), t, md5(t::text || m)::uuid, null, '{}', x, 1, 'ret-' || m || '-' || extract(epoch from x), '{}', x + m * interval '1 microsecond', false
         from unnest($1::uuid[]) t cross join generate_series(0, 63) m cross join unnest($2::timestamptz[]) x`,
      [[short, long], at],
    );
    await coordinator!.query(
      `insert into streak_event (tenant_id, type, member_id, definition_id, dedupe_key, payload, occurred_at, created_at)
       select t, 'streak.incremented', md5(t::text || m)::uuid, null, 'ret-' || m || '-' || extract(epoch from x), '{}', x, x + m * interval '1 microsecond'
         from unnest($1::uuid[]) t cross join generate_series(0, 63) m cross join unnest($2::timestamptz[]) x`,
      [[short, long], at],
    );
    // The admin tenant (at the default): "hold" checks in once in week 1, whose window its stored
    // state has not finalised; "busy" on week 1's Monday and Thursday, which finalised Monday's window. The week's
    // drop keeps the activities still needed (back in the default partition, with their keys) and nothing else.
    const holdDef = await createDefinition(citusApi!, "retention-hold");
    // The ingestor the API runs on Citus, on its own clock (the API refuses an occurrence ahead of the real one).
    const checkIn = async (member: string, ms: number, key: string) => {
      const ingestor = createActivityIngestor({ pool: coordinator!, catalog: createDefinitionCatalog(coordinator!, 0), now: () => ms, citus: true });
      const recorded = await ingestor.record({ tenantId: citusApi!.admin.tenantId, memberExternalId: member, target: { definitionId: holdDef }, occurredAt: ms, uniqueIdentifier: key, metadata: {} });
      expect(recorded.duplicate, key).toBe(false);
    };
    await checkIn("ret-hold", monday + WEEK + 12 * HOUR, "ret-hold-0");
    await checkIn("ret-busy", monday + WEEK + 12 * HOUR, "ret-busy-0");
    await checkIn("ret-busy", monday + WEEK + 3 * DAY + 12 * HOUR, "ret-busy-3");
    // A webhook delivery for every event of both tenants (a coordinator table: read, then written).
    const events = await coordinator!.query<{ id: string; tenant_id: string }>("select id::text, tenant_id from streak_event where tenant_id = any($1::uuid[])", [[short, long]]);
    await coordinator!.query(
      `insert into webhook_delivery (id, tenant_id, subscription_id, event_id, status, attempts, created_at, updated_at)
       select gen_random_uuid(), t, $3::uuid, e, 'SUCCEEDED', 1, now(), now() from unnest($1::uuid[], $2::bigint[]) as d(t, e)`,
      [events.rows.map((e) => e.tenant_id), events.rows.map((e) => e.id), randomUUID()],
    );

    const shortCutoff = new Date(now - 14 * DAY);
    const longCutoff = new Date(monday + 3 * WEEK);
    const count = async (table: string, tenant: string, column: string, op: "<" | ">=", bound: Date) => {
      const { rows } = await coordinator!.query<{ nodeport: number; n: string }>(
        `select s.nodeport, sum(r.result::bigint)::text as n
           from run_command_on_shards($1, format('select count(*) from %%s where tenant_id = %L and ${column} ${op} %L', $2::uuid, $3::timestamptz)) r
           join citus_shards s on s.shardid = r.shardid group by s.nodeport order by 1`,
        [table, tenant, bound],
      );
      return Object.fromEntries(rows.map((r) => [r.nodeport, Number(r.n)]));
    };
    const split = async () => {
      const out: Record<string, Record<string, number>> = {};
      for (const [tenant, bound, name] of [[short, shortCutoff, "short"], [long, longCutoff, "long"]] as const) {
        for (const [table, column] of [["activity", "recorded_at"], ["activity_key", "recorded_at"], ["streak_event", "created_at"]]) {
          out[`${table}/${name}/gone`] = await count(table!, tenant, column!, "<", bound);
          out[`${table}/${name}/kept`] = await count(table!, tenant, column!, ">=", bound);
        }
      }
      return out;
    };
    const before = await split();
    const workers = [...cluster!.workerPorts].sort((a, b) => a - b);
    // Both workers hold rows past retention and rows within it, of each tenant and each table.
    for (const [key, byWorker] of Object.entries(before)) for (const w of workers) expect(byWorker[w] ?? 0, `${key} on ${w}`).toBeGreaterThan(0);
    const slotsBefore = (bound: Date) => slots.filter((s) => s < bound.getTime()).length * 64;
    expect(Object.values(before["activity/short/gone"]!).reduce((a, b) => a + b, 0)).toBe(slotsBefore(shortCutoff));

    // The weeks ahead as the workflow creates them over time: weeks 5-9 (5 and 6 hold rows in the default
    // partition, which move into them), then weeks 10-14.
    const created = [...await ensurePartitions(coordinator!, monday + 5 * WEEK), ...await ensurePartitions(coordinator!, now)];
    const week = (k: number) => new Date(monday + k * WEEK).toISOString().slice(0, 10).replaceAll("-", "");
    expect(created.sort()).toEqual(["activity", "streak_event"].flatMap((t) => Array.from({ length: 10 }, (_, k) => `${t}_p${week(k + 5)}`)).sort());

    const pass = await applyRetention(coordinator!, now, { defaultDays: 49 }, { pageSize: 100 });
    expect(pass.droppedPartitions.sort()).toEqual(["activity", "streak_event"].flatMap((t) => [`${t}_legacy`, ...[0, 1, 2].map((k) => `${t}_p${week(k)}`)]).sort());
    const after = await split();
    for (const [key, byWorker] of Object.entries(after)) {
      for (const w of workers) expect(byWorker[w] ?? 0, `${key} on ${w}`).toBe(key.endsWith("/gone") ? 0 : before[key]![w]);
    }
    // Exactly the short tenant's rows within 14 days are kept (week 8's Monday went, its Wednesday stayed), and
    // the long tenant's from week 3 on.
    const total = (byWorker: Record<string, number>) => Object.values(byWorker).reduce((a, b) => a + b, 0);
    expect(total(after["activity/short/kept"]!)).toBe(slots.filter((s) => s >= shortCutoff.getTime()).length * 64);
    expect(total(after["streak_event/long/kept"]!)).toBe(slots.filter((s) => s >= longCutoff.getTime()).length * 64);
    // Event keys: one per kept event, on its shard.
    for (const [tenant, name] of [[short, "short"], [long, "long"]] as const) {
      const { rows } = await coordinator!.query<{ nodeport: number; n: string }>(
        `select s.nodeport, sum(r.result::bigint)::text as n from run_command_on_shards('streak_event_key', format('select count(*) from %%s where tenant_id = %L', $1::uuid)) r
           join citus_shards s on s.shardid = r.shardid group by s.nodeport`, [tenant]);
      expect(Object.fromEntries(rows.map((r) => [r.nodeport, Number(r.n)])), name).toEqual(after[`streak_event/${name}/kept`]);
    }
    // Deliveries only for the events kept; the floors raised (the short tenant's rows, every tenant's dropped weeks).
    const kept = (await coordinator!.query<{ id: string }>("select id::text from streak_event where tenant_id = any($1::uuid[])", [[short, long]])).rows.map((r) => r.id);
    const delivered = (await coordinator!.query<{ id: string }>("select event_id::text as id from webhook_delivery where tenant_id = any($1::uuid[])", [[short, long]])).rows.map((r) => r.id);
    const numeric = (ids: string[]) => ids.map(BigInt).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String);
    expect(numeric(delivered)).toEqual(numeric(kept));
    expect(await retentionFloor(coordinator!, short)).toBeGreaterThan(0n);
    const floors = await coordinator!.query<{ tenant_id: string }>("select tenant_id from event_retention_floor where tenant_id = any($1::uuid[])", [[short, ALL_TENANTS]]);
    expect(floors.rows.map((r) => r.tenant_id).sort()).toEqual([ALL_TENANTS, short].sort());
    // The partitions from week 3 to 14 exist, each distributed with shards on both workers; the default partition
    // holds none of the two tenants' rows but the far-ahead ones.
    const weeks = (await listPartitions(coordinator!)).filter((p) => !p.isDefault).map((p) => p.name);
    expect(weeks.sort()).toEqual(["activity", "streak_event"].flatMap((t) => Array.from({ length: 12 }, (_, k) => `${t}_p${week(k + 3)}`)).sort());
    for (const name of weeks) {
      const { rows } = await coordinator!.query<{ nodeport: number }>("select distinct nodeport from citus_shards where table_name = $1::regclass order by 1", [name]);
      expect(rows.map((r) => r.nodeport), name).toEqual(workers);
    }
    for (const [table, column] of [["activity_default", "recorded_at"], ["streak_event_default", "created_at"]] as const) {
      const { rows } = await coordinator!.query<{ n: string }>(
        `select coalesce(sum(result::bigint), 0)::text as n
           from run_command_on_shards($1, format('select count(*) from %%s where tenant_id in (%L, %L) and ${column} < %L', $2::uuid, $3::uuid, $4::timestamptz))`,
        [table, short, long, new Date(monday + 15 * WEEK)]);
      expect(rows[0]!.n, table).toBe("0");
    }
    expect(pass.activitiesKept).toBeGreaterThanOrEqual(2);
    /** Each activity (by unique identifier) is in the default partition, with its key, `kept` times (0 or 1). */
    const expectKeptInDefault = async (expected: readonly (readonly [string, number])[]) => {
      for (const [key, kept] of expected) {
        const { rows } = await coordinator!.query<{ n: string }>(
          `select coalesce(sum(result::bigint), 0)::text as n
             from run_command_on_shards('activity_default', format('select count(*) from %%s where tenant_id = %L and unique_identifier = %L', $1::uuid, $2::text))`,
          [citusApi!.admin.tenantId, key]);
        expect(Number(rows[0]!.n), key).toBe(kept);
        const keys = await coordinator!.query("select 1 from activity_key where tenant_id = $1 and member_id = $2 and unique_identifier = $3",
          [citusApi!.admin.tenantId, memberIdFor(citusApi!.admin.tenantId, key.slice(0, 8)), key]);
        expect(keys.rows.length, key).toBe(kept);
      }
    };
    await expectKeptInDefault([["ret-hold-0", 1], ["ret-busy-0", 0], ["ret-busy-3", 1]]);
    // "busy" checks in again in week 3, which finalises Thursday's window: the next pass deletes ret-busy-3 row by
    // row from the default partition (the admin tenant is at the longest retention), with its key; "hold" keeps
    // its activity. Nothing more of the two tenants goes.
    await checkIn("ret-busy", monday + 3 * WEEK + 12 * HOUR, "ret-busy-w3");
    const again = await applyRetention(coordinator!, now, { defaultDays: 49 }, { pageSize: 100 });
    expect(again.droppedPartitions).toEqual([]);
    expect(again.activitiesDeleted).toBeGreaterThanOrEqual(1);
    await expectKeptInDefault([["ret-hold-0", 1], ["ret-busy-3", 0]]);
    expect(await split()).toEqual(after);
  }, 240_000);
});
