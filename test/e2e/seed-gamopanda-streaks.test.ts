// Seed 002 — Gamopanda "Streaks", replayed through Kindling's API.
//
// Gamopanda                                   Kindling
// POST/GET/PATCH/DELETE /schema/streak/record  DefinitionService Create/Get+List/Update/Archive
// name, description                            StreakDefinition.name, description
// status draft · live · paused                 state DRAFT · LIVE · PAUSED (PublishDefinition, PauseDefinition, ...)
// aggregationMethod sum · count                condition.type SUM · COUNT
// aggregationPeriod daily · weekly · monthly   window.calendar.period DAILY · WEEKLY · MONTHLY
// aggregationTargetValue                       condition.min
// completionTargetValue                        completion_target (-> COMPLETED, then a new cycle)
// milestones                                   milestones[] with a reward each
// eud* labels and messages, languageCode       display.localizations[], read with `language`; rendered in
//                                              MemberStreakProgress.display
// Admin / End user / Guest permissions         API key ADMIN / end-user JWT / `x-kindling-tenant` guest
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { JwtAlgorithm } from "../../src/gen/kindling/v1/tenant_pb.js";
import { NotAppliedReason } from "../../src/gen/kindling/v1/activity_pb.js";
import { RewardState } from "../../src/gen/kindling/v1/reward_pb.js";
import {
  CalendarPeriod,
  ConditionType,
  DefinitionState,
  FulfilmentMode,
  RewardKind,
  Weekday,
  type StreakDefinition,
} from "../../src/gen/kindling/v1/definition_pb.js";
import { DisplayMessageKind, MemberStreakState } from "../../src/gen/kindling/v1/member_streak_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { StreakDefinitionSchema } from "../../src/gen/kindling/v1/definition_pb.js";
import { createTestClock, startTestApi, type TestApi, type TestClock } from "../support/api.ts";
import { expectFailure } from "../support/fixtures.ts";
import { at, dayAfter, endUserToken, recordAt } from "./seed-support.ts";

const JWT_SECRET = "gamopanda-end-user-hs256-secret-0123456789";

let api: TestApi;
let clock: TestClock;

const calendar = (period: CalendarPeriod, timeZone = "UTC", weekStart = Weekday.UNSPECIFIED) => ({
  kind: { case: "calendar" as const, value: { period, timeZone, resetTime: "00:00", weekStart } },
});
const coupon = (name: string) => ({ kind: RewardKind.COUPON, name, value: name, coupon: { description: name }, fulfilmentMode: FulfilmentMode.EXTERNAL });

async function liveStreak(init: MessageInitShape<typeof StreakDefinitionSchema>): Promise<StreakDefinition> {
  const defs = api.client(DefinitionService);
  const { definition } = await defs.createDefinition({ definition: init });
  expect(definition!.state).toBe(DefinitionState.DRAFT);
  return (await defs.publishDefinition({ definitionId: definition!.id })).definition!;
}

/** A streak log: member, streak, activityAt, uniqueIdentifier, activityValue. */
async function log(member: string, streakId: string, when: string, value?: number, language = "") {
  return recordAt(
    api.client(ActivityService),
    clock,
    when,
    { memberRef: { case: "memberExternalId", value: member }, target: { case: "definitionId", value: streakId }, uniqueIdentifier: `${member}:${when}:${value ?? ""}`, value },
    language,
  );
}

async function progress(member: string, definitionId: string, language = "") {
  return (await api.client(MemberStreakService).getMemberStreak({ memberExternalId: member, definitionId, language })).streak!;
}

beforeAll(async () => {
  clock = createTestClock(at("2025-01-01T00:00:00Z"));
  api = await startTestApi({ label: "seed_gamopanda_streaks", now: clock.now });
  await api.client(TenantService).setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: JWT_SECRET } });
});
afterAll(async () => {
  await api?.close();
});

describe("seed 002 Gamopanda streaks: real-world examples", () => {
  it("gamopanda/7_day_shopper/50_dollars_a_day_for_7_days_milestones_3_and_7_then_completed_and_a_new_cycle", async () => {
    const shopper = await liveStreak({
      name: "7-Day Shopper",
      description: "Spend $50 every day for 7 consecutive days",
      window: calendar(CalendarPeriod.DAILY),
      condition: { type: ConditionType.SUM, min: 50 },
      completionTarget: 7,
      milestones: [
        { threshold: 3, name: "Day 3", reward: coupon("5% off") },
        { threshold: 7, name: "Day 7", reward: coupon("Free shipping for a month") },
      ],
    });
    const achieved: Record<number, number[]> = {};
    for (let i = 0; i < 7; i++) {
      const res = await log("shopper", shopper.id, `${dayAfter("2025-01-06", i)}T15:00:00Z`, 50);
      const r = res.results[0]!;
      expect(r).toMatchObject({ applied: true, currentStreak: i + 1 });
      if (r.achievedMilestones.length > 0) achieved[i + 1] = r.achievedMilestones.map((m) => m.threshold);
      if (i + 1 === 3) expect(r.rewards.map((w) => [w.milestoneThreshold, w.name, w.state])).toEqual([[3, "5% off", RewardState.PENDING]]);
      if (i + 1 === 7) expect(r.rewards.map((w) => [w.milestoneThreshold, w.name, w.state])).toEqual([[7, "Free shipping for a month", RewardState.PENDING]]);
    }
    expect(achieved).toEqual({ 3: [3], 7: [7] });
    const done = await progress("shopper", shopper.id);
    expect(done).toMatchObject({ state: MemberStreakState.COMPLETED, currentCount: 7, completionTarget: 7, completionsCount: 1, earnedMilestones: [3, 7] });
    expect(done.display).toMatchObject({
      statusLabel: "Completed",
      messageKind: DisplayMessageKind.COMPLETED_STREAK,
      message: "Congratulations! You have completed this streak! Come back next day to shop more and start your next streak!",
    });
    // Completed: what the member works toward now is the next cycle's first milestone.
    expect(done.nextMilestone?.threshold).toBe(3);

    // Day 8: the next window starts cycle 2 at count 1; milestone 3 is there to earn again.
    const day8 = await log("shopper", shopper.id, "2025-01-13T15:00:00Z", 50);
    expect(day8.results[0]!.streak).toMatchObject({ state: MemberStreakState.IN_PROGRESS, currentCount: 1, cycle: 2, completionsCount: 1, longestCount: 7 });
    expect(day8.results[0]!.nextMilestone?.threshold).toBe(3);
  });

  it("gamopanda/weekly_regular/two_visits_a_week_for_4_weeks_completes", async () => {
    const regular = await liveStreak({
      name: "Weekly Regular",
      description: "At least 2 café purchases every week for 4 weeks",
      window: calendar(CalendarPeriod.WEEKLY, "UTC", Weekday.MONDAY),
      condition: { type: ConditionType.COUNT, min: 2 },
      completionTarget: 4,
    });
    const mondays = ["2025-03-03", "2025-03-10", "2025-03-17", "2025-03-24"];
    for (const [w, monday] of mondays.entries()) {
      // activityValue is ignored by count streaks: each log is one visit.
      const first = await log("regular", regular.id, `${monday}T08:00:00Z`, 4.5);
      expect(first.results[0]!.streak).toMatchObject({ currentWindowKey: monday, currentWindowSatisfied: false, currentCount: w });
      const second = await log("regular", regular.id, `${dayAfter(monday, 3)}T08:00:00Z`, 12);
      expect(second.results[0]!.streak).toMatchObject({ currentWindowKey: monday, currentWindowSatisfied: true, currentCount: w + 1, currentWindowProgress: { count: 2 } });
    }
    expect(await progress("regular", regular.id)).toMatchObject({ state: MemberStreakState.COMPLETED, currentCount: 4, completionsCount: 1 });

    // One visit in a week does not count, and once that week is over the streak is broken.
    await log("one-visit", regular.id, "2025-03-03T08:00:00Z");
    await log("one-visit", regular.id, "2025-03-05T08:00:00Z");
    await log("one-visit", regular.id, "2025-03-12T08:00:00Z");
    clock.set(at("2025-03-17T09:00:00Z"));
    expect(await progress("one-visit", regular.id)).toMatchObject({ state: MemberStreakState.BROKEN, currentCount: 0, longestCount: 1 });
  });

  it("gamopanda/monthly_mover/1500_minutes_a_month_for_3_months_milestones_1_and_3", async () => {
    const mover = await liveStreak({
      name: "Monthly Mover",
      description: "Log at least 1,500 activity minutes every month for 3 months",
      window: calendar(CalendarPeriod.MONTHLY, "Europe/Berlin"),
      condition: { type: ConditionType.SUM, min: 1500 },
      completionTarget: 3,
      milestones: [
        { threshold: 1, name: "Month 1", reward: coupon("Premium discount") },
        { threshold: 3, name: "Month 3", reward: coupon("Free membership") },
      ],
    });
    const months = ["2025-04", "2025-05", "2025-06"];
    for (const [m, month] of months.entries()) {
      const a = await log("mover", mover.id, `${month}-02T06:00:00Z`, 900);
      expect(a.results[0]!.streak).toMatchObject({ currentWindowKey: month, currentWindowSatisfied: false, nextRemainingValue: 600 });
      const b = await log("mover", mover.id, `${month}-20T06:00:00Z`, 650);
      expect(b.results[0]!.streak).toMatchObject({ currentWindowKey: month, currentWindowSatisfied: true, currentCount: m + 1, currentWindowProgress: { sum: 1550 } });
      if (m === 0) expect(b.results[0]!.achievedMilestones.map((x) => x.threshold)).toEqual([1]);
      if (m === 2) expect(b.results[0]!.achievedMilestones.map((x) => x.threshold)).toEqual([3]);
    }
    expect(await progress("mover", mover.id)).toMatchObject({ state: MemberStreakState.COMPLETED, currentCount: 3, earnedMilestones: [1, 3] });
    // Berlin: 23:30 UTC on 30 June is already 1 July locally, the next month's window.
    const july = await log("mover-2", mover.id, "2025-06-30T23:30:00Z", 10);
    expect(july.results[0]!.streak!.currentWindowKey).toBe("2025-07");
  });

  it("gamopanda/daily_learner/one_lesson_a_day_for_30_days_milestones_7_14_30", async () => {
    const learner = await liveStreak({
      name: "Daily Learner",
      description: "Complete at least 1 lesson per day for 30 consecutive days",
      window: calendar(CalendarPeriod.DAILY, "Asia/Kolkata"),
      condition: { type: ConditionType.COUNT, min: 1 },
      completionTarget: 30,
      milestones: [
        { threshold: 7, reward: coupon("10% off courses") },
        { threshold: 14, reward: coupon("20% off courses") },
        { threshold: 30, reward: coupon("50% off courses") },
      ],
    });
    const reached: number[] = [];
    for (let i = 0; i < 30; i++) {
      // 10:00 in Kolkata is 04:30 UTC.
      const day = dayAfter("2025-08-01", i);
      const res = await log("student", learner.id, `${day}T04:30:00Z`);
      expect(res.results[0]!.streak!.currentWindowKey).toBe(day);
      reached.push(...res.results[0]!.achievedMilestones.map((m) => m.threshold));
      if (i + 1 === 10) {
        expect(res.results[0]!.streak).toMatchObject({ currentCount: 10, earnedMilestones: [7], periodsToNextMilestone: 4 });
        expect(res.results[0]!.nextMilestone?.threshold).toBe(14);
      }
    }
    expect(reached).toEqual([7, 14, 30]);
    expect(await progress("student", learner.id)).toMatchObject({ state: MemberStreakState.COMPLETED, currentCount: 30, earnedMilestones: [7, 14, 30], completionsCount: 1 });
  });
});

describe("seed 002 Gamopanda streaks: end-user display", () => {
  let spend: StreakDefinition;

  it("gamopanda/display/worked_example_renders_to_the_character", async () => {
    spend = await liveStreak({
      name: "Daily $50 spend",
      description: "Spend $50 every day",
      window: calendar(CalendarPeriod.DAILY),
      condition: { type: ConditionType.SUM, min: 50 },
      milestones: [{ threshold: 5, reward: coupon("Free dessert") }],
      display: {
        defaultLanguage: "en",
        localizations: [
          { language: "en", title: "Daily Spender", description: "Spend $50 a day to keep your streak" },
          {
            language: "es",
            title: "Comprador diario",
            inProgressLabel: "En curso",
            nonMilestoneNextToBeAchievedMessage: "¡Compra ${{nextRemainingValue}} o más para completar el día {{nextProgressValue}} de tu racha!",
          },
        ],
      },
    });
    const notStarted = await api.client(MemberStreakService).listMemberStreaks({ memberExternalId: "worked", includeNotStarted: true });
    expect(notStarted.streaks.find((s) => s.definitionId === spend.id)?.display).toMatchObject({ statusLabel: "Not Started", notStartedLabel: "Not Started" });

    for (let i = 0; i < 3; i++) await log("worked", spend.id, `${dayAfter("2025-09-01", i)}T12:00:00Z`, 50);
    // Day 4: $29.50 spent so far today, next milestone at day 5.
    const res = await log("worked", spend.id, "2025-09-04T12:00:00Z", 29.5);
    const p = res.results[0]!.streak!;
    expect(p).toMatchObject({ currentCount: 3, nextRemainingValue: 20.5, periodsToNextMilestone: 2, currentWindowSatisfied: false });
    expect(p.nextMilestone?.threshold).toBe(5);
    expect(p.display).toEqual(
      expect.objectContaining({
        language: "en",
        title: "Daily Spender",
        description: "Spend $50 a day to keep your streak",
        statusLabel: "In Progress",
        inProgressLabel: "In Progress",
        completedLabel: "Completed",
        notStartedLabel: "Not Started",
        brokenLabel: "Broken",
        viewDetailsButtonText: "View Details",
        messageKind: DisplayMessageKind.NON_MILESTONE_NEXT_TO_BE_ACHIEVED,
        message: "Shop for $20.50 or more to complete the day 4 streak!",
      }),
    );

    // Topping up completes day 4; the achieved message follows.
    const topUp = await log("worked", spend.id, "2025-09-04T18:00:00Z", 20.5);
    expect(topUp.results[0]!.streak!.display).toMatchObject({
      messageKind: DisplayMessageKind.NON_MILESTONE_ACHIEVED,
      message: "You have completed day 4 streak! Come back next day to shop more to maintain your streak and reach the next milestone!",
    });
    // Day 5 is the milestone day: the milestone template, with "1 day" in agreement.
    const day5 = await log("worked", spend.id, "2025-09-05T09:00:00Z", 10);
    expect(day5.results[0]!.streak!.display).toMatchObject({
      messageKind: DisplayMessageKind.MILESTONE_NEXT_TO_BE_ACHIEVED,
      message: "Shop for $40 or more for 1 day to complete the next milestone!",
    });
    const day5Done = await log("worked", spend.id, "2025-09-05T19:00:00Z", 40);
    expect(day5Done.results[0]!.streak!.display).toMatchObject({
      messageKind: DisplayMessageKind.MILESTONE_ACHIEVED,
      message: "You have completed day 5 streak! Come back next day to shop more to maintain your streak and reach the next milestone!",
    });
    // Missing day 6 breaks it.
    clock.set(at("2025-09-07T10:00:00Z"));
    expect((await progress("worked", spend.id)).display).toMatchObject({
      statusLabel: "Broken",
      messageKind: DisplayMessageKind.BROKEN_STREAK,
      message: "Your streak has been broken. Don't worry, you can start a new streak today! Shop more and reach your next milestone!",
    });
  });

  it("gamopanda/display/language_code_with_fallback_to_base_language_then_default", async () => {
    for (let i = 0; i < 3; i++) await log("lingo", spend.id, `${dayAfter("2025-09-10", i)}T12:00:00Z`, 50);
    await log("lingo", spend.id, "2025-09-13T12:00:00Z", 29.5);
    // es-MX has no localization of its own: Spanish; empty Spanish fields fall back to English defaults.
    const es = await progress("lingo", spend.id, "es-MX");
    expect(es.display).toMatchObject({
      language: "es",
      title: "Comprador diario",
      statusLabel: "En curso",
      inProgressLabel: "En curso",
      viewDetailsButtonText: "View Details",
      message: "¡Compra $20.50 o más para completar el día 4 de tu racha!",
    });
    // A language with no localization at all gets the definition's default language.
    const de = await progress("lingo", spend.id, "de");
    expect(de.display).toMatchObject({ language: "en", title: "Daily Spender", statusLabel: "In Progress", message: "Shop for $20.50 or more to complete the day 4 streak!" });
  });

  it("gamopanda/display/all_six_messages_rendered_on_the_record_response_and_on_reads", async () => {
    for (let i = 0; i < 3; i++) await log("six", spend.id, `${dayAfter("2025-09-20", i)}T12:00:00Z`, 50);
    const res = await log("six", spend.id, "2025-09-23T12:00:00Z", 29.5);
    // Day 4 with $29.50 spent and the milestone at day 5: the selected message is the day's, and the milestone
    // message ("... for 2 days ...") is there beside it, filled in with the same values.
    const expected = [
      { kind: DisplayMessageKind.NON_MILESTONE_NEXT_TO_BE_ACHIEVED, text: "Shop for $20.50 or more to complete the day 4 streak!" },
      { kind: DisplayMessageKind.NON_MILESTONE_ACHIEVED, text: "You have completed day 3 streak! Come back next day to shop more to maintain your streak and reach the next milestone!" },
      { kind: DisplayMessageKind.COMPLETED_STREAK, text: "Congratulations! You have completed this streak! Come back next day to shop more and start your next streak!" },
      { kind: DisplayMessageKind.BROKEN_STREAK, text: "Your streak has been broken. Don't worry, you can start a new streak today! Shop more and reach your next milestone!" },
      { kind: DisplayMessageKind.MILESTONE_NEXT_TO_BE_ACHIEVED, text: "Shop for $20.50 or more for 2 days to complete the next milestone!" },
      { kind: DisplayMessageKind.MILESTONE_ACHIEVED, text: "You have completed day 3 streak! Come back next day to shop more to maintain your streak and reach the next milestone!" },
    ];
    const recorded = res.results[0]!.streak!.display!;
    expect(recorded.messageKind).toBe(DisplayMessageKind.NON_MILESTONE_NEXT_TO_BE_ACHIEVED);
    expect(recorded.messages.map((m) => ({ kind: m.kind, text: m.text }))).toEqual(expected);
    expect(recorded.messages.find((m) => m.kind === recorded.messageKind)?.text).toBe(recorded.message);

    const read = await progress("six", spend.id);
    expect(read.display!.messages.map((m) => ({ kind: m.kind, text: m.text }))).toEqual(expected);
    const listed = await api.client(MemberStreakService).listMemberStreaks({ memberExternalId: "six" });
    expect(listed.streaks.find((s) => s.definitionId === spend.id)!.display!.messages.map((m) => m.text)).toContain(
      "Shop for $20.50 or more for 2 days to complete the next milestone!",
    );
    // In the requested language too: Spanish has its own day message; the others fall back to English.
    const es = await progress("six", spend.id, "es");
    expect(es.display!.messages.find((m) => m.kind === DisplayMessageKind.NON_MILESTONE_NEXT_TO_BE_ACHIEVED)?.text).toBe(
      "¡Compra $20.50 o más para completar el día 4 de tu racha!",
    );
  });
});

describe("seed 002 Gamopanda streaks: statuses and permissions", () => {
  it("gamopanda/status/draft_accepts_no_activity_paused_reports_not_applied_live_again_after_resume", async () => {
    const defs = api.client(DefinitionService);
    const { definition: draft } = await defs.createDefinition({
      definition: { name: "Draft streak", eventTypes: ["purchase.made"], window: calendar(CalendarPeriod.DAILY), condition: { type: ConditionType.COUNT, min: 1 } },
    });
    clock.set(at("2025-10-01T10:00:00Z"));
    await expectFailure(log("status", draft!.id, "2025-10-01T10:00:00Z"), Code.FailedPrecondition, "DEFINITION_NOT_LIVE");
    // An event type feeding only a draft applies to nothing.
    const fanned = await recordAt(api.client(ActivityService), clock, "2025-10-01T10:00:00Z", {
      memberRef: { case: "memberExternalId", value: "status" },
      target: { case: "eventType", value: "purchase.made" },
      uniqueIdentifier: "fan-1",
    });
    expect(fanned.results).toEqual([]);

    await defs.publishDefinition({ definitionId: draft!.id });
    expect((await log("status", draft!.id, "2025-10-01T11:00:00Z")).results[0]).toMatchObject({ applied: true, currentStreak: 1 });
    const paused = (await defs.pauseDefinition({ definitionId: draft!.id })).definition!;
    expect(paused.state).toBe(DefinitionState.PAUSED);
    const whilePaused = await log("status", draft!.id, "2025-10-02T11:00:00Z");
    expect(whilePaused.results[0]).toMatchObject({ applied: false, notAppliedReason: NotAppliedReason.DEFINITION_PAUSED, currentStreak: 1 });
    const viaEvent = await recordAt(api.client(ActivityService), clock, "2025-10-02T12:00:00Z", {
      memberRef: { case: "memberExternalId", value: "status" },
      target: { case: "eventType", value: "purchase.made" },
      uniqueIdentifier: "fan-2",
    });
    expect(viaEvent.results.map((r) => [r.definitionId, r.applied, r.notAppliedReason])).toEqual([[draft!.id, false, NotAppliedReason.DEFINITION_PAUSED]]);
    // Windows that close while paused are neutral: on the 3rd, after resuming, the streak is still 1 and continues.
    clock.set(at("2025-10-03T09:00:00Z"));
    expect((await defs.resumeDefinition({ definitionId: draft!.id })).definition!.state).toBe(DefinitionState.LIVE);
    const resumed = await log("status", draft!.id, "2025-10-03T09:00:00Z");
    expect(resumed.results[0]).toMatchObject({ applied: true, currentStreak: 2 });
  });

  it("gamopanda/permissions/admin_crud_end_user_and_guest_get_and_list_live_only", async () => {
    const admin = api.client(DefinitionService);
    // Admin: CREATE · GET · LIST · UPDATE · DELETE (archive).
    const { definition: created } = await admin.createDefinition({
      definition: { name: "Permission check", description: "v1", window: calendar(CalendarPeriod.DAILY), condition: { type: ConditionType.COUNT, min: 1 } },
    });
    expect((await admin.getDefinition({ definitionId: created!.id })).definition!.name).toBe("Permission check");
    const updated = await admin.updateDefinition({ definitionId: created!.id, definition: { description: "v2" }, updateMask: { paths: ["description"] } });
    expect(updated.definition!.description).toBe("v2");
    const archived = await admin.archiveDefinition({ definitionId: created!.id });
    expect(archived.definition!.state).toBe(DefinitionState.ARCHIVED);
    expect((await admin.listDefinitions({})).definitions.map((d) => d.id)).toContain(created!.id);
    const { definition: draft } = await admin.createDefinition({
      definition: { name: "Hidden draft", window: calendar(CalendarPeriod.DAILY), condition: { type: ConditionType.COUNT, min: 1 } },
    });

    const allLive = (await admin.listDefinitions({ states: [DefinitionState.LIVE] })).definitions.map((d) => d.id).sort();
    expect(allLive.length).toBeGreaterThan(0);

    const token = await endUserToken(JWT_SECRET, api.admin.tenantId, "end-user-1", clock.now());
    const endUser = api.client(DefinitionService, { authorization: `Bearer ${token}` });
    const guest = api.client(DefinitionService, { "x-kindling-tenant": api.admin.tenantId });
    for (const [who, client] of [["end user", endUser], ["guest", guest]] as const) {
      const listed = (await client.listDefinitions({})).definitions;
      expect(listed.map((d) => d.id).sort(), who).toEqual(allLive);
      expect(listed.every((d) => d.state === DefinitionState.LIVE), who).toBe(true);
      // Asking for drafts or archived ones does not reveal them ("LIVE only, whatever the filter").
      const filtered = (await client.listDefinitions({ states: [DefinitionState.DRAFT, DefinitionState.ARCHIVED] })).definitions;
      expect(filtered.filter((d) => d.state !== DefinitionState.LIVE), who).toEqual([]);
      expect((await client.getDefinition({ definitionId: allLive[0]! })).definition!.state, who).toBe(DefinitionState.LIVE);
      await expectFailure(client.getDefinition({ definitionId: draft!.id }), Code.NotFound, "DEFINITION_NOT_FOUND");
      await expectFailure(client.getDefinition({ definitionId: created!.id }), Code.NotFound, "DEFINITION_NOT_FOUND");
      // Thunks, so each call starts only when awaited: a rejection never waits unobserved for its turn.
      for (const call of [
        () => client.createDefinition({ definition: { name: "nope", window: calendar(CalendarPeriod.DAILY), condition: { type: ConditionType.COUNT, min: 1 } } }),
        () => client.updateDefinition({ definitionId: draft!.id, definition: { name: "nope" }, updateMask: { paths: ["name"] } }),
        () => client.archiveDefinition({ definitionId: draft!.id }),
        () => client.publishDefinition({ definitionId: draft!.id }),
      ]) {
        const error = await call().catch((e: unknown) => e);
        expect(error, who).toBeInstanceOf(ConnectError);
        expect((error as ConnectError).code, who).toBe(Code.PermissionDenied);
      }
    }
    expect((await admin.getDefinition({ definitionId: draft!.id })).definition!.name).toBe("Hidden draft");
  });
});
