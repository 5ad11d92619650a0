// Seed 003 — Gamopanda "Streak Logs" and reward-log fulfilment, replayed through Kindling's API (over gRPC, as a
// tenant's backend would call it).
//
// Gamopanda                                     Kindling
// POST /schema/streak_log/record                ActivityService.RecordActivity
//   streakId / activityId                         target.definition_id / metadata["activity_id"]
//   ownedById | ownedBy {externalId, firstName,   member_ref.member_external_id | member_ref.member (MemberInput,
//     lastName, email, phoneNumber}                upserted in the same transaction; Member.id is ownedById)
//   activityAt / activityValue                    occur_time / value
//   uniqueIdentifier                              unique_identifier (a repeat is duplicate = true, changes nothing)
// response streakProgress / achievedMilestone /   results[].streak / achieved_milestones (last) / next_milestone /
//   nextMilestone / achievedMilestoneRewardLog    rewards[] / definition (include_definition) for the joined streak
// GET /schema/streak_log/record[/{id}]          ActivityService.ListActivities / GetActivity (admin only)
// PATCH reward log couponCode, rewardIssuedAt,   RewardService.UpdateRewardFulfilment coupon_code, issue_time,
//   rewardExpiryAt                                expiry_time
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { MemberService } from "../../src/gen/kindling/v1/member_service_pb.js";
import { RewardService } from "../../src/gen/kindling/v1/reward_service_pb.js";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { JwtAlgorithm } from "../../src/gen/kindling/v1/tenant_pb.js";
import { NotAppliedReason } from "../../src/gen/kindling/v1/activity_pb.js";
import { RewardState } from "../../src/gen/kindling/v1/reward_pb.js";
import { CalendarPeriod, ConditionType, DefinitionState, FulfilmentMode, RewardKind, type StreakDefinition } from "../../src/gen/kindling/v1/definition_pb.js";
import { MemberStreakState } from "../../src/gen/kindling/v1/member_streak_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { StreakDefinitionSchema } from "../../src/gen/kindling/v1/definition_pb.js";
import { createTestClock, startTestApi, type TestApi, type TestClock } from "../support/api.ts";
import { at, dayAfter, endUserToken, iso, recordAt, ts } from "./seed-support.ts";

const JWT_SECRET = "gamopanda-logs-end-user-hs256-secret-000000";

let api: TestApi;
let clock: TestClock;
let dailyPurchase: StreakDefinition;
let cafe: StreakDefinition;
let steps: StreakDefinition;

const daily = { kind: { case: "calendar" as const, value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } };

async function liveStreak(init: MessageInitShape<typeof StreakDefinitionSchema>): Promise<StreakDefinition> {
  const defs = api.client(DefinitionService, api.admin, "grpc");
  const { definition } = await defs.createDefinition({ definition: init });
  return (await defs.publishDefinition({ definitionId: definition!.id })).definition!;
}

const activities = () => api.client(ActivityService, api.admin, "grpc");

beforeAll(async () => {
  clock = createTestClock(at("2025-05-01T00:00:00Z"));
  api = await startTestApi({ label: "seed_gamopanda_logs", now: clock.now });
  await api.client(TenantService).setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: JWT_SECRET } });
  dailyPurchase = await liveStreak({
    name: "Daily purchase",
    description: "One order a day",
    window: daily,
    condition: { type: ConditionType.COUNT, min: 1 },
    // Two hours of grace: a late webhook for last night's order still counts for last night.
    graceDuration: { seconds: 7200n },
  });
  cafe = await liveStreak({
    name: "Daily café visit",
    description: "Visit the café every day",
    window: daily,
    condition: { type: ConditionType.COUNT, min: 1 },
    milestones: [
      { threshold: 7, name: "One week of coffee", reward: { kind: RewardKind.COUPON, name: "Free coffee", value: "Free coffee", coupon: { description: "Free coffee" }, fulfilmentMode: FulfilmentMode.EXTERNAL } },
      { threshold: 14, name: "Two weeks of coffee", reward: { kind: RewardKind.COUPON, name: "Free pastry", value: "Free pastry", coupon: { description: "Free pastry" }, fulfilmentMode: FulfilmentMode.EXTERNAL } },
    ],
  });
  steps = await liveStreak({
    name: "Weekly steps",
    description: "70,000 steps every week",
    window: { kind: { case: "calendar", value: { period: CalendarPeriod.WEEKLY, timeZone: "UTC", resetTime: "00:00" } } },
    condition: { type: ConditionType.SUM, min: 70_000 },
  });
});
afterAll(async () => {
  await api?.close();
});

describe("seed 003 Gamopanda streak logs: creating logs", () => {
  it("gamopanda_logs/ecommerce/daily_purchase_with_inline_member_upsert_completes_the_period", async () => {
    const res = await recordAt(activities(), clock, "2025-05-01T14:22:00Z", {
      memberRef: { case: "member", value: { externalId: "cust_8841", firstName: "Ada", lastName: "Lovelace", email: "ada@example.com", phoneNumber: "+14155552671" } },
      target: { case: "definitionId", value: dailyPurchase.id },
      uniqueIdentifier: "order_100234",
      value: 89.99,
      metadata: { activity_id: "made_a_purchase" },
    });
    expect(res.duplicate).toBe(false);
    expect(res.activity).toMatchObject({ memberExternalId: "cust_8841", definitionId: dailyPurchase.id, uniqueIdentifier: "order_100234", value: 89.99, metadata: { activity_id: "made_a_purchase" } });
    expect(iso(res.activity!.occurTime)).toBe("2025-05-01T14:22:00.000Z");
    const r = res.results[0]!;
    expect(r).toMatchObject({ definitionId: dailyPurchase.id, applied: true, currentStreak: 1, achievedMilestones: [], rewards: [] });
    expect(r.nextMilestone).toBeUndefined();
    expect(r.streak).toMatchObject({ state: MemberStreakState.IN_PROGRESS, currentCount: 1, currentWindowKey: "2025-05-01", currentWindowSatisfied: true, currentWindowProgress: { count: 1 } });

    // The member exists now, with the profile sent inline; its id is Gamopanda's ownedById.
    const members = api.client(MemberService, api.admin, "grpc");
    const { member } = await members.getMember({ memberExternalId: "cust_8841" });
    expect(member).toMatchObject({ externalId: "cust_8841", firstName: "Ada", lastName: "Lovelace", email: "ada@example.com", phoneNumber: "+14155552671" });
    expect(member!.id).toMatch(/^[0-9a-f-]{36}$/);

    // A later log updates only what it sends.
    await recordAt(activities(), clock, "2025-05-02T09:00:00Z", {
      memberRef: { case: "member", value: { externalId: "cust_8841", email: "ada.l@example.com" } },
      target: { case: "definitionId", value: dailyPurchase.id },
      uniqueIdentifier: "order_100301",
    });
    expect((await members.getMember({ memberExternalId: "cust_8841" })).member).toMatchObject({
      id: member!.id, firstName: "Ada", lastName: "Lovelace", email: "ada.l@example.com", phoneNumber: "+14155552671",
    });
    // A phone number that is not E.164 is refused and records nothing.
    const bad = await recordAt(activities(), clock, "2025-05-02T09:05:00Z", {
      memberRef: { case: "member", value: { externalId: "cust_bad_phone", phoneNumber: "415-555-2671" } },
      target: { case: "definitionId", value: dailyPurchase.id },
      uniqueIdentifier: "order_bad_phone",
    }).catch((e: unknown) => e);
    expect((bad as ConnectError).code).toBe(Code.InvalidArgument);
    expect((await activities().listActivities({ memberExternalId: "cust_bad_phone" })).activities).toEqual([]);
  });

  it("gamopanda_logs/idempotency/same_unique_identifier_is_a_duplicate_and_changes_nothing", async () => {
    const input = {
      memberRef: { case: "memberExternalId" as const, value: "walker" },
      target: { case: "definitionId" as const, value: steps.id },
      uniqueIdentifier: "session_2025-05-05_morning",
      value: 12_000,
    };
    const first = await recordAt(activities(), clock, "2025-05-05T07:00:00Z", input);
    const again = await recordAt(activities(), clock, "2025-05-05T07:10:00Z", { ...input, value: 50_000 });
    expect(first.duplicate).toBe(false);
    expect(again.duplicate).toBe(true);
    expect(again.activity!.id).toBe(first.activity!.id);
    expect(again.activity!.value).toBe(12_000);
    expect(again.results[0]).toMatchObject({ applied: false, notAppliedReason: NotAppliedReason.DUPLICATE });
    expect(again.results[0]!.streak!.currentWindowProgress).toMatchObject({ count: 1, sum: 12_000 });
    const { streak } = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: "walker", definitionId: steps.id });
    expect(streak!.currentWindowProgress).toMatchObject({ count: 1, sum: 12_000 });
    expect((await activities().listActivities({ memberExternalId: "walker" })).activities).toHaveLength(1);
  });

  it("gamopanda_logs/activity_at/decides_the_period_late_log_in_grace_counts_for_its_day_older_is_not_applied", async () => {
    const member = { case: "memberExternalId" as const, value: "night-owl" };
    const target = { case: "definitionId" as const, value: dailyPurchase.id };
    await recordAt(activities(), clock, "2025-05-10T12:00:00Z", { memberRef: member, target, uniqueIdentifier: "order_a" });
    // Received at 01:00 on the 12th, but the order was placed at 23:00 on the 11th: it completes the 11th.
    clock.set(at("2025-05-12T01:00:00Z"));
    const late = await activities().recordActivity({ activity: { memberRef: member, target, occurTime: ts("2025-05-11T23:00:00Z"), uniqueIdentifier: "order_b" } });
    expect(late.results[0]).toMatchObject({ applied: true, currentStreak: 2 });
    expect(iso(late.results[0]!.streak!.lastActivityTime)).toBe("2025-05-11T23:00:00.000Z");
    // An order dated the 9th, whose day was final long ago, is stored but not applied.
    const old = await activities().recordActivity({ activity: { memberRef: member, target, occurTime: ts("2025-05-09T12:00:00Z"), uniqueIdentifier: "order_c" } });
    expect(old.results[0]).toMatchObject({ applied: false, notAppliedReason: NotAppliedReason.TOO_LATE, currentStreak: 2 });
    expect(old.activity!.appliedDefinitionIds).toEqual([]);
    expect((await activities().getActivity({ activityId: old.activity!.id })).activity!.uniqueIdentifier).toBe("order_c");
  });

  it("gamopanda_logs/fitness/weekly_steps_log_pushes_over_70000_and_completes_the_week", async () => {
    const log = (when: string, value: number, id: string) =>
      recordAt(activities(), clock, when, { memberRef: { case: "memberExternalId", value: "runner" }, target: { case: "definitionId", value: steps.id }, uniqueIdentifier: id, value });
    const a = await log("2025-05-12T20:00:00Z", 30_000, "steps_w20_1");
    expect(a.results[0]!.streak).toMatchObject({ currentWindowKey: "2025-05-12", currentWindowSatisfied: false, nextRemainingValue: 40_000, currentCount: 0 });
    await log("2025-05-14T20:00:00Z", 25_000, "steps_w20_2");
    const c = await log("2025-05-16T20:00:00Z", 18_000, "steps_w20_3");
    expect(c.results[0]).toMatchObject({ applied: true, isNewActivity: true, currentStreak: 1 });
    expect(c.results[0]!.streak).toMatchObject({
      state: MemberStreakState.IN_PROGRESS, currentWindowKey: "2025-05-12", currentWindowSatisfied: true, currentWindowProgress: { count: 3, sum: 73_000 }, nextRemainingValue: 0,
    });
  });
});

describe("seed 003 Gamopanda streak logs: milestones and reward logs", () => {
  it("gamopanda_logs/cafe/7th_consecutive_visit_crosses_the_milestone_and_returns_the_reward_log_then_patch_fulfils_it", async () => {
    for (let i = 0; i < 6; i++) {
      const day = dayAfter("2025-06-01", i);
      const visit = await recordAt(activities(), clock, `${day}T08:15:00Z`, {
        memberRef: { case: "member", value: { externalId: "cafe_regular", firstName: "Grace" } },
        target: { case: "definitionId", value: cafe.id },
        uniqueIdentifier: `visit_${day}`,
        metadata: { activity_id: "visited_store" },
      });
      expect(visit.results[0]!.achievedMilestones).toEqual([]);
      expect(visit.results[0]!.rewards).toEqual([]);
    }
    // The 7th visit, asking for the joined streak object too.
    clock.set(at("2025-06-07T08:15:00Z"));
    const seventh = {
      memberRef: { case: "memberExternalId" as const, value: "cafe_regular" },
      target: { case: "definitionId" as const, value: cafe.id },
      occurTime: ts("2025-06-07T08:15:00Z"),
      uniqueIdentifier: "visit_2025-06-07",
      metadata: { activity_id: "visited_store" },
    };
    const crossing = await activities().recordActivity({ activity: seventh, includeDefinition: true });
    expect(crossing.duplicate).toBe(false);
    expect(crossing.results[0]!.definition).toMatchObject({ id: cafe.id, name: "Daily café visit", description: "Visit the café every day", state: DefinitionState.LIVE });
    const r = crossing.results[0]!;
    expect(r).toMatchObject({ applied: true, currentStreak: 7 });
    expect(r.streak).toMatchObject({ currentCount: 7, currentWindowKey: "2025-06-07", currentWindowSatisfied: true, earnedMilestones: [7] });
    expect(r.achievedMilestones.at(-1)).toMatchObject({ threshold: 7, name: "One week of coffee" });
    expect(r.nextMilestone).toMatchObject({ threshold: 14, name: "Two weeks of coffee" });
    expect(r.rewards).toHaveLength(1);
    const rewardLog = r.rewards[0]!;
    const { member } = await api.client(MemberService).getMember({ memberExternalId: "cafe_regular" });
    expect(member!.firstName).toBe("Grace");
    // Set by the platform: milestone, linked streak, owner. Not yet: coupon code and timestamps.
    expect(rewardLog).toMatchObject({
      milestoneThreshold: 7,
      definitionId: cafe.id,
      memberExternalId: "cafe_regular",
      activityId: crossing.activity!.id,
      kind: RewardKind.COUPON,
      name: "Free coffee",
      state: RewardState.PENDING,
      fulfilmentMode: FulfilmentMode.EXTERNAL,
      couponCode: "",
    });
    expect(rewardLog.issueTime).toBeUndefined();
    expect(rewardLog.expiryTime).toBeUndefined();
    // Sending the 7th visit again neither crosses the milestone again nor creates a second reward log.
    const resent = await activities().recordActivity({ activity: seventh });
    expect(resent.duplicate).toBe(true);
    expect(resent.results[0]).toMatchObject({ applied: false, notAppliedReason: NotAppliedReason.DUPLICATE, achievedMilestones: [], rewards: [], currentStreak: 7 });

    // The tenant's backend issues a coupon and PATCHes the reward log.
    clock.set(at("2025-06-07T08:20:00Z"));
    const rewards = api.client(RewardService, api.admin, "grpc");
    const patched = await rewards.updateRewardFulfilment({
      rewardId: rewardLog.id,
      couponCode: "COFFEE-7F3K9Q",
      issueTime: ts("2025-06-07T08:16:00Z"),
      expiryTime: ts("2025-07-07T23:59:59Z"),
      updateMask: { paths: ["coupon_code", "issue_time", "expiry_time"] },
    });
    expect(patched.reward).toMatchObject({ id: rewardLog.id, couponCode: "COFFEE-7F3K9Q", state: RewardState.ISSUED, milestoneThreshold: 7 });
    expect(iso(patched.reward!.issueTime)).toBe("2025-06-07T08:16:00.000Z");
    expect(iso(patched.reward!.expiryTime)).toBe("2025-07-07T23:59:59.000Z");
    const read = (await rewards.getReward({ rewardId: rewardLog.id })).reward!;
    expect(read).toMatchObject({ couponCode: "COFFEE-7F3K9Q", state: RewardState.ISSUED });
    expect(iso(read.expiryTime)).toBe("2025-07-07T23:59:59.000Z");
    const listed = await rewards.listRewards({ memberExternalId: "cafe_regular", definitionId: cafe.id });
    expect(listed.rewards.map((x) => [x.id, x.couponCode])).toEqual([[rewardLog.id, "COFFEE-7F3K9Q"]]);
  });
});

describe("seed 003 Gamopanda streak logs: access", () => {
  it("gamopanda_logs/immutable/logs_have_no_update_or_delete_and_admin_can_get_and_list", async () => {
    // ImportActivities adds history; nothing updates or deletes an activity.
    expect(ActivityService.methods.map((m) => m.name).sort()).toEqual(["GetActivity", "ImportActivities", "ListActivities", "RecordActivities", "RecordActivity"]);
    const listed = await activities().listActivities({ memberExternalId: "cust_8841" });
    expect(listed.activities.map((a) => a.uniqueIdentifier)).toEqual(["order_100301", "order_100234"]);
    const one = await activities().getActivity({ activityId: listed.activities[1]!.id });
    expect(one.activity).toMatchObject({ uniqueIdentifier: "order_100234", value: 89.99, memberExternalId: "cust_8841" });
  });

  it("gamopanda_logs/permissions/end_users_and_guests_have_no_access_to_logs", async () => {
    const token = await endUserToken(JWT_SECRET, api.admin.tenantId, "cust_8841", clock.now());
    const someLog = (await activities().listActivities({ memberExternalId: "cust_8841" })).activities[0]!;
    for (const [who, headers] of [
      ["end user", { authorization: `Bearer ${token}` }],
      ["guest", { "x-kindling-tenant": api.admin.tenantId }],
    ] as const) {
      const client = api.client(ActivityService, headers, "grpc");
      // Thunks, so each call starts only when awaited: a rejection never waits unobserved for its turn.
      for (const call of [
        () => client.recordActivity({ activity: { memberRef: { case: "memberExternalId", value: "cust_8841" }, target: { case: "definitionId", value: dailyPurchase.id }, uniqueIdentifier: `self-${who}` } }),
        () => client.getActivity({ activityId: someLog.id }),
        () => client.listActivities({ memberExternalId: "cust_8841" }),
      ]) {
        const error = await call().catch((e: unknown) => e);
        expect(error, who).toBeInstanceOf(ConnectError);
        expect((error as ConnectError).code, who).toBe(Code.PermissionDenied);
      }
    }
    expect((await activities().listActivities({ memberExternalId: "cust_8841" })).activities).toHaveLength(2);
  });
});
