// The batched ingestor (src/engine/ingest/batch-ingestor.ts): concurrent activities share transactions, and every item
// still gets exactly the answer and the stored effect the one-at-a-time path gives in arrival order. Part of the
// tests drive the API over gRPC (where RecordActivity calls batch by themselves); part drive the engine directly
// on the same database, where batch boundaries can be pinned down and compared with a sequential run.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createDefinitionCatalog } from "../../src/engine/definitions/definition-catalog.ts";
import {
  ACTIVITY_COLUMNS,
  activityRecord,
  createActivityIngestor,
  TargetDefinitionError,
  type ActivityRow,
  type RecordActivityInput,
  type RecordActivityResult,
} from "../../src/engine/ingest/activity-ingestor.ts";
import { batchIngestTotals, createBatchIngestor, type BatchIngestStats } from "../../src/engine/ingest/batch-ingestor.ts";
import { memberIdFor } from "../../src/db/member-id.ts";
import { createMemberStore } from "../../src/engine/members/member-store.ts";
import { importActivities } from "../../src/engine/import/activity-import.ts";
import { quoteLiteral, sqlLiteral } from "../../src/engine/ingest/sql-literal.ts";
import { createProgressReader, type RewardFactsByDefinition } from "../../src/engine/reads/progress-reader.ts";
import { recompute, type MemberStreakState } from "../../src/domain/streak-machine.ts";
import { startTestApi, type Credentials, type TestApi } from "../support/api.ts";
import { untilWaitingForLock } from "../support/fixtures.ts";

const DAY = 86_400_000;
const HOUR = 3_600_000;

let api: TestApi;
let pool: pg.Pool;
beforeAll(async () => {
  api = await startTestApi({ label: "batch_ingest" });
  pool = new pg.Pool({ connectionString: api.databaseUrl, max: 8 });
});
afterAll(async () => {
  await pool?.end();
  await api?.close();
});

async function liveDefinition(auth: Credentials, name: string, eventType: string, extra: Record<string, unknown> = {}) {
  const defs = api.client(DefinitionService, auth);
  const { definition } = await defs.createDefinition({
    definition: {
      name,
      eventTypes: [eventType],
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 100 },
      ...extra,
    },
  });
  await defs.publishDefinition({ definitionId: definition!.id });
  return definition!.id;
}

/** The calls really shared transactions: fewer batches than items, and nothing fell back to one at a time. */
function expectBatched(before: BatchIngestStats, after: BatchIngestStats) {
  expect(after.fallbacks - before.fallbacks).toBe(0);
  expect(after.batches - before.batches).toBeLessThan(after.items - before.items);
}

describe("batched recording over gRPC", () => {
  it("batch/concurrent_mixed_burst_with_duplicates_inside_and_across_batches", async () => {
    const id = await liveDefinition(api.admin, "Burst", "burst.event");
    const activities = api.client(ActivityService, api.admin, "grpc");
    const now = Date.now();
    const record = (member: string, uid: string) =>
      activities.recordActivity({
        activity: { memberRef: { case: "memberExternalId", value: member }, target: { case: "definitionId", value: id }, occurTime: timestampFromMs(now), uniqueIdentifier: uid },
      });
    // Round 1 stores some keys; round 2 repeats each of them (stored duplicates) and, inside the same burst, repeats
    // new keys several times (duplicates within a batch).
    const before = batchIngestTotals();
    await Promise.all(Array.from({ length: 20 }, (_, i) => record(`bm${i % 4}`, `first-${i}`)));
    const burst = Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? { member: `bm${i % 4}`, uid: `first-${i % 20}` } : { member: `bm${i % 4}`, uid: `second-${i % 12}` }));
    const results = await Promise.all(burst.map((b) => record(b.member, b.uid)));
    const byKey = new Map<string, typeof results>();
    burst.forEach((b, i) => byKey.set(`${b.member}/${b.uid}`, [...(byKey.get(`${b.member}/${b.uid}`) ?? []), results[i]!]));
    for (const [key, answers] of byKey) {
      const fresh = answers.filter((a) => !a.duplicate);
      // Keys from round 1 are all duplicates; every new key is recorded exactly once, the repeats say duplicate.
      expect(fresh, key).toHaveLength(key.includes("first-") ? 0 : 1);
      expect(new Set(answers.map((a) => a.activity?.id)).size, key).toBe(1);
      for (const a of answers.filter((x) => x.duplicate)) expect(a.results[0]?.notAppliedReason, key).toBeTruthy();
    }
    const distinctNew = new Set(burst.filter((b) => b.uid.startsWith("second-")).map((b) => `${b.member}/${b.uid}`)).size;
    let counted = 0;
    for (let m = 0; m < 4; m++) {
      const { streak } = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: `bm${m}`, definitionId: id });
      counted += streak?.currentWindowProgress?.count ?? 0;
    }
    expect(counted).toBe(20 + distinctNew);
    expectBatched(before, batchIngestTotals());
  });

  it("batch/unknown_definition_in_the_middle_of_a_burst_fails_only_its_own_request", async () => {
    const id = await liveDefinition(api.admin, "Unknown in burst", "unknown.burst");
    const activities = api.client(ActivityService, api.admin, "grpc");
    const now = Date.now();
    const missing = "00000000-0000-4000-8000-000000000000";
    const before = batchIngestTotals();
    const settled = await Promise.allSettled(
      Array.from({ length: 21 }, (_, i) =>
        activities.recordActivity({
          activity: {
            memberRef: { case: "memberExternalId", value: `ub${i % 3}` },
            target: { case: "definitionId", value: i === 10 ? missing : id },
            occurTime: timestampFromMs(now),
            uniqueIdentifier: `u-${i}`,
          },
        }),
      ),
    );
    settled.forEach((s, i) => {
      if (i === 10) {
        expect(s.status).toBe("rejected");
        expect(((s as PromiseRejectedResult).reason as ConnectError).code).toBe(Code.NotFound);
      } else {
        expect(s.status).toBe("fulfilled");
      }
    });
    expectBatched(before, batchIngestTotals());
  });

  it("batch/same_member_many_times_all_counted_with_one_increment_event", async () => {
    const id = await liveDefinition(api.admin, "Same member", "same.member", { condition: { type: ConditionType.COUNT, min: 30 } });
    const activities = api.client(ActivityService, api.admin, "grpc");
    const now = Date.now();
    const before = batchIngestTotals();
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        activities.recordActivity({
          activity: { memberRef: { case: "memberExternalId", value: "same" }, target: { case: "definitionId", value: id }, occurTime: timestampFromMs(now), uniqueIdentifier: `s-${i}` },
        }),
      ),
    );
    // Exactly one activity completed the window, whichever order they were applied in.
    expect(results.filter((r) => r.results[0]?.isNewActivity)).toHaveLength(1);
    expect(results.map((r) => r.results[0]?.streak?.currentWindowProgress?.count).sort((a, b) => a! - b!)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const { rows } = await pool.query("select count(*)::int as n from streak_event where definition_id = $1 and type = 'streak.incremented'", [id]);
    expect(rows[0].n).toBe(1);
    expectBatched(before, batchIngestTotals());
  });
});

describe("batched ingestor against sequential processing", () => {
  const T0 = Date.UTC(2031, 2, 10, 12, 0, 0);

  /** The same definition in two tenants: one fed by the batcher, one one at a time. */
  async function twin(extra: Record<string, unknown>, eventType: string) {
    const other = await api.newTenant("sequential twin");
    const spec = {
      condition: { type: ConditionType.SUM, min: 10 },
      graceDuration: { seconds: BigInt(DAY / 1000) },
      milestones: [
        { threshold: 2, reward: { kind: RewardKind.POINTS, points: 10, fulfilmentMode: FulfilmentMode.CLAIM } },
        { threshold: 3, reward: { kind: RewardKind.BADGE, badge: { name: "three" }, fulfilmentMode: FulfilmentMode.PROVIDER } },
      ],
      ...extra,
    };
    const a = await liveDefinition(api.admin, "Batched", eventType, spec);
    const b = await liveDefinition(other, "Sequential", eventType, spec);
    return { batched: { tenantId: api.admin.tenantId, definitionId: a }, sequential: { tenantId: other.tenantId, definitionId: b } };
  }

  /** A deterministic messy stream: repeats, stored duplicates, missing values, late and future events, profiles. */
  function stream(seed: number, count: number, now: number, prefix: string): Omit<RecordActivityInput, "tenantId" | "target">[] {
    let x = seed;
    const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const out: Omit<RecordActivityInput, "tenantId" | "target">[] = [];
    const zones = ["Asia/Tokyo", "America/New_York", "Europe/Berlin"];
    for (let i = 0; i < count; i++) {
      const member = `${prefix}${Math.floor(rnd() * 5)}`;
      const repeat = i > 3 && rnd() < 0.15 ? out[Math.floor(rnd() * i)] : undefined;
      if (repeat) {
        out.push({ ...repeat });
        continue;
      }
      const r = rnd();
      out.push({
        memberExternalId: member,
        occurredAt: now - Math.floor(rnd() * 2.5 * DAY) + (r < 0.03 ? DAY : 0),
        value: r > 0.93 ? undefined : Math.floor(rnd() * 8) + 1,
        uniqueIdentifier: `${member}-${seed}-${i}`,
        metadata: { i: String(i) },
        profile: rnd() < 0.2 ? { timeZone: zones[Math.floor(rnd() * zones.length)], firstName: `n${i}` } : undefined,
      });
    }
    return out;
  }

  const comparable = (r: RecordActivityResult) => ({
    duplicate: r.duplicate,
    activity: { uid: r.activity.uniqueIdentifier, occurredAt: r.activity.occurredAt, value: r.activity.value, applied: r.activity.appliedDefinitionIds.length },
    timeZone: r.member.timeZone,
    streaks: r.streaks.map((s) => ({ applied: s.applied, reason: s.notAppliedReason, outcome: s.outcome, state: s.state, effects: s.effects, rewards: s.rewards.map((w) => [w.threshold, w.kind, w.state]) })),
  });

  const comparableFacts = (f: RewardFactsByDefinition) => ({
    total: f.total,
    unclaimed: f.unclaimed.map((u) => ({ threshold: u.threshold, kind: u.kind, state: u.state, points: u.points, value: u.value, claimDeadlineAt: u.claimDeadlineAt })),
  });

  async function storedStreaks(tenantId: string, definitionId: string) {
    const { rows } = await pool.query<{
      external_id: string; state: MemberStreakState; status: string; current_count: number; longest_count: number; version: number;
      window_close_at: Date | null; at_risk_at: Date | null; break_at: Date | null; break_kind: string | null; break_window_key: string | null; last_activity_at: Date | null;
    }>(
      `select m.external_id, st.state, s.status, s.current_count, s.longest_count, s.version, s.window_close_at, s.at_risk_at, s.break_at, s.break_kind,
              s.break_window_key, s.last_activity_at
         from member_streak s join member_streak_state st on st.member_streak_id = s.id join member m on m.id = s.member_id
        where s.tenant_id = $1 and s.definition_id = $2 order by m.external_id`,
      [tenantId, definitionId],
    );
    return rows;
  }

  async function storedSideEffects(tenantId: string, definitionId: string, prefix: string) {
    const rewards = await pool.query(
      `select m.external_id, r.threshold, r.cycle, r.repetition, r.kind, r.state, r.mode, r.streak_count from reward r join member m on m.id = r.member_id
        where r.tenant_id = $1 and r.definition_id = $2 order by 1, 2, 3, 4`,
      [tenantId, definitionId],
    );
    const events = await pool.query<{ external_id: string; type: string; dedupe_key: string; occurred_at: Date }>(
      `select m.external_id, e.type, e.dedupe_key, e.occurred_at from streak_event e join member m on m.id = e.member_id where e.tenant_id = $1 and e.definition_id = $2`,
      [tenantId, definitionId],
    );
    const outbox = await pool.query(
      "select count(*)::int as n from outbox_message where tenant_id = $1 and kind = 'reward.lifecycle' and payload->>'definitionId' = $2",
      [tenantId, definitionId],
    );
    const members = await pool.query("select external_id, first_name, time_zone from member where tenant_id = $1 and starts_with(external_id, $2) order by external_id", [tenantId, prefix]);
    const activities = await pool.query(
      `select m.external_id, a.unique_identifier, a.occurred_at, a.value, cardinality(a.applied_definition_ids) as applied, a.metadata
         from activity a join member m on m.id = a.member_id where a.tenant_id = $1 and a.definition_id = $2 order by 1, 2`,
      [tenantId, definitionId],
    );
    // Dedupe keys start with the member streak id (or the reward id), which differ between the tenants.
    const normal = events.rows.map((e) => `${e.external_id} ${e.type} ${e.type === "reward.issued" ? "" : e.dedupe_key.split(":").slice(1).join(":")} ${e.occurred_at.getTime()}`).sort();
    return { rewards: rewards.rows, events: normal, outbox: outbox.rows[0].n, members: members.rows, activities: activities.rows };
  }

  // With inline profiles members are locked before streak rows; without, streak rows are locked in the batch's
  // first round trip (prelockSql). Both orders must give the sequential answers.
  it.each([
    { profiles: true, label: "with_inline_profiles", prefix: "seqp", prepared: true },
    { profiles: false, label: "without_profiles", prefix: "seqn", prepared: true },
    // Plain SQL with literal values instead of prepared statements (KINDLING_DB_PREPARED_STATEMENTS=false).
    { profiles: false, label: "without_profiles_or_prepared_statements", prefix: "seqx", prepared: false },
  ])("batch/results_and_stored_state_equal_sequential_processing_in_arrival_order_$label", async ({ profiles, prefix, prepared }) => {
    const { batched, sequential } = await twin(
      { window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00", useMemberTimeZone: true } } } },
      "twin.event",
    );
    let now = T0;
    const clock = () => now;
    const catalog = createDefinitionCatalog(pool, 30_000, clock);
    const batcher = createBatchIngestor({ pool, catalog, now: clock, options: { maxBatch: 16, maxInFlight: 1, preparedStatements: prepared } });
    const single = createActivityIngestor({ pool, catalog, now: clock });
    const reader = createProgressReader(pool, catalog);
    let grewInsideAPhase = false;
    // Three phases, the clock moving on between them, so windows close, streaks break and milestones are reached.
    for (const [phase, at] of [T0, T0 + DAY, T0 + 3 * DAY].entries()) {
      now = at;
      const items = stream(phase + 1, 70, at, prefix).map((a) => (profiles ? a : { ...a, profile: undefined }));
      const batchedResults = await Promise.all(items.map((a) => batcher.record({ ...a, tenantId: batched.tenantId, target: { definitionId: batched.definitionId } })));
      const sequentialResults: RecordActivityResult[] = [];
      const sequentialFacts: ReturnType<typeof comparableFacts>[] = [];
      for (const a of items) {
        const r = await single.record({ ...a, tenantId: sequential.tenantId, target: { definitionId: sequential.definitionId } });
        sequentialResults.push(r);
        // What the service reads after a one-at-a-time record: the member's rewards right after this item.
        sequentialFacts.push(comparableFacts((await reader.rewardFacts(sequential.tenantId, r.member.id, [sequential.definitionId]))(sequential.definitionId)));
      }
      expect(batchedResults.map(comparable)).toEqual(sequentialResults.map(comparable));
      expect(batchedResults.some((r) => r.duplicate)).toBe(true);
      // Each response's reward facts are as of its own item: rewards stored before the batch plus those of items
      // up to it, not those a later item of the same batch created.
      expect(batchedResults.map((r) => comparableFacts(r.rewardFacts!(batched.definitionId)))).toEqual(sequentialFacts);
      grewInsideAPhase ||= items.some((a, i) => items.some((b, j) => j > i && b.memberExternalId === a.memberExternalId && sequentialFacts[j]!.total > sequentialFacts[i]!.total));
    }
    // The stream really had a member earn a reward after an earlier item of the same batch (else the check above
    // could not tell facts as of each item from facts as of the batch's end).
    expect(grewInsideAPhase).toBe(true);
    const stats = batcher.stats();
    expect(stats.items).toBe(210);
    expect(stats.fallbacks).toBe(0);
    expect(stats.batches).toBeLessThanOrEqual(Math.ceil(70 / 16) * 3);

    const a = await storedStreaks(batched.tenantId, batched.definitionId);
    const b = await storedStreaks(sequential.tenantId, sequential.definitionId);
    expect(a.length).toBeGreaterThan(0);
    expect(a).toEqual(b);
    const sideA = await storedSideEffects(batched.tenantId, batched.definitionId, prefix);
    const sideB = await storedSideEffects(sequential.tenantId, sequential.definitionId, prefix);
    expect(sideA.rewards.length).toBeGreaterThan(0);
    expect(sideA).toEqual(sideB);

    // And both equal the domain's recompute from the stored activities that counted.
    const def = (await catalog.get(batched.tenantId, batched.definitionId))!;
    for (const row of a) {
      const { rows } = await pool.query<{ unique_identifier: string; occurred_at: Date; value: number | null }>(
        `select a.unique_identifier, a.occurred_at, a.value from activity a join member m on m.id = a.member_id
          where a.tenant_id = $1 and m.external_id = $2 and $3 = any(a.applied_definition_ids)`,
        [batched.tenantId, row.external_id, batched.definitionId],
      );
      const expected = recompute(def.rules, rows.map((r) => ({ id: r.unique_identifier, occurredAt: r.occurred_at.getTime(), value: r.value ?? 0, memberTimezone: row.state.zone })), now, { pausedIntervals: def.pauses });
      expect({ current: row.state.current, longest: row.state.longest, status: row.state.status }).toEqual({ current: expected.current, longest: expected.longest, status: expected.status });
    }
  });

  it("batch/fan_out_by_event_type_reaches_every_definition_like_sequential", async () => {
    const first = await twin({}, "fan.event");
    const second = await twin({ condition: { type: ConditionType.COUNT, min: 2 } }, "fan.event");
    // The twins of `first` and `second` live in different tenants; pair them up per side.
    const sides = {
      batched: { tenantId: first.batched.tenantId, ids: [first.batched.definitionId, second.batched.definitionId] },
      sequential: { tenantId: first.sequential.tenantId, ids: [first.sequential.definitionId] },
    };
    expect(second.sequential.tenantId).not.toBe(first.sequential.tenantId);
    const now = T0;
    const clock = () => now;
    const catalog = createDefinitionCatalog(pool, 30_000, clock);
    const batcher = createBatchIngestor({ pool, catalog, now: clock, options: { maxBatch: 8, maxInFlight: 1 } });
    const items = stream(42, 40, T0, "fan");
    const results = await Promise.all(items.map((a) => batcher.record({ ...a, tenantId: sides.batched.tenantId, target: { eventType: "fan.event" } })));
    for (const r of results) expect(r.streaks.map((s) => s.definition.id).sort()).toEqual([...sides.batched.ids].sort());
    expect(batcher.stats()).toMatchObject({ fallbacks: 0, items: 40, batches: 5 });
    // Each definition's rows equal a sequential run of the same stream against that definition alone.
    const single = createActivityIngestor({ pool, catalog, now: clock });
    for (const a of items) await single.record({ ...a, tenantId: first.sequential.tenantId, target: { definitionId: first.sequential.definitionId } });
    for (const a of items) await single.record({ ...a, tenantId: second.sequential.tenantId, target: { definitionId: second.sequential.definitionId } });
    expect(await storedStreaks(sides.batched.tenantId, first.batched.definitionId)).toEqual(await storedStreaks(first.sequential.tenantId, first.sequential.definitionId));
    expect(await storedStreaks(sides.batched.tenantId, second.batched.definitionId)).toEqual(await storedStreaks(second.sequential.tenantId, second.sequential.definitionId));
    const events = await pool.query<{ definition_id: string; n: number }>(
      "select definition_id, count(*)::int as n from streak_event where tenant_id = $1 and type = 'streak.incremented' group by 1",
      [sides.batched.tenantId],
    );
    expect(new Set(events.rows.filter((e) => sides.batched.ids.includes(e.definition_id)).map((e) => e.definition_id)).size).toBe(2);
  });

  it("batch/record_many_keeps_order_and_isolates_a_bad_item", async () => {
    const { batched, sequential } = await twin({}, "many.event");
    const now = T0;
    const catalog = createDefinitionCatalog(pool, 30_000, () => now);
    const batcher = createBatchIngestor({ pool, catalog, now: () => now, options: { maxBatch: 7 } });
    const single = createActivityIngestor({ pool, catalog, now: () => now });
    const items = stream(7, 30, T0, "many");
    const inputs = items.map((a, i) => ({ ...a, tenantId: batched.tenantId, target: { definitionId: i === 12 ? "00000000-0000-4000-8000-000000000001" : batched.definitionId } }));
    const settled = await batcher.recordMany(inputs);
    expect(settled[12]).toMatchObject({ ok: false });
    expect((settled[12] as { error: unknown }).error).toBeInstanceOf(TargetDefinitionError);
    const sequentialResults: RecordActivityResult[] = [];
    for (const [i, a] of items.entries()) if (i !== 12) sequentialResults.push(await single.record({ ...a, tenantId: sequential.tenantId, target: { definitionId: sequential.definitionId } }));
    const ok = settled.filter((s): s is { ok: true; value: RecordActivityResult } => s.ok).map((s) => comparable(s.value));
    expect(ok).toEqual(sequentialResults.map(comparable));
    expect(batcher.stats().fallbacks).toBe(0);
    expect(await storedStreaks(batched.tenantId, batched.definitionId)).toEqual(await storedStreaks(sequential.tenantId, sequential.definitionId));
  });

  it("batch/negative_or_non_finite_value_is_refused_and_stores_nothing", async () => {
    const definitionId = await liveDefinition(api.admin, "Refused values", "refused.event", { condition: { type: ConditionType.SUM, min: 50 } });
    const now = Date.now();
    const catalog = createDefinitionCatalog(pool, 30_000, () => now);
    const batcher = createBatchIngestor({ pool, catalog, now: () => now, options: { maxBatch: 8 } });
    const single = createActivityIngestor({ pool, catalog, now: () => now });
    const item = (member: string, value: number): RecordActivityInput => ({
      tenantId: api.admin.tenantId, memberExternalId: member, target: { definitionId }, occurredAt: now, value, uniqueIdentifier: `${member}-1`, metadata: {},
    });
    const bad = [-0.01, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    // Bad values among good ones, in one batch and one by one: each bad item fails alone with INVALID_VALUE.
    const settled = await batcher.recordMany([item("refused-ok-1", 10), ...bad.map((v, i) => item(`refused-batch-${i}`, v)), item("refused-ok-2", 0)]);
    expect(settled.map((s) => s.ok)).toEqual([true, false, false, false, false, true]);
    for (const s of settled.slice(1, 5)) {
      expect((s as { error: unknown }).error).toMatchObject({ kind: "INVALID_ARGUMENT", reason: "INVALID_VALUE", field: "value" });
    }
    await expect(batcher.record(item("refused-batch-record", -5))).rejects.toMatchObject({ reason: "INVALID_VALUE" });
    for (const [i, v] of bad.entries()) await expect(single.record(item(`refused-single-${i}`, v))).rejects.toMatchObject({ reason: "INVALID_VALUE" });

    // Nothing of a refused item was stored: no member, so no streak row and no activity either.
    const { rows } = await pool.query<{ external_id: string }>(
      "select external_id from member where tenant_id = $1 and external_id like 'refused-%' order by external_id",
      [api.admin.tenantId],
    );
    expect(rows.map((r) => r.external_id)).toEqual(["refused-ok-1", "refused-ok-2"]);
    const streaks = await pool.query("select 1 from member_streak where definition_id = $1", [definitionId]);
    expect(streaks.rowCount).toBe(2);
  });

  // A key stored concurrently where the domain cannot see it (here under no definition at all, so no streak row
  // of ours is locked by its writer): the batch's checked write raises KB001, nothing of it commits, and the run
  // again answers duplicate with the stored activity.
  it("batch/key_stored_concurrently_outside_the_streak_aborts_the_write_and_answers_duplicate", async () => {
    const { batched } = await twin({}, "kb.event");
    const now = T0;
    const catalog = createDefinitionCatalog(pool, 30_000, () => now);
    // One connection, whose first batch is the one that fails: its write message also carried the write's
    // PREPARE, and the batch run again, and the one after, must find the connection's statements as they are.
    const solo = new pg.Pool({ connectionString: api.databaseUrl, max: 1 });
    const batcher = createBatchIngestor({ pool: solo, catalog, now: () => now, options: { maxBatch: 4 } });
    const input = (uid: string) => ({
      tenantId: batched.tenantId, memberExternalId: "kb-member", target: { definitionId: batched.definitionId }, occurredAt: now - HOUR, value: 5, uniqueIdentifier: uid, metadata: {},
    });
    await createBatchIngestor({ pool, catalog, now: () => now }).record(input("kb-first"));
    const [stateBefore] = await storedStreaks(batched.tenantId, batched.definitionId);
    const before = batcher.stats();
    const { rows: members } = await pool.query<{ id: string }>("select id from member where tenant_id = $1 and external_id = 'kb-member'", [batched.tenantId]);
    const holder = await pool.connect();
    try {
      await holder.query("begin");
      await holder.query(
        `insert into activity (id, tenant_id, member_id, definition_id, event_type, applied_definition_ids, occurred_at, value, unique_identifier, metadata, recorded_at)
         values (gen_random_uuid(), $1, $2, null, 'elsewhere', '{}', now(), 1, 'kb-raced', '{}', now())`,
        [batched.tenantId, members[0]!.id],
      );
      const pending = batcher.record(input("kb-raced"));
      // The batch read no such key, applied it, and its insert now waits for our transaction.
      await untilWaitingForLock(pool, ["execute kindling_batch_%", "prepare kindling_batch_%"], "the batch's write");
      await holder.query("commit");
      const result = await pending;
      expect(result.duplicate).toBe(true);
      expect(result.activity.eventType).toBe("elsewhere");
    } finally {
      holder.release();
    }
    const after = batcher.stats();
    expect(after.conflicts - before.conflicts).toBe(1);
    expect(after.retries - before.retries).toBe(1);
    expect(after.fallbacks - before.fallbacks).toBe(0);
    // Nothing of the aborted write stayed: the streak holds kb-first alone, one activity row per key.
    const [row] = await storedStreaks(batched.tenantId, batched.definitionId);
    expect(row!.state.tail.map((t) => t.id)).toEqual(["kb-first"]);
    expect(row).toEqual(stateBefore);
    const { rows: stored } = await pool.query<{ unique_identifier: string }>("select unique_identifier from activity where tenant_id = $1 and member_id = $2 order by 1", [batched.tenantId, members[0]!.id]);
    expect(stored.map((r) => r.unique_identifier)).toEqual(["kb-first", "kb-raced"]);
    const next = await batcher.record(input("kb-next"));
    expect(next.duplicate).toBe(false);
    expect(batcher.stats().fallbacks).toBe(0);
    await solo.end();
  });

  // A batch with a profile creates a new member and then waits for an existing member's streak row; a batch
  // without profiles, sharing both members, creates missing members before it locks any streak row, so the two
  // never wait for each other in a cycle (no deadlock, so no retry).
  it("batch/profile_and_profileless_batches_sharing_new_and_existing_members_do_not_deadlock", async () => {
    const { batched } = await twin({}, "mix.event");
    const now = T0;
    const catalog = createDefinitionCatalog(pool, 30_000, () => now);
    const withProfiles = createBatchIngestor({ pool, catalog, now: () => now, options: { maxBatch: 2, maxInFlight: 1 } });
    const without = createBatchIngestor({ pool, catalog, now: () => now, options: { maxBatch: 2, maxInFlight: 1 } });
    const input = (member: string, uid: string, profile?: { firstName: string }) => ({
      tenantId: batched.tenantId, memberExternalId: member, target: { definitionId: batched.definitionId }, occurredAt: now - HOUR, value: 5, uniqueIdentifier: uid, metadata: {}, profile,
    });
    await without.record(input("mix-existing", "seed"));
    for (let k = 0; k < 12; k++) {
      const fresh = `mix-new-${k}`;
      const results = await Promise.all([
        withProfiles.record(input(fresh, `p-${k}`, { firstName: `n${k}` })),
        withProfiles.record(input("mix-existing", `p-e-${k}`, { firstName: `e${k}` })),
        without.record(input("mix-existing", `w-e-${k}`)),
        without.record(input(fresh, `w-${k}`)),
      ]);
      expect(results.map((r) => r.duplicate)).toEqual([false, false, false, false]);
    }
    // (The profile batch may still run again when the other created its new member first: RetryBatch, by design.)
    expect(withProfiles.stats()).toMatchObject({ deadlocks: 0, fallbacks: 0 });
    expect(without.stats()).toMatchObject({ deadlocks: 0, retries: 0, fallbacks: 0 });
    const states = await storedStreaks(batched.tenantId, batched.definitionId);
    expect(states.reduce((n, st) => n + st.state.tail.length, 0)).toBe(1 + 12 * 4);
  });

  it("batch/events_of_one_batch_get_ids_in_arrival_order", async () => {
    // Every member's first activity increments its streak (COUNT ≥ 1): one event per item. The batch writes rows in
    // member order (its lock order), which differs from the arrival order below; event ids, which clients page
    // and resume by, must follow arrival order, as the one-at-a-time path gives it.
    const { batched } = await twin({ condition: { type: ConditionType.COUNT, min: 1 } }, "order.event");
    const now = T0;
    const catalog = createDefinitionCatalog(pool, 30_000, () => now);
    const batcher = createBatchIngestor({ pool, catalog, now: () => now, options: { maxBatch: 64 } });
    const members = ["ord-m", "ord-c", "ord-x", "ord-a", "ord-q", "ord-b", "ord-z", "ord-d"];
    const settled = await batcher.recordMany(members.map((member, i) => ({
      tenantId: batched.tenantId, memberExternalId: member, target: { definitionId: batched.definitionId }, occurredAt: now - HOUR, value: 1, uniqueIdentifier: `ord-${i}`, metadata: {},
    })));
    expect(settled.every((s) => s.ok)).toBe(true);
    expect(batcher.stats()).toMatchObject({ fallbacks: 0, conflicts: 0, retries: 0 });
    const { rows } = await pool.query<{ member: string }>(
      `select m.external_id as member from streak_event e join member m on m.id = e.member_id
        where e.tenant_id = $1 and e.definition_id = $2 and e.type = 'streak.incremented' order by e.id`,
      [batched.tenantId, batched.definitionId],
    );
    expect(rows.map((r) => r.member)).toEqual(members);
  });

  it("batch/first_activities_of_one_new_member_at_once_all_succeed_on_every_path", async () => {
    // A new member's id is derived from who it is (memberIdFor), so writers creating it at once collide on the
    // primary key as well as on the (tenant_id, external_id) key their upserts name. Each path must end with the one
    // member and every activity stored: one-at-a-time and batched, each with and without a profile, UpsertMember and
    // an import.
    const { batched } = await twin({ condition: { type: ConditionType.COUNT, min: 1 } }, "newrace.event");
    const now = T0;
    const catalog = createDefinitionCatalog(pool, 30_000, () => now);
    const single = createActivityIngestor({ pool, catalog, now: () => now });
    const batchers = [0, 1, 2].map(() => createBatchIngestor({ pool, catalog, now: () => now, options: { maxBatch: 2 } }));
    const members = createMemberStore({ pool, catalog, now: () => now });
    // Every writer of a round waits at a gate (a BEFORE INSERT trigger on member taking a shared advisory lock the
    // test holds exclusively) until all are queued there; released together, their conflict checks and inserts
    // overlap, which on their own they do only within microseconds.
    await pool.query(`create function test_gate_member_insert() returns trigger language plpgsql as $$
      begin perform pg_advisory_lock_shared(4242); perform pg_advisory_unlock_shared(4242); return new; end $$`);
    await pool.query("create trigger test_gate_member_insert before insert on member for each row execute function test_gate_member_insert()");
    const gate = new pg.Client({ connectionString: api.databaseUrl });
    await gate.connect();
    const rounds = 12;
    const settled: PromiseSettledResult<unknown>[] = [];
    try {
      for (let round = 0; round < rounds; round++) {
        await gate.query("select pg_advisory_lock(4242)");
        const member = `newrace-${round}`;
        const calls: Promise<unknown>[] = [];
        for (let k = 0; k < 8; k++) {
          const input: RecordActivityInput = {
            tenantId: batched.tenantId, memberExternalId: member, target: { definitionId: batched.definitionId }, occurredAt: now - HOUR, value: 1,
            uniqueIdentifier: `${member}-${k}`, metadata: {}, profile: k % 4 < 2 ? { firstName: `f${k}` } : undefined,
          };
          calls.push(k % 2 === 0 ? single.record(input) : batchers[k % 3]!.record(input));
        }
        calls.push(members.upsert(batched.tenantId, { externalId: member, lastName: `l${round}` }));
        // An import of the member's earlier history, with a profile (its own transaction).
        calls.push(importActivities({ pool, catalog, now: () => now }, {
          tenantId: batched.tenantId, milestonePolicy: "GRANT", emitEvents: true,
          activities: [{ tenantId: batched.tenantId, memberExternalId: member, target: { definitionId: batched.definitionId }, occurredAt: now - 3 * DAY, value: 1,
            uniqueIdentifier: `${member}-import`, metadata: {}, profile: { locale: "fr" } }],
        }));
        await new Promise((resolve) => setTimeout(resolve, 200));
        await gate.query("select pg_advisory_unlock(4242)");
        settled.push(...(await Promise.allSettled(calls)));
      }
    } finally {
      await gate.end();
      await pool.query("drop trigger test_gate_member_insert on member");
      await pool.query("drop function test_gate_member_insert()");
    }
    expect(settled.filter((s) => s.status === "rejected").map((s) => String(s.reason))).toEqual([]);
    expect(batchers.reduce((n, b) => n + b.stats().fallbacks, 0)).toBe(0);
    const { rows } = await pool.query<{ id: string; external_id: string; n: number }>(
      `select m.id, m.external_id, count(a.*)::int as n from member m join activity a on a.member_id = m.id
        where m.tenant_id = $1 and m.external_id like 'newrace-%' group by m.id, m.external_id`,
      [batched.tenantId],
    );
    expect(rows).toHaveLength(rounds);
    for (const r of rows) expect([r.id, r.n]).toEqual([memberIdFor(batched.tenantId, r.external_id), 9]);
  });

  it("batch/concurrent_duplicate_committed_after_the_pre_check_answers_duplicate", async () => {
    const { batched } = await twin({}, "race.event");
    const now = T0;
    const catalog = createDefinitionCatalog(pool, 30_000, () => now);
    // Two batchers (two API processes) race on the same keys; every key is stored once, every other answer is a duplicate.
    const one = createBatchIngestor({ pool, catalog, now: () => now, options: { maxBatch: 5 } });
    const two = createBatchIngestor({ pool, catalog, now: () => now, options: { maxBatch: 3 } });
    const input = (i: number) => ({ tenantId: batched.tenantId, memberExternalId: `race${i % 3}`, target: { definitionId: batched.definitionId }, occurredAt: now - HOUR, value: 1, uniqueIdentifier: `r-${i % 10}`, metadata: {} });
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? one : two).record(input(i))));
    const fresh = results.filter((r) => !r.duplicate);
    expect(one.stats().fallbacks + two.stats().fallbacks).toBe(0);
    expect(fresh).toHaveLength(new Set(Array.from({ length: 40 }, (_, i) => `${i % 3}/${i % 10}`)).size);
    const { rows } = await pool.query<{ n: number }>("select count(*)::int as n from activity where tenant_id = $1 and definition_id = $2", [batched.tenantId, batched.definitionId]);
    expect(rows[0]!.n).toBe(fresh.length);
    const states = await storedStreaks(batched.tenantId, batched.definitionId);
    expect(states.reduce((n, s) => n + s.state.tail.length, 0)).toBe(fresh.length);
  });
});

describe("literal arguments (the batch's messages EXECUTE prepared statements with their values quoted)", () => {
  it("batch/literal_arguments_reach_postgres_exactly_as_bound_parameters", async () => {
    const hostile = ["plain", "it's", "back\\slash", 'dou"ble', "{braces},commas", " spaced ", "$1 and $2", "ünï€ødé 🔥", "NULL", "", "'; drop table member; --", "\\\"'\\'"];
    const text = "select $1::text[] as list, $2::text as one, $3::jsonb as doc, $4::int as n, $5::text[] as holes";
    const values = [hostile, hostile.join("|"), JSON.stringify({ hostile }), 42, ["a", null, "b"]];
    const bound = await pool.query(text, values);
    const client = await pool.connect();
    try {
      await client.query(`prepare literal_check(text[], text, jsonb, int, text[]) as ${text}`);
      const executed = await client.query(`execute literal_check(${values.map(sqlLiteral).join(", ")})`);
      await client.query("deallocate literal_check");
      expect(executed.rows).toEqual(bound.rows);
      expect(executed.rows[0].list).toEqual(hostile);
    } finally {
      client.release();
    }
    // The quoting is the driver's escapeLiteral, character for character.
    for (const value of [...hostile, JSON.stringify({ hostile }), "\\", "''", "a\\'b\\\\"]) expect(quoteLiteral(value), value).toBe(pg.escapeLiteral(value));
    // Only what the ingestor binds; anything needing the driver's conversions is refused, not guessed at.
    for (const value of [new Date(0), Buffer.from("x"), { a: 1 }, [[1]], Number.NaN]) expect(() => sqlLiteral(value)).toThrow(TypeError);
  });
});

describe("answered activities (the write returns only ids; each answer's activity is built from what was sent)", () => {
  it("batch/answered_activity_is_the_stored_row_for_values_postgres_converts", async () => {
    const eventType = "stored.values";
    const definitionId = await liveDefinition(api.admin, "Stored values", eventType, { condition: { type: ConditionType.SUM, min: 1_000 } });
    const catalog = createDefinitionCatalog(pool, 30_000);
    const batcher = createBatchIngestor({ pool, catalog, now: Date.now, options: { maxBatch: 64, maxInFlight: 1 } });
    const at = Date.now() - HOUR;
    // Values PostgreSQL converts on the way in: jsonb reorders keys (shorter first, then by UTF-8 bytes), a double
    // comes back as the double its shortest text gives (-0 as 0), varchar cuts excess spaces off (by characters,
    // not UTF-16 units), timestamptz keeps whole milliseconds.
    const metadata = JSON.parse('{"zz":"1","a":"2","é":"3","bb":"4","ab":"5","€":"6","__proto__":"7","z":"8","ä":"9","😀":"10"}') as Record<string, string>;
    const variants: Partial<RecordActivityInput>[] = [
      { metadata, value: 0.1 },
      { value: -0 },
      { value: 5e-324, occurredAt: at + 0.7 },
      { value: 1e15, distinctKey: `${"k".repeat(250)}${" ".repeat(10)}` },
      { value: 123456.789, platform: `web${" ".repeat(70)}` },
      { value: undefined, distinctKey: `${"😀".repeat(256)}  ` },
      { value: 3, uniqueIdentifier: `${"u".repeat(250)}${" ".repeat(12)}` },
      { value: 4, target: { eventType: `${"x".repeat(120)}${" ".repeat(20)}` } },
      { value: 5, target: { definitionId } },
      { value: 6, metadata: {} },
    ];
    const inputs: RecordActivityInput[] = variants.map((v, i) => ({
      tenantId: api.admin.tenantId, memberExternalId: `stored-${i % 3}`, target: { eventType }, occurredAt: at + i, uniqueIdentifier: `stored-${i}`, metadata: {},
      ...v,
    }));
    const results = await Promise.all(inputs.map((input) => batcher.record(input)));
    expect(batcher.stats().batches).toBeLessThan(inputs.length);
    for (const [i, result] of results.entries()) {
      const { rows } = await pool.query<ActivityRow>(`select ${ACTIVITY_COLUMNS} from activity where id = $1`, [result.activity.id]);
      const stored = activityRecord(rows[0]!, inputs[i]!.memberExternalId);
      expect(result.duplicate).toBe(false);
      expect(result.activity, `item ${i}`).toEqual(stored);
      expect(Object.is(result.activity.value, stored.value), `item ${i}: value ${result.activity.value} vs ${stored.value}`).toBe(true);
      // The order the map's entries are answered in.
      expect(Object.keys(result.activity.metadata), `item ${i}`).toEqual(Object.keys(stored.metadata));
    }
    // The conversions really happened (else the comparison above could not tell a sent value from a stored one).
    expect(Object.keys(results[0]!.activity.metadata)).not.toEqual(Object.keys(metadata));
    expect(Object.is(results[1]!.activity.value, 0)).toBe(true);
    expect(results[5]!.activity.distinctKey).toBe("😀".repeat(256));
    expect(results[6]!.activity.uniqueIdentifier).toBe("u".repeat(250) + " ".repeat(6));
    expect(results[7]!.activity.eventType).toHaveLength(128);
  });

  it("batch/every_member_the_batches_created_has_the_derived_id", async () => {
    // Every writer that creates a member names it memberIdFor(tenant, external id) (src/db/member-id.ts): the
    // batched statements above created members with and without profiles; none may carry another id.
    const { rows } = await pool.query<{ id: string; tenant_id: string; external_id: string }>("select id, tenant_id, external_id from member");
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.filter((r) => r.id !== memberIdFor(r.tenant_id, r.external_id))).toEqual([]);
  });
});

