// MemberService end to end: explicit upserts and reads (with the points balance), freeze grants capped by the
// definition's policy, and repairs inside and outside the repair window — without granting a milestone twice.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberService } from "../../src/gen/kindling/v1/member_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { MemberStreakState } from "../../src/gen/kindling/v1/member_streak_pb.js";
import { FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { startTestApi, type TestApi } from "../support/api.ts";
import { createLiveDefinition, expectFailure, sqlPool } from "../support/fixtures.ts";

let api: TestApi;
let db: pg.Pool;

beforeAll(async () => {
  api = await startTestApi({ label: "members" });
  db = sqlPool(api.databaseUrl);
});
afterAll(async () => {
  await db?.end();
  await api?.close();
});

describe("UpsertMember and GetMember", () => {
  it("upsert/creates_then_updates_keeping_unset_fields_and_clearing_empty_ones", async () => {
    const members = api.client(MemberService);
    const created = await members.upsertMember({ member: { externalId: "m-1", firstName: "Ada", email: "ada@example.com", timeZone: "Europe/London" } });
    expect(created.created).toBe(true);
    expect(created.member).toMatchObject({ externalId: "m-1", firstName: "Ada", email: "ada@example.com", timeZone: "Europe/London", pointsBalance: 0 });

    const updated = await members.upsertMember({ member: { externalId: "m-1", lastName: "Lovelace", email: "" } });
    expect(updated.created).toBe(false);
    expect(updated.member).toMatchObject({ id: created.member!.id, firstName: "Ada", lastName: "Lovelace", email: "", timeZone: "Europe/London" });

    const { member } = await members.getMember({ memberExternalId: "m-1" });
    expect(member).toMatchObject({ id: created.member!.id, firstName: "Ada", lastName: "Lovelace", pointsBalance: 0 });
  });

  it("upsert/unknown_time_zone_is_invalid_and_changes_nothing", async () => {
    const members = api.client(MemberService);
    await expectFailure(members.upsertMember({ member: { externalId: "m-tz", timeZone: "Mars/Olympus" } }), Code.InvalidArgument, "INVALID_TIMEZONE");
    await expectFailure(members.getMember({ memberExternalId: "m-tz" }), Code.NotFound, "MEMBER_NOT_FOUND");
  });

  it("get/points_balance_reflects_the_ledger", async () => {
    await api.client(MemberService).upsertMember({ member: { externalId: "m-points" } });
    await db.query("update member set points_balance = 250 where external_id = 'm-points'");
    expect((await api.client(MemberService).getMember({ memberExternalId: "m-points" })).member!.pointsBalance).toBe(250);
  });
});

describe("GrantFreezes", () => {
  it("freezes/grants_up_to_max_held_and_reports_what_was_added", async () => {
    const def = await createLiveDefinition(api.client(DefinitionService), { name: "Freezable", freezePolicy: { maxHeld: 3 } });
    const members = api.client(MemberService);
    await members.upsertMember({ member: { externalId: "f-1" } });
    const first = await members.grantFreezes({ memberExternalId: "f-1", definitionId: def.id, count: 2 });
    expect(first.grantedCount).toBe(2);
    expect(first.streak).toMatchObject({ freezesHeld: 2, state: MemberStreakState.NOT_STARTED, definitionId: def.id });
    const second = await members.grantFreezes({ memberExternalId: "f-1", definitionId: def.id, count: 5 });
    expect(second.grantedCount).toBe(1);
    expect(second.streak!.freezesHeld).toBe(3);
    const third = await members.grantFreezes({ memberExternalId: "f-1", definitionId: def.id, count: 1 });
    expect(third.grantedCount).toBe(0);

    const { streak } = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: "f-1", definitionId: def.id });
    expect(streak!.freezesHeld).toBe(3);
    const { rows } = await db.query("select s.status, (st.state->>'freezesHeld')::int as held from member_streak s join member_streak_state st on st.member_streak_id = s.id where s.definition_id = $1", [def.id]);
    expect(rows).toEqual([{ status: "NOT_STARTED", held: 3 }]);
  });

  it("freezes/refused_without_a_policy_or_member", async () => {
    const def = await createLiveDefinition(api.client(DefinitionService), { name: "No freezes" });
    const members = api.client(MemberService);
    await members.upsertMember({ member: { externalId: "f-2" } });
    await expectFailure(members.grantFreezes({ memberExternalId: "f-2", definitionId: def.id, count: 1 }), Code.FailedPrecondition, "FREEZES_DISABLED");
    const freezable = await createLiveDefinition(api.client(DefinitionService), { name: "Freezable 2", freezePolicy: { maxHeld: 1 } });
    await expectFailure(members.grantFreezes({ memberExternalId: "ghost", definitionId: freezable.id, count: 1 }), Code.NotFound, "MEMBER_NOT_FOUND");
    await expectFailure(
      members.grantFreezes({ memberExternalId: "f-2", definitionId: "00000000-0000-4000-8000-000000000000", count: 1 }),
      Code.NotFound,
      "DEFINITION_NOT_FOUND",
    );
  });
});

describe("RepairStreak", () => {
  // A rolling window with the shortest allowed gap (60 s): check-ins dated 58 s and 56.5 s ago make a 2-streak that
  // breaks about 3.5 s from now, with no fake clock — the test waits for the break the way a member would.
  async function brokenTwoStreak(member: string, repairSeconds: number | undefined) {
    const def = await createLiveDefinition(api.client(DefinitionService), {
      name: `Rolling ${member}`,
      window: { kind: { case: "rolling", value: { minSpacingDuration: { seconds: 1n }, maxGapDuration: { seconds: 60n } } } },
      milestones: [{ threshold: 2, reward: { kind: RewardKind.POINTS, points: 10, fulfilmentMode: FulfilmentMode.CLAIM } }],
      ...(repairSeconds === undefined ? {} : { repairDuration: { seconds: BigInt(repairSeconds) } }),
    });
    const activities = api.client(ActivityService);
    const at = Date.now();
    for (const [i, ago] of [58_000, 56_500].entries()) {
      await activities.recordActivity({
        activity: { memberRef: { case: "memberExternalId", value: member }, target: { case: "definitionId", value: def.id }, occurTime: timestampFromMs(at - ago), uniqueIdentifier: `${member}-${i}` },
      });
    }
    const streaks = api.client(MemberStreakService);
    expect((await streaks.getMemberStreak({ memberExternalId: member, definitionId: def.id })).streak).toMatchObject({ state: MemberStreakState.IN_PROGRESS, currentCount: 2 });
    await vi.waitFor(
      async () => {
        const { streak } = await streaks.getMemberStreak({ memberExternalId: member, definitionId: def.id });
        expect(streak).toMatchObject({ state: MemberStreakState.BROKEN, currentCount: 0, longestCount: 2 });
      },
      { timeout: 15_000, interval: 250 },
    );
    return def.id;
  }

  it("repair/within_window_restores_the_count_once_and_grants_no_milestone_twice", async () => {
    const defId = await brokenTwoStreak("r-ok", 3600);
    const members = api.client(MemberService);
    const repaired = await members.repairStreak({ memberExternalId: "r-ok", definitionId: defId });
    expect(repaired.restoredCount).toBe(2);
    expect(repaired.streak).toMatchObject({ state: MemberStreakState.IN_PROGRESS, currentCount: 2 });

    const { streak } = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: "r-ok", definitionId: defId });
    expect(streak).toMatchObject({ state: MemberStreakState.IN_PROGRESS, currentCount: 2 });
    const rewards = await db.query("select count(*)::int as n from reward where definition_id = $1", [defId]);
    expect(rewards.rows[0].n).toBe(1);
    const events = await db.query("select type from streak_event where definition_id = $1 and type in ('streak.repaired', 'streak.milestone_reached') order by id", [defId]);
    expect(events.rows.map((r: { type: string }) => r.type)).toEqual(["streak.milestone_reached", "streak.repaired"]);

    await expectFailure(members.repairStreak({ memberExternalId: "r-ok", definitionId: defId }), Code.FailedPrecondition, "ALREADY_REPAIRED");
  });

  it("repair/after_the_window_is_refused_and_changes_nothing", async () => {
    const defId = await brokenTwoStreak("r-late", 1);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await expectFailure(api.client(MemberService).repairStreak({ memberExternalId: "r-late", definitionId: defId }), Code.FailedPrecondition, "REPAIR_WINDOW_EXPIRED");
    const { streak } = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: "r-late", definitionId: defId });
    expect(streak).toMatchObject({ state: MemberStreakState.BROKEN, currentCount: 0 });
  });

  it("repair/without_repair_duration_is_not_allowed", async () => {
    const defId = await brokenTwoStreak("r-off", undefined);
    await expectFailure(api.client(MemberService).repairStreak({ memberExternalId: "r-off", definitionId: defId }), Code.FailedPrecondition, "REPAIR_NOT_ALLOWED");
  });

  it("repair/live_streak_is_not_broken_and_unknown_streak_is_not_found", async () => {
    const def = await createLiveDefinition(api.client(DefinitionService), { name: "Alive", repairDuration: { seconds: 3600n } });
    await api.client(ActivityService).recordActivity({
      activity: { memberRef: { case: "memberExternalId", value: "r-alive" }, target: { case: "definitionId", value: def.id }, uniqueIdentifier: "alive-1" },
    });
    const members = api.client(MemberService);
    await expectFailure(members.repairStreak({ memberExternalId: "r-alive", definitionId: def.id }), Code.FailedPrecondition, "STREAK_NOT_BROKEN");
    await members.upsertMember({ member: { externalId: "r-none" } });
    await expectFailure(members.repairStreak({ memberExternalId: "r-none", definitionId: def.id }), Code.NotFound, "MEMBER_STREAK_NOT_FOUND");
  });
});
