// The path proto -> handler -> engine -> PostgreSQL, end to end over Connect JSON: define, publish, record
// activity, read progress; plus idempotency and the lost-update guarantee under concurrency.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { MemberStreakState } from "../../src/gen/kindling/v1/member_streak_pb.js";
import { startTestApi, type TestApi } from "../support/api.ts";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ label: "activity_flow" });
});
afterAll(async () => {
  await api?.close();
});

async function liveDefinition(name: string, eventType: string, extra: Record<string, unknown> = {}) {
  const defs = api.client(DefinitionService);
  const { definition } = await defs.createDefinition({
    definition: {
      name,
      eventTypes: [eventType],
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 1 },
      milestones: [{ threshold: 2, reward: { kind: RewardKind.POINTS, points: 100, fulfilmentMode: FulfilmentMode.CLAIM } }],
      ...extra,
    },
  });
  await defs.publishDefinition({ definitionId: definition!.id });
  return definition!.id;
}

const DAY = 86_400_000;
const today = () => Math.floor(Date.now() / DAY) * DAY;

describe("recording activity and reading progress", () => {
  it("counts/consecutive_days_crosses_milestone_and_creates_claimable_reward", async () => {
    const id = await liveDefinition("Daily Login", "user.login", { graceDuration: { seconds: BigInt(DAY / 1000) } });
    const activities = api.client(ActivityService);
    const first = await activities.recordActivity({
      activity: { memberRef: { case: "memberExternalId", value: "alice" }, target: { case: "eventType", value: "user.login" }, occurTime: timestampFromMs(today() - DAY + 3_600_000), uniqueIdentifier: "a-1" },
    });
    expect(first.results[0]).toMatchObject({ applied: true, currentStreak: 1, isNewActivity: true });
    const second = await activities.recordActivity({
      activity: { memberRef: { case: "memberExternalId", value: "alice" }, target: { case: "definitionId", value: id }, occurTime: timestampFromMs(today() + 60_000), uniqueIdentifier: "a-2" },
    });
    const result = second.results[0]!;
    expect(result).toMatchObject({ applied: true, currentStreak: 2 });
    expect(result.achievedMilestones.map((m) => m.threshold)).toEqual([2]);
    expect(result.rewards).toHaveLength(1);
    expect(result.unclaimedMilestones.map((m) => m.threshold)).toEqual([2]);

    const { streak } = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: "alice", definitionId: id });
    expect(streak).toMatchObject({ currentCount: 2, longestCount: 2, state: MemberStreakState.IN_PROGRESS, currentWindowSatisfied: true, earnedMilestones: [2] });
    expect(streak!.unclaimedMilestones).toHaveLength(1);
  });

  it("duplicate/same_unique_identifier_changes_nothing_and_says_so", async () => {
    const id = await liveDefinition("Dup check", "dup.event");
    const activities = api.client(ActivityService);
    const input = { memberRef: { case: "memberExternalId" as const, value: "bob" }, target: { case: "definitionId" as const, value: id }, occurTime: timestampFromMs(Date.now()), uniqueIdentifier: "order-1" };
    const once = await activities.recordActivity({ activity: input });
    const twice = await activities.recordActivity({ activity: input });
    expect(once.duplicate).toBe(false);
    expect(twice.duplicate).toBe(true);
    expect(twice.activity?.id).toBe(once.activity?.id);
    expect(twice.results[0]?.streak?.currentWindowProgress?.count).toBe(1);
  });

  it("concurrency/fifty_parallel_activities_for_one_member_are_all_counted", async () => {
    const id = await liveDefinition("Fifty", "fifty.event", { condition: { type: ConditionType.COUNT, min: 100 } });
    const activities = api.client(ActivityService, api.admin, "grpc");
    const now = Date.now();
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        activities.recordActivity({
          activity: { memberRef: { case: "memberExternalId", value: "carol" }, target: { case: "definitionId", value: id }, occurTime: timestampFromMs(now), uniqueIdentifier: `c-${i}` },
        }),
      ),
    );
    const { streak } = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: "carol", definitionId: id });
    expect(streak?.currentWindowProgress?.count).toBe(50);
  });

  it("not_found/member_without_record_for_definition", async () => {
    const id = await liveDefinition("Nobody", "nobody.event");
    const error = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: "nobody", definitionId: id }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.NotFound);
  });

  it("rejects/invalid_request_with_field_violations_and_records_nothing", async () => {
    const activities = api.client(ActivityService);
    const error = await activities
      .recordActivity({ activity: { memberRef: { case: "memberExternalId", value: "dave" }, target: { case: "eventType", value: "x" }, uniqueIdentifier: "" } })
      .catch((e: unknown) => e);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    const { activities: listed } = await activities.listActivities({ memberExternalId: "dave" });
    expect(listed).toHaveLength(0);
  });
});
