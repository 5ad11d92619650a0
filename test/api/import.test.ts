// ImportActivities end to end on the real PostgreSQL: history far behind the grace horizon recomputed in event
// time, idempotence, the three milestone policies (never a reward twice), events only when asked, interleaving with
// live recording, and bad input refused with nothing stored.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService, ImportMilestonePolicy } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { RewardService } from "../../src/gen/kindling/v1/reward_service_pb.js";
import { RewardState } from "../../src/gen/kindling/v1/reward_pb.js";
import { ApiKeyRole } from "../../src/gen/kindling/v1/tenant_pb.js";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { startTestApi, type TestApi } from "../support/api.ts";
import { DAY, createLiveDefinition, expectFailure, sqlPool, today } from "../support/fixtures.ts";

let api: TestApi;
let db: pg.Pool;
let daily: string;

const milestones = [7, 30, 100].map((threshold) => ({ threshold, reward: { kind: RewardKind.POINTS, points: threshold, fulfilmentMode: FulfilmentMode.CLAIM } }));

beforeAll(async () => {
  api = await startTestApi({ label: "import" });
  db = sqlPool(api.databaseUrl);
  daily = (await createLiveDefinition(api.client(DefinitionService), { name: "Daily check-in", milestones })).id;
});
afterAll(async () => {
  await db?.end();
  await api?.close();
});

/** One check-in per listed day offset (0 = today, at 01:00 UTC or now if earlier), keyed by member and day. */
function checkIns(member: string, days: readonly number[], definitionId = daily) {
  return days.map((d) => ({
    memberRef: { case: "memberExternalId" as const, value: member },
    target: { case: "definitionId" as const, value: definitionId },
    occurTime: timestampFromMs(Math.min(today() + d * DAY + 3_600_000, Date.now())),
    uniqueIdentifier: `${member}:${d}`,
    metadata: { source: "previous-vendor" },
  }));
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function importAll(member: string, days: readonly number[], policy: ImportMilestonePolicy, emitEvents = false, definitionId = daily) {
  const all = checkIns(member, days, definitionId);
  const results = [];
  for (let i = 0; i < all.length; i += 1000) {
    results.push(await api.client(ActivityService).importActivities({ activities: all.slice(i, i + 1000), milestonePolicy: policy, emitEvents }));
  }
  return results;
}

const streakOf = async (member: string) => (await api.client(MemberStreakService).getMemberStreak({ memberExternalId: member, definitionId: daily })).streak!;
const rowCount = async (sql: string, params: unknown[]) => (await db.query<{ n: number }>(`select count(*)::int as n from ${sql}`, params)).rows[0]!.n;
const memberEvents = (member: string) => rowCount("streak_event e join member m on m.id = e.member_id where m.external_id = $1", [member]);

describe("ImportActivities", () => {
  it("import/history_behind_the_grace_horizon_is_recomputed_in_event_time", async () => {
    // 400 days: 199 check-ins, one missed day, then 200 up to today. Each milestone (7, 30, 100) is reached once:
    // the second run passes them again but, as live, a milestone is earned once per cycle.
    const [res] = await importAll("imp-400", [...range(-399, -201), ...range(-199, 0)], ImportMilestonePolicy.NONE);
    expect(res).toMatchObject({ importedCount: 399, duplicateCount: 0, notAppliedCount: 0 });
    expect(res!.streaks).toEqual([expect.objectContaining({ memberExternalId: "imp-400", definitionId: daily, currentCount: 200, longestCount: 200, milestonesReachedCount: 3 })]);
    const streak = await streakOf("imp-400");
    expect({ current: streak.currentCount, longest: streak.longestCount }).toEqual({ current: 200, longest: 200 });
    // Stored marked imported; policy NONE writes no reward; no events for the past.
    expect(await rowCount("activity a join member m on m.id = a.member_id where m.external_id = $1 and a.imported", ["imp-400"])).toBe(399);
    expect((await api.client(RewardService).listRewards({ memberExternalId: "imp-400" })).rewards).toEqual([]);
    expect(await memberEvents("imp-400")).toBe(0);
    // Live recording the same day afterwards is a second check-in of today's window, not a new count.
    const live = await api.client(ActivityService).recordActivity({ activity: { ...checkIns("imp-400", [0])[0]!, uniqueIdentifier: "imp-400:live" } });
    expect(live.results[0]!.streak!.currentCount).toBe(200);
    // The API tells imported activities from live ones.
    const listed = await api.client(ActivityService).listActivities({ memberExternalId: "imp-400", pageSize: 2 });
    // (Both happened at the same instant today, so their order is not the point.)
    expect(listed.activities.map((a) => [a.uniqueIdentifier, a.imported]).sort()).toEqual([["imp-400:0", true], ["imp-400:live", false]]);
  });

  it("import/a_repeat_is_all_duplicates_and_changes_nothing", async () => {
    await importAll("imp-again", range(-20, -1), ImportMilestonePolicy.GRANT);
    const rewards = await rowCount("reward r join member m on m.id = r.member_id where m.external_id = $1", ["imp-again"]);
    expect(rewards).toBe(1);
    const before = await streakOf("imp-again");
    const [again] = await importAll("imp-again", range(-20, -1), ImportMilestonePolicy.GRANT);
    expect(again).toMatchObject({ importedCount: 0, duplicateCount: 20, streaks: [] });
    expect(await streakOf("imp-again")).toEqual(before);
    expect(await rowCount("reward r join member m on m.id = r.member_id where m.external_id = $1", ["imp-again"])).toBe(rewards);
  });

  it("import/record_policy_writes_issued_rewards_without_workflows_or_points", async () => {
    await importAll("imp-record", range(-35, -1), ImportMilestonePolicy.RECORD);
    const { rewards } = await api.client(RewardService).listRewards({ memberExternalId: "imp-record" });
    expect(rewards.map((r) => [r.milestoneThreshold, r.state]).sort()).toEqual([[30, RewardState.ISSUED], [7, RewardState.ISSUED]]);
    // Issued when the history reached them (day -29 for the 7th check-in), not now.
    const seventh = rewards.find((r) => r.milestoneThreshold === 7)!;
    expect(Number(seventh.issueTime!.seconds) * 1000).toBe(today() - 29 * DAY + 3_600_000);
    expect(await rowCount("outbox_message where payload->>'rewardId' = any($1::text[])", [rewards.map((r) => r.id)])).toBe(0);
    expect(await rowCount("member where external_id = $1 and points_balance = 0", ["imp-record"])).toBe(1);
  });

  it("import/grant_policy_grants_each_milestone_once_across_overlapping_imports", async () => {
    await importAll("imp-grant", range(-10, -3), ImportMilestonePolicy.GRANT);
    // Overlapping history, then more of it: the 7 is not granted again, the 30 is not reached.
    await importAll("imp-grant", range(-12, -1), ImportMilestonePolicy.GRANT);
    const { rewards } = await api.client(RewardService).listRewards({ memberExternalId: "imp-grant" });
    expect(rewards.map((r) => [r.milestoneThreshold, r.state])).toEqual([[7, RewardState.AVAILABLE]]);
    expect(await rowCount("outbox_message where kind = 'reward.lifecycle' and payload->>'rewardId' = $1", [rewards[0]!.id])).toBe(1);
    expect((await streakOf("imp-grant")).currentCount).toBe(12);
  });

  it("import/events_for_the_past_only_when_asked", async () => {
    await importAll("imp-events", range(-8, -1), ImportMilestonePolicy.GRANT, true);
    const { rows } = await db.query<{ type: string; occurred_at: Date }>(
      "select e.type, e.occurred_at from streak_event e join member m on m.id = e.member_id where m.external_id = $1 and e.type = 'streak.milestone_reached'",
      ["imp-events"],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.occurred_at.getTime()).toBe(today() - 2 * DAY + 3_600_000);
  });

  it("import/interleaves_with_live_recording_of_the_same_member", async () => {
    const activities = api.client(ActivityService);
    // The member and their streak row exist (a live check-in today); then three imports and live check-ins at once,
    // each of which must see the others' activities or wait for them.
    await activities.recordActivity({ activity: checkIns("imp-live", [0])[0]! });
    const batches = [range(-30, -21), range(-20, -11), range(-10, -1)].map((days) => checkIns("imp-live", days));
    await Promise.all([
      ...batches.map((batch) => activities.importActivities({ activities: batch, milestonePolicy: ImportMilestonePolicy.GRANT })),
      activities.recordActivity({ activity: { ...checkIns("imp-live", [0])[0]!, uniqueIdentifier: "imp-live:0b" } }),
      activities.recordActivity({ activity: { ...checkIns("imp-live", [0])[0]!, uniqueIdentifier: "imp-live:0c" } }),
    ]);
    const streak = await streakOf("imp-live");
    expect({ current: streak.currentCount, longest: streak.longestCount }).toEqual({ current: 31, longest: 31 });
    const { rewards } = await api.client(RewardService).listRewards({ memberExternalId: "imp-live" });
    expect(rewards.map((r) => r.milestoneThreshold).sort((a, b) => a - b)).toEqual([7, 30]);
  });

  it("import/bad_input_is_refused_and_nothing_is_stored", async () => {
    const activities = api.client(ActivityService);
    const good = checkIns("imp-bad", [-3, -2]);
    const { occurTime: _dropped, ...undated } = good[1]!;
    const draft = (await api.client(DefinitionService).createDefinition({
      definition: {
        name: "Draft",
        window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
        condition: { type: ConditionType.COUNT, min: 1 },
      },
    })).definition!.id;
    await expectFailure(activities.importActivities({ activities: [good[0]!, undated], milestonePolicy: ImportMilestonePolicy.NONE }), Code.InvalidArgument, "OCCUR_TIME_REQUIRED");
    await expectFailure(activities.importActivities({ activities: good, milestonePolicy: ImportMilestonePolicy.UNSPECIFIED }), Code.InvalidArgument, "INVALID_REQUEST");
    await expectFailure(activities.importActivities({ activities: [...good, ...checkIns("imp-bad", [-1], "00000000-0000-4000-8000-000000000000")], milestonePolicy: ImportMilestonePolicy.NONE }), Code.NotFound, "DEFINITION_NOT_FOUND");
    await expectFailure(activities.importActivities({ activities: [...good, ...checkIns("imp-bad", [-1], draft)], milestonePolicy: ImportMilestonePolicy.NONE }), Code.FailedPrecondition, "DEFINITION_NOT_LIVE");
    await expectFailure(activities.importActivities({ activities: [], milestonePolicy: ImportMilestonePolicy.NONE }), Code.InvalidArgument, "INVALID_REQUEST");
    expect(await rowCount("member where external_id = $1", ["imp-bad"])).toBe(0);
    expect(await rowCount("activity where unique_identifier like 'imp-bad:%'", [])).toBe(0);
  });

  it("import/service_keys_are_refused", async () => {
    const { bearerToken } = await api.client(TenantService).createApiKey({ name: "import-service", role: ApiKeyRole.SERVICE });
    await expectFailure(
      api.client(ActivityService, { authorization: `Bearer ${bearerToken}` }).importActivities({ activities: checkIns("imp-svc", [-1]), milestonePolicy: ImportMilestonePolicy.NONE }),
      Code.PermissionDenied,
      "PERMISSION_DENIED",
    );
    expect(await rowCount("member where external_id = $1", ["imp-svc"])).toBe(0);
  });
});
