// GetDefinitionStats end to end (issue 13, item 3): a simulated week of daily UTC windows recorded through the
// API on a test clock, with the definition sweeper's real activities run at each deadline in the order its
// workflow runs them (breaks, freezes, at-risk reminders, then the stats snapshot), and the reward workflow's
// claim / expiry activities at their times. Every counter of every day is checked against what the week did,
// the count histogram at its bucket edges, and bad input gets typed errors. The sweeper workflow itself writing
// the stats on Temporal is proven in test/workflows/definition-sweeper.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { RewardService } from "../../src/gen/kindling/v1/reward_service_pb.js";
import { FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createActivities } from "../../src/activities/index.ts";
import { createTestClock, startTestApi, type TestApi, type TestClock } from "../support/api.ts";
import { DAY, createLiveDefinition, expectFailure, sqlPool } from "../support/fixtures.ts";

const HOUR = 3_600_000;
const DAY0 = Date.parse("2025-03-03T00:00:00Z");
const at = (day: number, hour = 0) => DAY0 + day * DAY + hour * HOUR;
const dayText = (day: number) => new Date(at(day)).toISOString().slice(0, 10);

let api: TestApi;
let clock: TestClock;
let db: pg.Pool;
let activities: ReturnType<typeof createActivities>;
let weekDef: string;

const stats = (definitionId: string, startDay: string, endDay: string, auth = api.admin) =>
  api.client(DefinitionService, auth).getDefinitionStats({ definitionId, startDay, endDay });

async function checkIn(member: string, definitionId: string, day: number, hour = 10) {
  clock.set(at(day, hour));
  await api.client(ActivityService).recordActivity({
    activity: {
      memberRef: { case: "memberExternalId", value: member },
      target: { case: "definitionId", value: definitionId },
      occurTime: timestampFromMs(clock.now()),
      uniqueIdentifier: `${member}-${definitionId}-${day}-${hour}`,
    },
  });
}

/** One sweeper pass at `asOf`, as definitionSweeperWorkflow runs it. */
async function sweep(definitionId: string, asOf: number) {
  clock.set(asOf);
  const scope = { tenantId: api.admin.tenantId, definitionId, asOf };
  await activities.sweepBreaks(scope);
  await activities.sweepAdvance(scope);
  await activities.sweepAtRisk(scope);
  await activities.snapshotDefinitionStats(scope);
}

async function rewardOf(member: string, threshold: number): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    "select r.id from reward r join member m on m.id = r.member_id where m.external_id = $1 and r.definition_id = $2 and r.threshold = $3",
    [member, weekDef, threshold],
  );
  return rows[0]!.id;
}

// Who checks in (at 10:00) on which day of the week:
//   a every day: 1..7, milestone 3 (points, to claim within 2 days; claimed on day 3) and 5 (badge, issued at once)
//   b days 0-2, then stops: reminded on day 3, freeze used at day 4's start, reminded on day 4, broken at day 5's
//     start; its milestone-3 points expire unclaimed on day 4
//   c day 0, then stops: reminded on day 1, freeze used at day 2's start, reminded on day 2, broken at day 3's
//     start; restarts on day 5 and checks in on day 6
//   d days 3-6: milestone 3 on day 5
const WEEK: Record<string, readonly number[]> = { a: [0, 1, 2, 3, 4, 5, 6], b: [0, 1, 2], c: [0, 5, 6], d: [3, 4, 5, 6] };

beforeAll(async () => {
  clock = createTestClock(at(0, 8));
  api = await startTestApi({ label: "definition-stats", now: clock.now });
  db = sqlPool(api.databaseUrl);
  activities = createActivities({ pool: db });
  weekDef = (await createLiveDefinition(api.client(DefinitionService), {
    name: "Daily with freezes",
    atRiskLeadDuration: { seconds: BigInt(4 * 3600) },
    freezePolicy: { maxHeld: 1, initialGrant: 1 },
    milestones: [
      { threshold: 3, reward: { kind: RewardKind.POINTS, points: 50, fulfilmentMode: FulfilmentMode.CLAIM, claimDeadlineDuration: { seconds: BigInt(2 * 86_400) } } },
      { threshold: 5, reward: { kind: RewardKind.BADGE, badge: { name: "five" }, fulfilmentMode: FulfilmentMode.PROVIDER } },
    ],
  })).id;
  for (let day = 0; day < 7; day++) {
    for (const [member, days] of Object.entries(WEEK)) if (days.includes(day)) await checkIn(member, weekDef, day);
    if (day === 3) {
      // a claims its milestone-3 points at noon; the reward workflow confirms the claim then.
      clock.set(at(3, 12));
      await api.client(RewardService).claimReward({ target: { case: "milestone", value: { memberExternalId: "a", definitionId: weekDef, threshold: 3 } } });
      await activities.confirmRewardClaimed({ tenantId: api.admin.tenantId, rewardId: await rewardOf("a", 3), now: at(3, 12) });
    }
    if (day === 4) {
      // b's milestone-3 points (earned day 2, 10:00) reach their claim deadline unclaimed.
      await activities.expireUnclaimedReward({ tenantId: api.admin.tenantId, rewardId: await rewardOf("b", 3), now: at(4, 10) });
    }
    await sweep(weekDef, at(day, 20)); // the at-risk reminders
    await sweep(weekDef, at(day + 1)); // the window close at midnight
  }
}, 120_000);
afterAll(async () => {
  await db?.end();
  await api?.close();
});

/** The distribution as [bucket label, streaks] for the non-empty buckets. */
const distribution = (buckets: readonly { minCount: number; maxCount: number; streaks: number }[]) =>
  buckets.filter((b) => b.streaks > 0).map((b) => [`${b.minCount}-${b.maxCount || "up"}`, b.streaks]);

describe("GetDefinitionStats", () => {
  it("stats/a_simulated_week_counts_each_day_as_it_happened", async () => {
    const { days } = await stats(weekDef, dayText(-3), dayText(10));
    const table = days.map((d) => ({
      day: d.day, closed: d.closed, hasState: d.hasState, active: d.activeStreaks, atRisk: d.atRiskStreaks, broken: d.brokenStreaks,
      frozen: d.frozenStreaks, started: d.startedStreaks, milestones: d.milestones.map((m) => [m.threshold, m.reached]),
      issued: d.rewardsIssued, claimed: d.rewardsClaimed, expired: d.rewardsExpired, counts: distribution(d.countDistribution),
    }));
    const row = (day: number, r: Partial<(typeof table)[number]>) => ({
      day: dayText(day), closed: true, hasState: true, active: 0, atRisk: 0, broken: 0, frozen: 0, started: 0, milestones: [], issued: 0, claimed: 0, expired: 0, counts: [], ...r,
    });
    expect(table).toEqual([
      row(0, { active: 3, started: 3, counts: [["1-1", 3]] }),
      row(1, { active: 3, atRisk: 1, counts: [["1-1", 1], ["2-3", 2]] }),
      row(2, { active: 2, atRisk: 1, frozen: 1, milestones: [[3, 2]], counts: [["2-3", 2]] }),
      row(3, { active: 3, atRisk: 1, broken: 1, started: 1, claimed: 1, counts: [["1-1", 1], ["2-3", 1], ["4-7", 1]] }),
      // b's day-4 window closed unsatisfied with no freeze left: not active at the day's close, broken at the next
      // day's first instant (events fall on the day of their time).
      row(4, { active: 2, atRisk: 1, frozen: 1, milestones: [[5, 1]], issued: 1, expired: 1, counts: [["2-3", 1], ["4-7", 1]] }),
      row(5, { active: 3, broken: 1, started: 1, milestones: [[3, 1]], counts: [["1-1", 1], ["2-3", 1], ["4-7", 1]] }),
      row(6, { active: 3, counts: [["2-3", 1], ["4-7", 2]] }),
      // Today (day 7): the midnight snapshot, open until the day closes.
      row(7, { closed: false, active: 3, counts: [["2-3", 1], ["4-7", 2]] }),
    ]);
    // Every bucket is listed, in order, and they sum to the active streaks.
    const last = days.at(-1)!;
    expect(last.countDistribution.map((b) => [b.minCount, b.maxCount])).toEqual([[1, 1], [2, 3], [4, 7], [8, 14], [15, 30], [31, 60], [61, 100], [101, 0]]);
    expect(last.computeTime).toEqual(timestampFromMs(at(7)));
  });

  it("stats/a_closed_day_keeps_its_state_and_a_rerun_changes_nothing", async () => {
    const before = await stats(weekDef, dayText(0), dayText(7));
    // The same sweep again, then a later one the same day: closed days keep their state and counters.
    await sweep(weekDef, at(7));
    expect(await stats(weekDef, dayText(0), dayText(7))).toEqual(before);
    await checkIn("e", weekDef, 7, 9);
    await sweep(weekDef, at(7, 20));
    const after = await stats(weekDef, dayText(0), dayText(7));
    const withoutTime = (days: typeof before.days) => days.map((d) => ({ ...d, computeTime: undefined }));
    expect(withoutTime(after.days.slice(0, 7))).toEqual(withoutTime(before.days.slice(0, 7)));
    // Today's row follows the latest snapshot: e started; a, c and d have not checked in yet and were reminded.
    expect(after.days[7]).toMatchObject({ closed: false, startedStreaks: 1, atRiskStreaks: 3, activeStreaks: 4, computeTime: timestampFromMs(at(7, 20)) });
    // Reading a range that starts later returns just those days.
    expect((await stats(weekDef, dayText(5), dayText(6))).days.map((d) => d.day)).toEqual([dayText(5), dayText(6)]);
  });

  it("stats/histogram_buckets_split_at_their_edges", async () => {
    const def = (await createLiveDefinition(api.client(DefinitionService), { name: "Edges" })).id;
    const counts = [1, 2, 3, 4, 7, 8, 14, 15, 30, 31, 60, 61, 100, 101, 5000];
    for (const [i] of counts.entries()) await checkIn(`edge-${i}`, def, 8, 9);
    // Counts that would take months to record: set on the rows, as if those months had happened.
    for (const [i, count] of counts.entries()) {
      await db.query("update member_streak s set current_count = $2 from member m where m.id = s.member_id and m.external_id = $1 and s.definition_id = $3", [`edge-${i}`, count, def]);
    }
    await sweep(def, at(8, 12));
    const [today] = (await stats(def, dayText(8), dayText(8))).days;
    expect(today!.countDistribution.map((b) => b.streaks)).toEqual([1, 2, 2, 2, 2, 2, 2, 2]);
    expect(today).toMatchObject({ activeStreaks: counts.length, startedStreaks: counts.length, closed: false });
    // The sweeper now wakes at the next UTC midnight to close the day, before any streak deadline.
    const next = await activities.nextSweepDue({ tenantId: api.admin.tenantId, definitionId: def, atRiskAfter: at(8, 12), asOf: at(8, 12) });
    expect(next).toBe(at(9));
  });

  it("stats/bad_ranges_unknown_and_foreign_definitions_are_typed_errors", async () => {
    await expectFailure(stats(weekDef, dayText(3), dayText(2)), Code.InvalidArgument, "INVALID_DAY_RANGE");
    await expectFailure(stats(weekDef, "2025-01-01", "2026-01-02"), Code.InvalidArgument, "INVALID_DAY_RANGE");
    expect((await stats(weekDef, "2024-01-01", "2024-12-31")).days).toEqual([]); // 366 days: the longest range
    await expectFailure(stats(weekDef, "2025-02-30", "2025-03-02"), Code.InvalidArgument, "INVALID_DAY_RANGE");
    await expectFailure(stats(weekDef, "2025-3-1", "2025-03-02"), Code.InvalidArgument, "INVALID_REQUEST");
    await expectFailure(stats("00000000-0000-4000-8000-000000000000", dayText(0), dayText(1)), Code.NotFound, "DEFINITION_NOT_FOUND");
    const other = await api.newTenant("other");
    await expectFailure(stats(weekDef, dayText(0), dayText(1), other), Code.NotFound, "DEFINITION_NOT_FOUND");
  });
});
