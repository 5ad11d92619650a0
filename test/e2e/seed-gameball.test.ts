// Seed 000 — Gameball REST v4.0, "Customer Daily Streak Progress", replayed through Kindling's API.
//
// Gameball                                         Kindling
// GET /integrations/customers/{customerId}/         MemberStreakService.GetMemberStreak(member_external_id,
//     streaks/{campaignId}                           definition_id), here over gRPC-Web
// apikey + secretkey headers (401)                 the same headers on every call (UNAUTHENTICATED)
// daily streak campaign                            StreakDefinition: daily calendar window, COUNT >= 1, end_time
// currentStreakCount / highestStreakCount          current_count / longest_count
// totalRewardsEarned                               total_rewards_earned
// ongoingReward {name, type, value}                ongoing_reward {name, kind, value}
// nextMilestone (null at the last tier)            next_milestone.threshold (unset at the last tier)
// lastActivityDate / campaignEndDate               last_activity_time / campaign_end_time
// badges[] {milestoneDay, name, imageUrl,           badges[] {milestone_threshold, name, image_url, earned,
//           earned, earnedDate}                              earned_time}, by threshold ascending
// 404 customer or campaign not found               NOT_FOUND
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { NotAppliedReason } from "../../src/gen/kindling/v1/activity_pb.js";
import { MemberStreakState, type MemberStreakProgress } from "../../src/gen/kindling/v1/member_streak_pb.js";
import { createTestClock, startTestApi, type TestApi, type TestClock } from "../support/api.ts";
import { expectFailure } from "../support/fixtures.ts";
import { at, iso, recordAt, ts } from "./seed-support.ts";

let api: TestApi;
let clock: TestClock;
let campaignId: string;

const CAMPAIGN_END = "2025-06-30T23:59:59Z";
const BADGES = [
  { day: 3, name: "Bronze Flame", imageUrl: "https://cdn.example.com/badges/bronze-flame.png" },
  { day: 7, name: "Silver Flame", imageUrl: "https://cdn.example.com/badges/silver-flame.png" },
  { day: 14, name: "Gold Flame", imageUrl: "https://cdn.example.com/badges/gold-flame.png" },
];

beforeAll(async () => {
  clock = createTestClock(at("2025-03-01T00:00:00Z"));
  api = await startTestApi({ label: "seed_gameball", now: clock.now });
  const defs = api.client(DefinitionService, api.admin, "grpc-web");
  // The milestones are given out of order on purpose: badges must come back ordered by milestoneDay.
  const { definition } = await defs.createDefinition({
    definition: {
      name: "Daily Shopper Streak",
      description: "Place an order every day",
      eventTypes: ["order.placed"],
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 1 },
      endTime: ts(CAMPAIGN_END),
      milestones: [
        {
          threshold: 14,
          name: "Two weeks",
          reward: {
            kind: RewardKind.POINTS, name: "300 Points", value: "300", points: 300, fulfilmentMode: FulfilmentMode.CLAIM,
            badge: { name: BADGES[2]!.name, imageUrl: BADGES[2]!.imageUrl },
          },
        },
        {
          threshold: 3,
          name: "Three days",
          reward: {
            kind: RewardKind.POINTS, name: "50 Points", value: "50", points: 50, fulfilmentMode: FulfilmentMode.CLAIM,
            badge: { name: BADGES[0]!.name, imageUrl: BADGES[0]!.imageUrl },
          },
        },
        {
          threshold: 7,
          name: "One week",
          reward: {
            kind: RewardKind.COUPON, name: "10% Off Coupon", value: "10% off your next order", coupon: { description: "10% off your next order" },
            fulfilmentMode: FulfilmentMode.EXTERNAL, badge: { name: BADGES[1]!.name, imageUrl: BADGES[1]!.imageUrl },
          },
        },
      ],
    },
  });
  campaignId = (await defs.publishDefinition({ definitionId: definition!.id })).definition!.id;
});
afterAll(async () => {
  await api?.close();
});

/** GET /api/v4.0/integrations/customers/{customerId}/streaks/{campaignId}, with apikey + secretkey. */
async function progress(customerId: string): Promise<MemberStreakProgress> {
  const { streak } = await api.client(MemberStreakService, api.admin, "grpc-web").getMemberStreak({ memberExternalId: customerId, definitionId: campaignId });
  return streak!;
}

async function orderOn(customerId: string, when: string) {
  return recordAt(api.client(ActivityService, api.admin, "grpc-web"), clock, when, {
    memberRef: { case: "memberExternalId", value: customerId },
    target: { case: "eventType", value: "order.placed" },
    uniqueIdentifier: `order-${customerId}-${when}`,
  });
}

/** The Gameball response shape, read from Kindling's progress. */
function asGameball(p: MemberStreakProgress) {
  return {
    currentStreakCount: p.currentCount,
    highestStreakCount: p.longestCount,
    totalRewardsEarned: p.totalRewardsEarned,
    ongoingReward: p.ongoingReward ? { name: p.ongoingReward.name, type: p.ongoingReward.kind, value: p.ongoingReward.value } : null,
    nextMilestone: p.nextMilestone?.threshold ?? null,
    lastActivityDate: iso(p.lastActivityTime) ?? null,
    campaignEndDate: iso(p.campaignEndTime) ?? null,
    badges: p.badges.map((b) => ({ milestoneDay: b.milestoneThreshold, name: b.name, imageUrl: b.imageUrl, earned: b.earned, earnedDate: iso(b.earnedTime) ?? null })),
  };
}

const badge = (i: number, earnedDate: string | null) => ({ milestoneDay: BADGES[i]!.day, name: BADGES[i]!.name, imageUrl: BADGES[i]!.imageUrl, earned: earnedDate !== null, earnedDate });

describe("seed 000 Gameball: customer daily streak progress", () => {
  it("gameball/auth/apikey_and_secretkey_required_401_on_wrong_secret", async () => {
    const wrong = api.client(MemberStreakService, { ...api.admin, secret: "not-the-secret" }, "grpc-web");
    const error = await wrong.getMemberStreak({ memberExternalId: "cust-1", definitionId: campaignId }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unauthenticated);
    const missingSecret = api.client(MemberStreakService, { apikey: api.admin.keyId }, "grpc-web");
    expect(((await missingSecret.getMemberStreak({ memberExternalId: "cust-1", definitionId: campaignId }).catch((e: unknown) => e)) as ConnectError).code).toBe(
      Code.Unauthenticated,
    );
  });

  it("gameball/not_found/unknown_customer_or_campaign_is_404", async () => {
    const streaks = api.client(MemberStreakService, api.admin, "grpc-web");
    await expectFailure(streaks.getMemberStreak({ memberExternalId: "nobody", definitionId: campaignId }), Code.NotFound, "MEMBER_STREAK_NOT_FOUND");
    await orderOn("cust-404", "2025-03-01T10:00:00Z");
    await expectFailure(streaks.getMemberStreak({ memberExternalId: "cust-404", definitionId: "9b2f6a3e-1111-4222-8333-444455556666" }), Code.NotFound, "MEMBER_STREAK_NOT_FOUND");
  });

  it("gameball/progress/day_4_bronze_earned_next_milestone_7_coupon_ongoing", async () => {
    for (const day of ["01", "02", "03", "04"]) await orderOn("cust-42", `2025-03-${day}T10:15:00Z`);
    clock.set(at("2025-03-04T18:00:00Z"));
    expect(asGameball(await progress("cust-42"))).toEqual({
      currentStreakCount: 4,
      highestStreakCount: 4,
      totalRewardsEarned: 1,
      ongoingReward: { name: "10% Off Coupon", type: RewardKind.COUPON, value: "10% off your next order" },
      nextMilestone: 7,
      lastActivityDate: "2025-03-04T10:15:00.000Z",
      campaignEndDate: "2025-06-30T23:59:59.000Z",
      badges: [badge(0, "2025-03-03T10:15:00.000Z"), badge(1, null), badge(2, null)],
    });
    expect((await progress("cust-42")).ongoingReward?.threshold).toBe(7);
  });

  it("gameball/progress/highest_streak_survives_a_break", async () => {
    // cust-42 misses 2025-03-05; the read on the 6th already shows the break.
    clock.set(at("2025-03-06T09:00:00Z"));
    const broken = await progress("cust-42");
    expect(broken).toMatchObject({ state: MemberStreakState.BROKEN, currentCount: 0, longestCount: 4 });
    await orderOn("cust-42", "2025-03-06T09:00:00Z");
    await orderOn("cust-42", "2025-03-07T20:45:00Z");
    const p = asGameball(await progress("cust-42"));
    expect(p).toMatchObject({ currentStreakCount: 2, highestStreakCount: 4, totalRewardsEarned: 1, lastActivityDate: "2025-03-07T20:45:00.000Z" });
    // The Bronze badge stays earned with its original date.
    expect(p.badges[0]).toEqual(badge(0, "2025-03-03T10:15:00.000Z"));
  });

  it("gameball/progress/last_tier_reached_next_milestone_null_all_badges_earned", async () => {
    for (let d = 1; d <= 14; d++) await orderOn("cust-7", `2025-04-${String(d).padStart(2, "0")}T12:00:00Z`);
    expect(asGameball(await progress("cust-7"))).toEqual({
      currentStreakCount: 14,
      highestStreakCount: 14,
      totalRewardsEarned: 3,
      // At the last tier, the reward in play is the last one reached (the proto's ongoing_reward contract).
      ongoingReward: { name: "300 Points", type: RewardKind.POINTS, value: "300" },
      nextMilestone: null,
      lastActivityDate: "2025-04-14T12:00:00.000Z",
      campaignEndDate: "2025-06-30T23:59:59.000Z",
      badges: [badge(0, "2025-04-03T12:00:00.000Z"), badge(1, "2025-04-07T12:00:00.000Z"), badge(2, "2025-04-14T12:00:00.000Z")],
    });
    expect((await progress("cust-7")).ongoingReward?.threshold).toBe(14);
  });

  it("gameball/campaign_end/orders_after_the_end_date_do_not_count", async () => {
    const res = await orderOn("cust-late", "2025-07-01T10:00:00Z");
    expect(res.results[0]).toMatchObject({ applied: false, notAppliedReason: NotAppliedReason.AFTER_END, currentStreak: 0 });
    expect(iso(res.results[0]!.streak!.campaignEndTime)).toBe("2025-06-30T23:59:59.000Z");
  });
});
