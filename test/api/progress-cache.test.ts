// GetMemberStreak answers are built once per stored state and reused (src/api/mappers/progress-cache.ts). These
// tests prove the reuse is exact: a write between two reads is seen by the next read, also a write made by another
// API process; a read after a window passed, or after the at-risk instant, shows the fields that depend on the
// clock as of that read, with no write in between; and a reused answer is the answer a fresh process computes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { MemberStreakState } from "../../src/gen/kindling/v1/member_streak_pb.js";
import pg from "pg";
import { progressCacheTotals } from "../../src/api/mappers/progress-cache.ts";
import { knownStateTotals } from "../../src/engine/reads/batch-progress-reader.ts";
import { startKindling, type Started } from "../../src/app.ts";
import { loadConfig } from "../../src/config/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { createTestClock, startTestApi, type TestApi, type TestClock } from "../support/api.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const DAY0 = Date.UTC(2026, 0, 5);
const at = (day: number, hours: number) => DAY0 + day * DAY + hours * HOUR;

let api: TestApi;
let clock: TestClock;
let definitionId: string;
let riskyDefinitionId: string;
const others: Started[] = [];

async function liveDefinition(name: string, extra: Record<string, unknown> = {}) {
  const defs = api.client(DefinitionService);
  const { definition } = await defs.createDefinition({
    definition: {
      name,
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 1 },
      milestones: [{ threshold: 2, reward: { kind: RewardKind.POINTS, points: 10, fulfilmentMode: FulfilmentMode.CLAIM } }],
      ...extra,
    },
  });
  await defs.publishDefinition({ definitionId: definition!.id });
  return definition!.id;
}

/** Another API process on the same database, with the same clock and an empty cache of its own. */
async function otherProcess(): Promise<{ reads: Client<typeof MemberStreakService>; activities: Client<typeof ActivityService> }> {
  const config = loadConfig({ DATABASE_URL: api.databaseUrl, PORT: "0", LOG_LEVEL: "silent", RATE_LIMIT_PER_SECOND: "0" });
  const started = await startKindling(config, createLogger("silent"), "api", { now: clock.now });
  others.push(started);
  const transport = createGrpcTransport({
    baseUrl: started.apiUrl!,
    interceptors: [(next) => (req) => {
      req.header.set("apikey", api.admin.keyId);
      req.header.set("secretkey", api.admin.secret);
      return next(req);
    }],
  });
  return { reads: createClient(MemberStreakService, transport), activities: createClient(ActivityService, transport) };
}

function record(activities: Client<typeof ActivityService>, member: string, day: number, hours: number, definition = definitionId) {
  clock.set(at(day, hours));
  return activities.recordActivity({
    activity: {
      memberRef: { case: "memberExternalId", value: member },
      target: { case: "definitionId", value: definition },
      occurTime: timestampFromMs(at(day, hours)),
      uniqueIdentifier: `${member}-${day}-${hours}`,
    },
  });
}

async function read(member: string, definition = definitionId, reads = api.client(MemberStreakService, api.admin, "grpc")) {
  const { streak } = await reads.getMemberStreak({ memberExternalId: member, definitionId: definition });
  return streak!;
}

beforeAll(async () => {
  clock = createTestClock(at(0, 8));
  api = await startTestApi({ label: "progress_cache", now: clock.now });
  definitionId = await liveDefinition("Daily");
  riskyDefinitionId = await liveDefinition("Daily at risk", { atRiskLeadDuration: { seconds: 3n * 3600n } });
}, 120_000);

afterAll(async () => {
  for (const started of others) await started.stop();
  await api?.close();
});

describe("progress answers reused per stored state", () => {
  it("progress_cache/write_between_two_reads_is_seen_by_the_next_read", async () => {
    const activities = api.client(ActivityService);
    await record(activities, "ann", 0, 10);
    expect(await read("ann")).toMatchObject({ currentCount: 1, currentWindowSatisfied: true });
    const before = progressCacheTotals();
    expect(await read("ann")).toMatchObject({ currentCount: 1 });
    expect(progressCacheTotals().hits).toBe(before.hits + 1);
    // A second activity in the same window, seconds later (the cached answer's span has not ended, and the server's
    // definition catalog, whose TTL runs on the same clock, still holds the same definition): the next read sees it.
    await record(activities, "ann", 0, 10 + 10 / 3600);
    expect(await read("ann")).toMatchObject({ currentCount: 1, currentWindowProgress: { count: 2 } });
    await record(activities, "ann", 1, 10);
    const after = await read("ann");
    expect(after).toMatchObject({ currentCount: 2, longestCount: 2, earnedMilestones: [2] });
    expect(after.unclaimedMilestones.map((m) => m.threshold)).toEqual([2]);
    expect(after.totalRewardsEarned).toBe(1);
  });

  it("progress_cache/read_after_the_window_passed_shows_the_break_without_a_write", async () => {
    await record(api.client(ActivityService), "bob", 0, 10);
    clock.set(at(0, 12));
    expect(await read("bob")).toMatchObject({ currentCount: 1, state: MemberStreakState.IN_PROGRESS, secondsUntilWindowClose: 12n * 3600n });
    clock.set(at(0, 12) + 5_000);
    const before = progressCacheTotals();
    expect(await read("bob")).toMatchObject({ currentCount: 1, secondsUntilWindowClose: 12n * 3600n - 5n });
    expect(progressCacheTotals().hits).toBe(before.hits + 1);
    // Day 1 passes with no activity: a read 6 s later, at the start of day 2, reports the break from the stored state
    // alone (within the catalog's TTL, so the same definition object: only the span of the last answer ends).
    clock.set(at(2, 0) - 5_000);
    expect(await read("bob")).toMatchObject({ currentCount: 1, state: MemberStreakState.IN_PROGRESS, secondsUntilWindowClose: 5n });
    clock.set(at(2, 0) + 1_000);
    const broken = await read("bob");
    expect(broken).toMatchObject({ currentCount: 0, state: MemberStreakState.BROKEN, currentWindowSatisfied: false, previousCount: 1, secondsUntilWindowClose: 86_399n });
    expect(broken.currentWindowKey).toBe("2026-01-07");
  });

  it("progress_cache/read_after_the_at_risk_instant_is_at_risk_without_a_write", async () => {
    await record(api.client(ActivityService), "cat", 0, 10, riskyDefinitionId);
    clock.set(at(1, 10));
    expect(await read("cat", riskyDefinitionId)).toMatchObject({ currentCount: 1, atRisk: false, currentWindowSatisfied: false });
    clock.set(at(1, 21) - 10_000);
    expect(await read("cat", riskyDefinitionId)).toMatchObject({ atRisk: false });
    const before = progressCacheTotals();
    expect(await read("cat", riskyDefinitionId)).toMatchObject({ atRisk: false });
    expect(progressCacheTotals().hits).toBe(before.hits + 1);
    clock.set(at(1, 21));
    expect(await read("cat", riskyDefinitionId)).toMatchObject({ currentCount: 1, atRisk: true, secondsUntilWindowClose: 3n * 3600n });
  });

  it("progress_cache/write_through_another_api_process_is_seen_by_the_next_read", async () => {
    const other = await otherProcess();
    await record(api.client(ActivityService), "dan", 0, 10);
    expect(await read("dan")).toMatchObject({ currentCount: 1 });
    expect(await read("dan")).toMatchObject({ currentCount: 1 });
    await record(other.activities, "dan", 0, 10 + 10 / 3600);
    expect(await read("dan")).toMatchObject({ currentCount: 1, currentWindowProgress: { count: 2 } });
  });

  it("progress_cache/reused_answer_equals_a_fresh_process_answer", async () => {
    const activities = api.client(ActivityService);
    await record(activities, "eve", 0, 10);
    await record(activities, "eve", 1, 9);
    clock.set(at(1, 15));
    await read("eve");
    clock.set(at(1, 15) + 61_500);
    const before = progressCacheTotals();
    const reused = await read("eve");
    expect(progressCacheTotals().hits).toBe(before.hits + 1);
    const other = await otherProcess();
    const fresh = await read("eve", definitionId, other.reads);
    expect(reused.unclaimedMilestones).toHaveLength(1);
    expect(reused).toEqual(fresh);
    // The batched read's row times (epoch milliseconds computed in SQL) are the plain read's (parsed timestamps).
    const { streaks } = await api.client(MemberStreakService, api.admin, "grpc").listMemberStreaks({ memberExternalId: "eve" });
    const listed = streaks.find((s) => s.definitionId === definitionId)!;
    expect([reused.createTime, reused.updateTime]).toEqual([listed.createTime, listed.updateTime]);
  });

  it("progress_cache/a_state_read_before_is_not_sent_again_until_any_write_of_its_row", async () => {
    const activities = api.client(ActivityService);
    await record(activities, "fay", 0, 10);
    await record(activities, "gus", 0, 11);
    await record(activities, "gus", 1, 9);
    const pool = new pg.Pool({ connectionString: api.databaseUrl, max: 1 });
    try {
      const streakOf = async (member: string) =>
        (await pool.query<{ id: string }>(
          "select s.id from member_streak s join member m on m.id = s.member_id where m.external_id = $1 and s.definition_id = $2", [member, definitionId],
        )).rows[0]!.id;
      const [fay, gus] = [await streakOf("fay"), await streakOf("gus")];
      expect(await read("fay")).toMatchObject({ currentCount: 1 });
      // Read again, unchanged: the database does not send the state this process already holds.
      const before = knownStateTotals();
      expect(await read("fay")).toMatchObject({ currentCount: 1 });
      expect(knownStateTotals()).toEqual({ sent: before.sent, reused: before.reused + 1 });
      // Any write of the row, outside the API and with the very same text: the state is sent again.
      await pool.query("update member_streak_state set state = state where member_streak_id = $1", [fay]);
      expect(await read("fay")).toMatchObject({ currentCount: 1 });
      expect(knownStateTotals()).toEqual({ sent: before.sent + 1, reused: before.reused + 1 });
      // A write that changes the state outside the API (gus's state, two days counted): the next read answers it.
      await pool.query("update member_streak_state set state = (select state from member_streak_state where member_streak_id = $2) where member_streak_id = $1", [fay, gus]);
      expect(await read("fay")).toMatchObject({ currentCount: 2 });
      expect(knownStateTotals().sent).toBe(before.sent + 2);
    } finally {
      await pool.end();
    }
  });
});
