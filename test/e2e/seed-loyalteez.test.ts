// Seed 004 — Loyalteez Streak Service, replayed through Kindling's API (over Connect with the binary codec).
//
// Loyalteez                                   Kindling
// brandId                                     the tenant (its API key)
// userIdentifier "{platform}_{id}@loyalteez.app" member_external_id
// platform                                    ActivityInput.platform (stored on the activity)
// streakType "daily"                          event_type "daily" feeding a ROLLING definition:
//                                               min_spacing 24 h (one increment a day), max_gap 36 h (grace)
// POST /streak/record-activity                ActivityService.RecordActivity -> StreakResult
//   isNewActivity / wasNew / previousStreak /    is_new_activity / was_reset / previous_streak / current_streak /
//   currentStreak / multiplier /                 multiplier / unclaimed_milestones {threshold, points} / message;
//   unclaimedMilestones {days, bonus} / message  totalStreakDays -> streak.total_count
// POST /streak/claim-milestone                RewardService.ClaimReward(milestone {member, definition, threshold})
//   bonus / milestone / streak                   bonus_points / milestone_threshold / current_count
//   streak_too_short (required, current) /       STREAK_TOO_SHORT (metadata required, current) / ALREADY_CLAIMED /
//   already_claimed / invalid_milestone          INVALID_MILESTONE
// GET /streak/status/...                      MemberStreakService.GetMemberStreak: current_count, longest_count,
//                                              multiplier, next_milestone {threshold, reward.points},
//                                              periods_to_next_milestone, unclaimed_milestones,
//                                              checked_in_this_window, last_activity_time
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { RewardService } from "../../src/gen/kindling/v1/reward_service_pb.js";
import { MemberService } from "../../src/gen/kindling/v1/member_service_pb.js";
import { RewardState } from "../../src/gen/kindling/v1/reward_pb.js";
import { ConditionType, FulfilmentMode, RewardKind, type StreakDefinition } from "../../src/gen/kindling/v1/definition_pb.js";
import { MemberStreakState } from "../../src/gen/kindling/v1/member_streak_pb.js";
import { createTestClock, startTestApi, type TestApi, type TestClock } from "../support/api.ts";
import { errorMetadata, expectFailure } from "../support/fixtures.ts";
import { HOUR, at, iso, ts } from "./seed-support.ts";

let api: TestApi;
let clock: TestClock;
let daily: StreakDefinition;

const DISCORD_USER = "discord_123456789@loyalteez.app";
const ltz = (threshold: number, points: number) => ({
  threshold,
  name: `${threshold}-day milestone`,
  reward: { kind: RewardKind.POINTS, name: `+${points} LTZ`, points, fulfilmentMode: FulfilmentMode.CLAIM },
});

beforeAll(async () => {
  clock = createTestClock(at("2025-01-01T00:00:00Z"));
  api = await startTestApi({ label: "seed_loyalteez", now: clock.now });
  const defs = api.client(DefinitionService, api.admin, "connect-binary");
  const { definition } = await defs.createDefinition({
    definition: {
      name: "Daily check-in",
      description: "Loyalteez daily streak",
      eventTypes: ["daily"],
      window: { kind: { case: "rolling", value: { minSpacingDuration: { seconds: 86_400n }, maxGapDuration: { seconds: 129_600n } } } },
      condition: { type: ConditionType.COUNT, min: 1 },
      // No multiplier tiers: the Loyalteez defaults apply.
      milestones: [ltz(7, 100), ltz(30, 500), ltz(100, 2000), ltz(365, 10000)],
    },
  });
  daily = (await defs.publishDefinition({ definitionId: definition!.id })).definition!;
});
afterAll(async () => {
  await api?.close();
});

/** POST /streak/record-activity at `when`. */
async function checkIn(user: string, platform: string, when: number) {
  clock.set(when);
  const res = await api.client(ActivityService, api.admin, "connect-binary").recordActivity({
    activity: {
      memberRef: { case: "memberExternalId", value: user },
      target: { case: "eventType", value: "daily" },
      occurTime: ts(new Date(when).toISOString()),
      uniqueIdentifier: `checkin:${user}:${when}`,
      platform,
    },
  });
  expect(res.results).toHaveLength(1);
  return { activity: res.activity!, result: res.results[0]! };
}

async function status(user: string) {
  return (await api.client(MemberStreakService, api.admin, "connect-binary").getMemberStreak({ memberExternalId: user, definitionId: daily.id })).streak!;
}

const claim = (user: string, threshold: number) =>
  api.client(RewardService, api.admin, "connect-binary").claimReward({ target: { case: "milestone", value: { memberExternalId: user, definitionId: daily.id, threshold } } });

describe("seed 004 Loyalteez: configuration", () => {
  it("loyalteez/config/default_multipliers_3_7_14_30_and_milestones_7_30_100_365", async () => {
    const { definition } = await api.client(DefinitionService).getDefinition({ definitionId: daily.id });
    expect(definition!.multiplierTiers.map((t) => [t.minCount, t.multiplier])).toEqual([
      [3, 1.25],
      [7, 1.5],
      [14, 1.75],
      [30, 2.0],
    ]);
    expect(definition!.milestones.map((m) => [m.threshold, m.reward?.points, m.reward?.fulfilmentMode])).toEqual([
      [7, 100, FulfilmentMode.CLAIM],
      [30, 500, FulfilmentMode.CLAIM],
      [100, 2000, FulfilmentMode.CLAIM],
      [365, 10000, FulfilmentMode.CLAIM],
    ]);
  });
});

describe("seed 004 Loyalteez: record-activity, status and claim-milestone", () => {
  const t0 = at("2025-01-01T18:00:00Z");
  let last = t0;

  it("loyalteez/record/first_activity_starts_a_1_day_streak_on_the_platform_it_came_from", async () => {
    const { activity, result } = await checkIn(DISCORD_USER, "discord", t0);
    expect(activity.platform).toBe("discord");
    expect(activity.memberExternalId).toBe(DISCORD_USER);
    expect(result).toMatchObject({ applied: true, isNewActivity: true, wasReset: false, previousStreak: 0, currentStreak: 1, multiplier: 1, unclaimedMilestones: [], message: "Day 1 streak!" });
    expect(result.streak!.totalCount).toBe(1);
    const stored = await api.client(ActivityService).getActivity({ activityId: activity.id });
    expect(stored.activity!.platform).toBe("discord");
  });

  it("loyalteez/record/already_checked_in_today_is_not_new", async () => {
    const { result } = await checkIn(DISCORD_USER, "discord", t0 + 2 * HOUR);
    expect(result).toMatchObject({ isNewActivity: false, wasReset: false, currentStreak: 1, multiplier: 1 });
    expect(result.message).toMatch(/^Already checked in/);
    expect(await status(DISCORD_USER)).toMatchObject({ currentCount: 1, checkedInThisWindow: true, currentWindowSatisfied: true });
  });

  it("loyalteez/record/check_in_30h_later_continues_and_status_on_day_5", async () => {
    last = t0 + 30 * HOUR;
    const second = await checkIn(DISCORD_USER, "discord", last);
    expect(second.result).toMatchObject({ isNewActivity: true, wasReset: false, currentStreak: 2, multiplier: 1 });
    // 25 h later the next day's window is open and not yet used: not checked in, not broken either.
    clock.set(last + 25 * HOUR);
    expect(await status(DISCORD_USER)).toMatchObject({ state: MemberStreakState.IN_PROGRESS, currentCount: 2, checkedInThisWindow: false, currentWindowSatisfied: false });
    const multipliers: number[] = [];
    for (let day = 3; day <= 5; day++) {
      last += 25 * HOUR;
      const { result } = await checkIn(DISCORD_USER, "discord", last);
      expect(result).toMatchObject({ isNewActivity: true, currentStreak: day });
      multipliers.push(result.multiplier);
      if (day === 5) expect(result.message).toBe("Day 5 streak!");
    }
    expect(multipliers).toEqual([1.25, 1.25, 1.25]);
    // GET /streak/status: the documented shape for a 5-day streak.
    const s = await status(DISCORD_USER);
    expect(s).toMatchObject({
      currentCount: 5,
      longestCount: 5,
      multiplier: 1.25,
      periodsToNextMilestone: 2,
      unclaimedMilestones: [],
      checkedInThisWindow: true,
    });
    expect(s.nextMilestone).toMatchObject({ threshold: 7, reward: { points: 100 } });
    expect(iso(s.lastActivityTime)).toBe(new Date(last).toISOString());
  });

  it("loyalteez/milestones/day_7_is_unclaimed_with_its_bonus_then_claims_report_typed_reasons", async () => {
    for (let day = 6; day <= 7; day++) {
      last += 25 * HOUR;
      const { result } = await checkIn(DISCORD_USER, "discord", last);
      if (day === 7) {
        expect(result).toMatchObject({ currentStreak: 7, multiplier: 1.5 });
        expect(result.unclaimedMilestones.map((u) => ({ days: u.threshold, bonus: u.points }))).toEqual([{ days: 7, bonus: 100 }]);
        expect(result.rewards.map((r) => [r.milestoneThreshold, r.state, r.points])).toEqual([[7, RewardState.AVAILABLE, 100]]);
      }
    }
    // claim-milestone for 30 days on a 7-day streak: streak_too_short with required/current.
    const tooShort = await expectFailure(claim(DISCORD_USER, 30), Code.FailedPrecondition, "STREAK_TOO_SHORT");
    expect(errorMetadata(tooShort)).toMatchObject({ required: "30", current: "7" });
    // A milestone that does not exist in the configuration.
    await expectFailure(claim(DISCORD_USER, 8), Code.InvalidArgument, "INVALID_MILESTONE");

    // The doc's claim: 7-day milestone claimed on a 10-day streak -> bonus 100, milestone 7, streak 10.
    for (let day = 8; day <= 10; day++) {
      last += 25 * HOUR;
      await checkIn(DISCORD_USER, "discord", last);
    }
    const claimed = await claim(DISCORD_USER, 7);
    expect(claimed).toMatchObject({ milestoneThreshold: 7, currentCount: 10 });
    expect(claimed.reward).toMatchObject({ state: RewardState.CLAIMED, milestoneThreshold: 7 });
    await expectFailure(claim(DISCORD_USER, 7), Code.FailedPrecondition, "ALREADY_CLAIMED");
    expect((await status(DISCORD_USER)).unclaimedMilestones).toEqual([]);
    // Loyalteez: "7 days: +100 LTZ"; the claim example answers bonus 100 on a 10-day streak. The bonus the claim
    // reports must be the one the unclaimed list promised (100) and the one credited to the member.
    const balance = (await api.client(MemberService).getMember({ memberExternalId: DISCORD_USER })).member!.pointsBalance;
    expect.soft(balance, "points credited by the claim").toBe(100);
    expect.soft(claimed.bonusPoints, "bonus reported by the claim").toBe(100);
  });

  it("loyalteez/reset/no_check_in_within_36h_restarts_at_1_with_previous_streak", async () => {
    for (let day = 11; day <= 14; day++) {
      last += 25 * HOUR;
      const { result } = await checkIn(DISCORD_USER, "discord", last);
      if (day === 14) expect(result.multiplier).toBe(1.75);
    }
    // 37 h without a check-in: the status already reads broken (no timer has run).
    clock.set(last + 37 * HOUR);
    expect(await status(DISCORD_USER)).toMatchObject({ state: MemberStreakState.BROKEN, currentCount: 0, longestCount: 14, multiplier: 1 });
    const { result } = await checkIn(DISCORD_USER, "discord", last + 40 * HOUR);
    expect(result).toMatchObject({ isNewActivity: true, wasReset: true, previousStreak: 14, currentStreak: 1, multiplier: 1 });
    expect(result.message).toMatch(/1 streak/);
    const s = await status(DISCORD_USER);
    expect(s).toMatchObject({ state: MemberStreakState.IN_PROGRESS, currentCount: 1, longestCount: 14, previousCount: 14, totalCount: 15 });
    // The 7-day bonus was already granted (and claimed): rebuilding never grants it twice, so 30 is next.
    expect(s.nextMilestone?.threshold).toBe(30);
  });

  it("loyalteez/multipliers/3_7_14_30_tiers_over_a_30_day_streak", async () => {
    const user = "telegram_987654321@loyalteez.app";
    let when = at("2025-03-01T07:00:00Z");
    const byDay = new Map<number, number>();
    const results = [];
    for (let day = 1; day <= 30; day++) {
      const { result } = await checkIn(user, "telegram", when);
      expect(result.currentStreak).toBe(day);
      byDay.set(day, result.multiplier);
      results.push(result);
      when += 24 * HOUR;
    }
    const lastResult = results[29]!;
    expect([1, 2, 3, 6, 7, 13, 14, 29, 30].map((d) => [d, byDay.get(d)])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1.25],
      [6, 1.25],
      [7, 1.5],
      [13, 1.5],
      [14, 1.75],
      [29, 1.75],
      [30, 2.0],
    ]);
    expect(lastResult.unclaimedMilestones.map((u) => ({ days: u.threshold, bonus: u.points }))).toEqual([
      { days: 7, bonus: 100 },
      { days: 30, bonus: 500 },
    ]);
    const s = await status(user);
    expect(s).toMatchObject({ currentCount: 30, longestCount: 30, multiplier: 2, periodsToNextMilestone: 70, totalCount: 30 });
    expect(s.nextMilestone).toMatchObject({ threshold: 100, reward: { points: 2000 } });
  });
});
