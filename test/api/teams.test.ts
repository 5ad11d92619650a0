// Team streaks end to end over Connect JSON (issue 14, part 3): a team definition, TeamService, activities of its
// members (RecordActivity and the batched RecordActivities), what each member's progress view says about the
// team ("2 of 3 done today; Sam hasn't checked in"), membership changes taking effect at the next window, and
// the team's milestone rewarding every member once. The server runs on a test clock through daily UTC windows.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService, ImportMilestonePolicy } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { TeamService } from "../../src/gen/kindling/v1/team_service_pb.js";
import { MemberStreakState } from "../../src/gen/kindling/v1/member_streak_pb.js";
import { ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createTestClock, startTestApi, type TestApi, type TestClock } from "../support/api.ts";
import { DAY, createLiveDefinition, expectFailure, sqlPool } from "../support/fixtures.ts";

const HOUR = 3_600_000;
const DAY0 = Date.parse("2025-03-03T00:00:00Z");

let api: TestApi;
let clock: TestClock;
let db: pg.Pool;
let teamDef: string;
let soloDef: string;
let teamId: string;

const teams = () => api.client(TeamService);
const at = (day: number, hours: number) => DAY0 + day * DAY + hours * HOUR;

function activity(member: string, day: number, hours: number, key = `${member}-${day}-${hours}`) {
  return {
    memberRef: { case: "memberExternalId" as const, value: member },
    target: { case: "definitionId" as const, value: teamDef },
    occurTime: timestampFromMs(at(day, hours)),
    uniqueIdentifier: key,
  };
}

/** Moves the server clock to the activity's time and records it one at a time. */
async function checkIn(member: string, day: number, hours: number, key?: string) {
  clock.set(at(day, hours));
  return api.client(ActivityService).recordActivity({ activity: activity(member, day, hours, key) });
}

async function teamOf(member: string) {
  const { streak } = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: member, definitionId: teamDef });
  return streak!.team!;
}

async function rewardsOf(definitionId: string) {
  const { rows } = await db.query<{ external_id: string; threshold: number }>(
    "select m.external_id, r.threshold from reward r join member m on m.id = r.member_id where r.definition_id = $1 order by m.external_id",
    [definitionId],
  );
  return rows.map((r) => [r.external_id, r.threshold]);
}

beforeAll(async () => {
  clock = createTestClock(at(0, 8));
  api = await startTestApi({ label: "teams", now: clock.now });
  db = sqlPool(api.databaseUrl);
  const defs = api.client(DefinitionService);
  teamDef = (await createLiveDefinition(defs, {
    name: "Team daily",
    team: {},
    milestones: [{ threshold: 2, reward: { kind: RewardKind.POINTS, points: 10, fulfilmentMode: FulfilmentMode.CLAIM } }],
  })).id;
  soloDef = (await createLiveDefinition(defs, { name: "Solo daily" })).id;
  teamId = (await teams().createTeam({ definitionId: teamDef, name: "Early birds", memberExternalIds: ["ana", "ben", "sam"] })).team!.id;
}, 60_000);
afterAll(async () => {
  await db?.end();
  await api?.close();
});

describe("team streaks over the API (day 0 to day 3)", () => {
  it("teams/member_view_says_two_of_three_done_and_who_has_not", async () => {
    await checkIn("ana", 0, 9);
    await checkIn("ben", 0, 10);
    clock.set(at(0, 12));
    const view = await teamOf("ana");
    expect(view).toMatchObject({
      teamId,
      teamName: "Early birds",
      windowKey: "2025-03-03",
      memberCount: 3,
      requiredCount: 3,
      doneMemberExternalIds: ["ana", "ben"],
      pendingMemberExternalIds: ["sam"],
      windowSatisfied: false,
      currentCount: 0,
    });
    // An individual definition has no team in its view.
    await api.client(ActivityService).recordActivity({ activity: { ...activity("ana", 0, 12), target: { case: "definitionId", value: soloDef } } });
    const solo = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: "ana", definitionId: soloDef });
    expect(solo.streak!.team).toBeUndefined();
  });

  it("teams/window_counts_when_the_last_member_checks_in", async () => {
    await checkIn("sam", 0, 13);
    const view = await teamOf("ana");
    expect(view).toMatchObject({ windowSatisfied: true, currentCount: 1, state: MemberStreakState.IN_PROGRESS, pendingMemberExternalIds: [] });
    const { team } = await teams().getTeam({ teamId });
    expect(team!.progress!.currentCount).toBe(1);
    expect(team!.members.map((m) => m.memberExternalId).sort()).toEqual(["ana", "ben", "sam"]);
  });

  it("teams/milestone_rewards_every_member_once_and_duplicates_change_nothing", async () => {
    // Day 1 through the batched path: the team reaches 2, the milestone.
    clock.set(at(1, 9));
    await api.client(ActivityService).recordActivities({ activities: [activity("ana", 1, 9), activity("ben", 1, 9), activity("sam", 1, 9)] });
    expect((await teamOf("ben")).currentCount).toBe(2);
    expect(await rewardsOf(teamDef)).toEqual([["ana", 2], ["ben", 2], ["sam", 2]]);
    // The same activity again: a duplicate, nothing changes, nobody is paid twice.
    const again = await checkIn("sam", 1, 9);
    expect(again.duplicate).toBe(true);
    expect((await teamOf("ben")).currentCount).toBe(2);
    expect(await rewardsOf(teamDef)).toEqual([["ana", 2], ["ben", 2], ["sam", 2]]);
  });

  it("teams/membership_changes_take_effect_at_the_next_window", async () => {
    clock.set(at(1, 15));
    const added = await teams().addTeamMember({ teamId, memberExternalId: "zoe" });
    expect(added.team!.members.find((m) => m.memberExternalId === "zoe")!.effectiveTime).toEqual(timestampFromMs(at(2, 0)));
    expect(added.team!.progress!.memberCount).toBe(3);
    const removed = await teams().removeTeamMember({ teamId, memberExternalId: "sam" });
    expect(removed.team!.members.find((m) => m.memberExternalId === "sam")!.endTime).toEqual(timestampFromMs(at(2, 0)));
    // Day 2: Zoe counts, Sam no longer does; Ana and Ben alone do not make the window.
    await checkIn("ana", 2, 9);
    await checkIn("ben", 2, 10);
    await checkIn("sam", 2, 10);
    const view = await teamOf("ana");
    expect(view).toMatchObject({ memberCount: 3, doneMemberExternalIds: ["ana", "ben"], pendingMemberExternalIds: ["zoe"], windowSatisfied: false, currentCount: 2 });
    await checkIn("zoe", 2, 11);
    expect((await teamOf("zoe")).currentCount).toBe(3);
    // Sam is off the team now: his view has no team.
    const sam = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: "sam", definitionId: teamDef });
    expect(sam.streak!.team).toBeUndefined();
  });

  it("teams/concurrent_check_ins_of_one_team_lose_no_update", async () => {
    // Day 3: the three members of the roster check in at once, each through the one-at-a-time path; the team row
    // lock serialises them, so the window counts exactly once whatever order they commit in.
    clock.set(at(3, 9));
    await Promise.all(["ana", "ben", "zoe"].map((m) => api.client(ActivityService).recordActivity({ activity: activity(m, 3, 9) })));
    const view = await teamOf("ana");
    expect(view).toMatchObject({ windowSatisfied: true, currentCount: 4, pendingMemberExternalIds: [] });
    expect([...view.doneMemberExternalIds].sort()).toEqual(["ana", "ben", "zoe"]);
  });

  it("teams/import_grants_no_member_milestones_on_a_team_definition", async () => {
    clock.set(at(3, 13));
    const history = [2, 3].map((day) => ({ ...activity("ivy", day, 8), memberRef: { case: "memberExternalId" as const, value: "ivy" } }));
    await api.client(ActivityService).importActivities({ activities: history, milestonePolicy: ImportMilestonePolicy.GRANT });
    const ivy = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: "ivy", definitionId: teamDef });
    expect(ivy.streak!.currentCount).toBe(2);
    // Ivy's own count reached the milestone; on a team definition only the team's milestones pay.
    expect((await rewardsOf(teamDef)).filter(([m]) => m === "ivy")).toEqual([]);
  });

  it("teams/bad_requests_are_typed_and_change_nothing", async () => {
    clock.set(at(3, 14));
    await expectFailure(teams().createTeam({ definitionId: soloDef, name: "x", memberExternalIds: ["a1", "a2"] }), Code.InvalidArgument, "NOT_A_TEAM_DEFINITION");
    await expectFailure(teams().createTeam({ definitionId: teamDef, name: "x", memberExternalIds: ["ana", "a2"] }), Code.FailedPrecondition, "ALREADY_TEAM_MEMBER");
    await expectFailure(teams().addTeamMember({ teamId, memberExternalId: "ana" }), Code.FailedPrecondition, "ALREADY_TEAM_MEMBER");
    await expectFailure(teams().removeTeamMember({ teamId, memberExternalId: "nobody" }), Code.FailedPrecondition, "NOT_TEAM_MEMBER");
    await expectFailure(teams().getTeam({ teamId: "00000000-0000-4000-8000-000000000000" }), Code.NotFound, "TEAM_NOT_FOUND");
    await expectFailure(
      api.client(DefinitionService).createDefinition({
        definition: {
          name: "Rolling team",
          window: { kind: { case: "rolling", value: { minSpacingDuration: { seconds: 3600n }, maxGapDuration: { seconds: 7200n } } } },
          condition: { type: ConditionType.COUNT, min: 1 },
          team: {},
        },
      }),
      Code.InvalidArgument,
      "INVALID_TEAM_RULE",
    );
    const { team } = await teams().getTeam({ teamId });
    expect(team!.members.map((m) => m.memberExternalId).sort()).toEqual(["ana", "ben", "sam", "zoe"]);
    const { rows } = await db.query<{ n: string }>("select count(*) as n from team where definition_id = $1", [teamDef]);
    expect(rows[0]!.n).toBe("1");
  });
});
