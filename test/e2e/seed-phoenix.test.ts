// Seed 001 — Phoenix Gamification, "Querying Streak Results" (Query Gateway), replayed through Kindling's API.
//
// Phoenix                                    Kindling
// GET /v1/streaks/definitions (JWT)           DefinitionService.ListDefinitions as an end user (LIVE only)
// GET /v1/streaks/user/{user_id}              MemberStreakService.ListMemberStreaks (total -> total_size)
// GET /v1/streaks/user/{user_id}/{def_id}     MemberStreakService.GetMemberStreak (404 -> NOT_FOUND)
// config.event_types / window / condition     StreakDefinition.event_types / window.calendar / condition
// milestones[].threshold, repeatable          Milestone.threshold, repeatable (reward_item_id null -> no reward)
// current_count, current_window_key, ...      MemberStreakProgress.current_count, current_window_key, ...
// current_window_progress {count,sum,distinct} WindowProgress {count, sum, distinct_keys}
// streak.incremented / milestone_reached /    EventService.ListEvents: Event.type + typed payload (new_count,
//   broken (user_id, definition_id, ...)          threshold/reward_id, final_count), member_external_id, definition_id
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { EventService } from "../../src/gen/kindling/v1/event_service_pb.js";
import { EventType } from "../../src/gen/kindling/v1/event_pb.js";
import { JwtAlgorithm } from "../../src/gen/kindling/v1/tenant_pb.js";
import { CalendarPeriod, ConditionType, DefinitionState, type StreakDefinition } from "../../src/gen/kindling/v1/definition_pb.js";
import { MemberStreakState } from "../../src/gen/kindling/v1/member_streak_pb.js";
import { createTestClock, startTestApi, type TestApi, type TestClock } from "../support/api.ts";
import { expectFailure } from "../support/fixtures.ts";
import { at, dayAfter, endUserToken, iso, recordAt } from "./seed-support.ts";

const JWT_SECRET = "phoenix-query-gateway-hs256-secret-0123456789";
const USER = "user-12345";

let api: TestApi;
let clock: TestClock;
let dailyLogin: StreakDefinition;

const dailyUtcWindow = { kind: { case: "calendar" as const, value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } };

/** The client an end user's app uses: `Authorization: Bearer <JWT>`, tenant and user resolved from the token. */
async function asEndUser<S extends Parameters<TestApi["client"]>[0]>(service: S, user: string) {
  const token = await endUserToken(JWT_SECRET, api.admin.tenantId, user, clock.now());
  return api.client(service, { authorization: `Bearer ${token}` });
}

beforeAll(async () => {
  clock = createTestClock(at("2024-12-31T12:00:00Z"));
  api = await startTestApi({ label: "seed_phoenix", now: clock.now });
  const config = await api.client(TenantService).setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: JWT_SECRET } });
  expect(config.config).toMatchObject({ algorithm: JwtAlgorithm.HS256, memberClaim: "sub" });
});
afterAll(async () => {
  await api?.close();
});

describe("seed 001 Phoenix: streak definitions", () => {
  it("phoenix/definitions/daily_login_streak_created_exactly_as_the_doc_and_listed_to_end_users_live_only", async () => {
    const defs = api.client(DefinitionService);
    const created = await defs.createDefinition({
      definition: {
        name: "Daily Login Streak",
        description: "Track consecutive days users log in",
        eventTypes: ["user.login"],
        window: dailyUtcWindow,
        condition: { type: ConditionType.COUNT, min: 1 },
        milestones: [
          { threshold: 7, repeatable: false },
          { threshold: 30, repeatable: false },
        ],
      },
    });
    dailyLogin = (await defs.publishDefinition({ definitionId: created.definition!.id })).definition!;
    // Two that end users must not see: a draft and a paused one.
    await defs.createDefinition({ definition: { name: "Draft Streak", eventTypes: ["user.login"], window: dailyUtcWindow, condition: { type: ConditionType.COUNT, min: 1 } } });
    const paused = await defs.createDefinition({ definition: { name: "Paused Streak", eventTypes: ["user.other"], window: dailyUtcWindow, condition: { type: ConditionType.COUNT, min: 1 } } });
    await defs.publishDefinition({ definitionId: paused.definition!.id });
    await defs.pauseDefinition({ definitionId: paused.definition!.id });

    const { definitions } = await (await asEndUser(DefinitionService, USER)).listDefinitions({});
    expect(definitions.map((d) => d.name)).toEqual(["Daily Login Streak"]);
    const d = definitions[0]!;
    expect(d).toMatchObject({ id: dailyLogin.id, name: "Daily Login Streak", description: "Track consecutive days users log in", state: DefinitionState.LIVE, eventTypes: ["user.login"] });
    expect(d.window?.kind).toMatchObject({ case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } });
    expect(d.condition).toMatchObject({ type: ConditionType.COUNT, min: 1 });
    expect(d.milestones.map((m) => ({ threshold: m.threshold, repeatable: m.repeatable, reward: m.reward }))).toEqual([
      { threshold: 7, repeatable: false, reward: undefined },
      { threshold: 30, repeatable: false, reward: undefined },
    ]);
    // The admin sees all three.
    expect((await defs.listDefinitions({})).definitions).toHaveLength(3);
  });

  it("phoenix/auth/missing_or_invalid_jwt_is_unauthenticated", async () => {
    const forged = await endUserToken("some-other-secret-that-is-long-enough-000", api.admin.tenantId, USER, clock.now());
    const error = await api.client(DefinitionService, { authorization: `Bearer ${forged}` }).listDefinitions({}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unauthenticated);
    const none = await api.client(MemberStreakService, {}).listMemberStreaks({ memberExternalId: USER }).catch((e: unknown) => e);
    expect((none as ConnectError).code).toBe(Code.Unauthenticated);
  });
});

describe("seed 001 Phoenix: user streak progress", () => {
  it("phoenix/user/no_record_is_404_not_found", async () => {
    const streaks = await asEndUser(MemberStreakService, USER);
    await expectFailure(streaks.getMemberStreak({ memberExternalId: USER, definitionId: dailyLogin.id }), Code.NotFound, "MEMBER_STREAK_NOT_FOUND");
    const listed = await streaks.listMemberStreaks({ memberExternalId: USER });
    expect(listed).toMatchObject({ streaks: [], totalSize: 0 });
  });

  it("phoenix/user/15_daily_logins_give_the_documented_progress_on_2025_01_15", async () => {
    const activities = api.client(ActivityService);
    for (let i = 0; i < 15; i++) {
      const day = dayAfter("2025-01-01", i);
      const res = await recordAt(activities, clock, `${day}T08:30:00Z`, {
        memberRef: { case: "memberExternalId", value: USER },
        target: { case: "eventType", value: "user.login" },
        uniqueIdentifier: `login-${day}`,
      });
      // One login fans out to the one LIVE definition listening to user.login (the draft listens too, but is not live).
      expect(res.results.map((r) => r.definitionId)).toEqual([dailyLogin.id]);
      expect(res.results[0]).toMatchObject({ applied: true, currentStreak: i + 1 });
    }

    const expected = {
      definitionId: dailyLogin.id,
      definitionName: "Daily Login Streak",
      memberExternalId: USER,
      state: MemberStreakState.IN_PROGRESS,
      currentCount: 15,
      currentWindowKey: "2025-01-15",
      currentWindowProgress: { count: 1, sum: 0, distinctKeys: [] },
      currentWindowSatisfied: true,
      earnedMilestones: [7],
    };
    const streaks = await asEndUser(MemberStreakService, USER);
    const { streak } = await streaks.getMemberStreak({ memberExternalId: USER, definitionId: dailyLogin.id });
    expect(streak).toMatchObject(expected);
    expect(streak!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(iso(streak!.lastActivityTime)).toBe("2025-01-15T08:30:00.000Z");
    expect(streak!.nextMilestone?.threshold).toBe(30);
    // Read at 08:30Z the window (closing 2025-01-16T00:00Z) has 15.5 h left.
    expect(streak!.secondsUntilWindowClose).toBe(55_800n);
    expect(iso(streak!.windowCloseTime)).toBe("2025-01-16T00:00:00.000Z");
    // The doc's 57600 s is the same window read at 08:00Z (16 h before midnight).
    clock.set(at("2025-01-15T08:00:00Z"));
    expect((await streaks.getMemberStreak({ memberExternalId: USER, definitionId: dailyLogin.id })).streak!.secondsUntilWindowClose).toBe(57_600n);
    clock.set(at("2025-01-15T08:30:00Z"));
    // window, condition and milestones are embedded: no second call needed.
    expect(streak!.window?.kind).toMatchObject({ case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } });
    expect(streak!.condition).toMatchObject({ type: ConditionType.COUNT, min: 1 });
    expect(streak!.milestones.map((m) => [m.threshold, m.repeatable, m.reward])).toEqual([
      [7, false, undefined],
      [30, false, undefined],
    ]);

    // GET /v1/streaks/user/{user_id}: all streaks, with total.
    const all = await streaks.listMemberStreaks({ memberExternalId: USER });
    expect(all.totalSize).toBe(1);
    expect(all.streaks).toHaveLength(1);
    expect(all.streaks[0]).toMatchObject({ ...expected, id: streak!.id });

    // The doc's milestone visualisation: earned [7], next 30, nothing else locked.
    const thresholds = streak!.milestones.map((m) => m.threshold);
    expect(thresholds.filter((m) => m > streak!.currentCount && !streak!.earnedMilestones.includes(m) && m !== streak!.nextMilestone?.threshold)).toEqual([]);
  });

  it("phoenix/user/end_user_may_not_read_another_users_streaks", async () => {
    const other = await asEndUser(MemberStreakService, "user-67890");
    await expectFailure(other.getMemberStreak({ memberExternalId: USER, definitionId: dailyLogin.id }), Code.PermissionDenied, "MEMBER_MISMATCH");
    await expectFailure(other.getMemberStreak({ memberExternalId: "user-67890", definitionId: dailyLogin.id }), Code.NotFound, "MEMBER_STREAK_NOT_FOUND");
  });

  it("phoenix/events/incremented_milestone_reached_and_broken_payloads", async () => {
    // Phoenix "Real-Time Updates": the user's own streak events, read with the user's JWT.
    const events = async () => (await (await asEndUser(EventService, USER)).listEvents({ definitionId: dailyLogin.id, pageSize: 1000 })).events;
    const before = await events();
    expect(before.every((e) => e.memberExternalId === USER && e.definitionId === dailyLogin.id)).toBe(true);
    const incremented = before.filter((e) => e.type === EventType.STREAK_INCREMENTED);
    expect(incremented.map((e) => (e.payload.case === "streakIncremented" ? e.payload.value.newCount : -1))).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(incremented[14]!.payload).toMatchObject({ case: "streakIncremented", value: { newCount: 15, windowKey: "2025-01-15" } });
    const milestones = before.filter((e) => e.type === EventType.STREAK_MILESTONE_REACHED);
    expect(milestones).toHaveLength(1);
    // reward_item_id null in the definition -> no reward, empty reward_id.
    expect(milestones[0]!.payload).toMatchObject({ case: "streakMilestoneReached", value: { threshold: 7, count: 7, rewardId: "", rewardItemId: "" } });
    expect(iso(milestones[0]!.occurTime)).toBe("2025-01-07T08:30:00.000Z");
    expect(before.some((e) => e.type === EventType.STREAK_BROKEN)).toBe(false);
    // Another user's JWT sees none of them.
    expect((await (await asEndUser(EventService, "user-67890")).listEvents({ definitionId: dailyLogin.id })).events).toEqual([]);

    // 2025-01-16 passes without a login. A read on the 17th reports the break from PostgreSQL alone (no sweeper runs here).
    clock.set(at("2025-01-17T09:00:00Z"));
    const { streak } = await (await asEndUser(MemberStreakService, USER)).getMemberStreak({ memberExternalId: USER, definitionId: dailyLogin.id });
    expect(streak).toMatchObject({ state: MemberStreakState.BROKEN, currentCount: 0, longestCount: 15, previousCount: 15, currentWindowSatisfied: false });
    expect(streak!.nextMilestone?.threshold).toBe(30);

    // The next login persists the break (final_count 15) and starts again at 1.
    const res = await recordAt(api.client(ActivityService), clock, "2025-01-17T09:00:00Z", {
      memberRef: { case: "memberExternalId", value: USER },
      target: { case: "eventType", value: "user.login" },
      uniqueIdentifier: "login-2025-01-17",
    });
    expect(res.results[0]).toMatchObject({ applied: true, currentStreak: 1, wasReset: true, previousStreak: 15 });
    const after = await events();
    const broken = after.filter((e) => e.type === EventType.STREAK_BROKEN);
    expect(broken).toHaveLength(1);
    expect(broken[0]!.payload).toMatchObject({ case: "streakBroken", value: { finalCount: 15, missedWindowKey: "2025-01-16" } });
    // The same stream for the tenant's backend, filtered by type.
    const adminBroken = await api.client(EventService).listEvents({ types: [EventType.STREAK_BROKEN], memberExternalId: USER });
    expect(adminBroken.events.map((e) => e.id)).toEqual([broken[0]!.id]);
    // The restart's streak.incremented says so, and names the activity (StreakIncrementedPayload.was_reset, activity_id).
    expect(after.at(-1)!.payload).toMatchObject({ case: "streakIncremented", value: { newCount: 1, windowKey: "2025-01-17", wasReset: true, activityId: res.activity!.id } });
  });
});

describe("seed 001 Phoenix: understanding window progress", () => {
  async function live(name: string, eventType: string, type: ConditionType, min: number): Promise<string> {
    const defs = api.client(DefinitionService);
    const { definition } = await defs.createDefinition({ definition: { name, eventTypes: [eventType], window: dailyUtcWindow, condition: { type, min } } });
    return (await defs.publishDefinition({ definitionId: definition!.id })).definition!.id;
  }

  it("phoenix/progress/count_2_of_3_needs_one_more", async () => {
    const id = await live("Three plays a day", "game.played", ConditionType.COUNT, 3);
    const activities = api.client(ActivityService);
    for (const [i, t] of ["2025-02-01T10:00:00Z", "2025-02-01T11:00:00Z"].entries()) {
      await recordAt(activities, clock, t, { memberRef: { case: "memberExternalId", value: "counter" }, target: { case: "eventType", value: "game.played" }, uniqueIdentifier: `play-${i}` });
    }
    const { streak } = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: "counter", definitionId: id });
    expect(streak).toMatchObject({ currentWindowProgress: { count: 2, sum: 0, distinctKeys: [] }, currentWindowSatisfied: false, nextRemainingValue: 1, currentCount: 0 });
    expect(streak!.condition).toMatchObject({ type: ConditionType.COUNT, min: 3 });
  });

  it("phoenix/progress/sum_350_5_from_5_events_of_500_needs_149_5", async () => {
    const id = await live("Daily points", "points.earned", ConditionType.SUM, 500);
    const activities = api.client(ActivityService);
    const values = [100, 50.5, 75, 25, 100];
    for (const [i, value] of values.entries()) {
      await recordAt(activities, clock, `2025-02-02T1${i}:00:00Z`, {
        memberRef: { case: "memberExternalId", value: "summer" },
        target: { case: "eventType", value: "points.earned" },
        value,
        uniqueIdentifier: `points-${i}`,
      });
    }
    const { streak } = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: "summer", definitionId: id });
    expect(streak).toMatchObject({ currentWindowProgress: { count: 5, sum: 350.5, distinctKeys: [] }, currentWindowSatisfied: false, nextRemainingValue: 149.5 });
    expect(streak!.condition).toMatchObject({ type: ConditionType.SUM, min: 500 });
  });

  it("phoenix/progress/distinct_arcade_ranked_casual_of_5_needs_two_more", async () => {
    const id = await live("Five game modes a day", "match.finished", ConditionType.DISTINCT, 5);
    const activities = api.client(ActivityService);
    for (const [i, mode] of ["arcade", "ranked", "casual"].entries()) {
      await recordAt(activities, clock, `2025-02-03T1${i}:00:00Z`, {
        memberRef: { case: "memberExternalId", value: "gamer" },
        target: { case: "eventType", value: "match.finished" },
        distinctKey: mode,
        uniqueIdentifier: `match-${i}`,
      });
    }
    const { streak } = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: "gamer", definitionId: id });
    expect(streak).toMatchObject({ currentWindowProgress: { count: 3, sum: 0, distinctKeys: ["arcade", "ranked", "casual"] }, currentWindowSatisfied: false, nextRemainingValue: 2 });
    expect(streak!.condition).toMatchObject({ type: ConditionType.DISTINCT, min: 5 });
  });
});
