// Team streaks and the window sweeps (issue 14, part 3), over the API on a test clock through daily UTC windows:
// the at-risk sweep reminds only the roster members who have not acted; the break sweep breaks a team once (also
// with two sweeps racing on two connections) or spends a team freeze, with the team's events to each member; a
// later write to the team does not tell it again; a team kept alive by a freeze alone is due for the sweeper;
// RepairTeamStreak and GrantTeamFreezes, bad input refused with nothing changed; ListMemberStreaks shows the team.
// Sweeps run as the sweeper's activities run them (src/engine/sweeps/window-sweeps.ts), at chosen instants.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { EventService } from "../../src/gen/kindling/v1/event_service_pb.js";
import { EventType, type Event } from "../../src/gen/kindling/v1/event_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { TeamService } from "../../src/gen/kindling/v1/team_service_pb.js";
import { MemberStreakState } from "../../src/gen/kindling/v1/member_streak_pb.js";
import { createDefinitionCatalog } from "../../src/engine/definitions/definition-catalog.ts";
import { nextDueAt, sweepAtRisk, sweepBreaks } from "../../src/engine/sweeps/window-sweeps.ts";
import { createTestClock, startTestApi, type TestApi, type TestClock } from "../support/api.ts";
import { DAY, createLiveDefinition, expectFailure, sqlPool } from "../support/fixtures.ts";

const HOUR = 3_600_000;
const DAY0 = Date.parse("2025-03-03T00:00:00Z");
const MADE_UP = "00000000-0000-4000-8000-000000000000";

let api: TestApi;
let clock: TestClock;
let db: pg.Pool;
let other: pg.Pool;
/** Team rule with a team freeze policy, a 2-hour at-risk lead and 3 days of repair. */
let teamDef: string;
/** As teamDef, for one team whose freeze alone keeps it alive. */
let pairDef: string;
/** Team rule, no freezes anywhere, no repair. */
let plainDef: string;
const team: Record<string, string> = {};

const teams = () => api.client(TeamService);
const at = (day: number, hours: number) => DAY0 + day * DAY + hours * HOUR;

async function checkIn(definitionId: string, member: string, day: number, hours: number) {
  clock.set(at(day, hours));
  await api.client(ActivityService).recordActivity({
    activity: {
      memberRef: { case: "memberExternalId", value: member },
      target: { case: "definitionId", value: definitionId },
      occurTime: timestampFromMs(at(day, hours)),
      uniqueIdentifier: `${member}-${definitionId}-${day}-${hours}`,
    },
  });
}

async function definition(id: string) {
  return (await createDefinitionCatalog(db, 0).get(api.admin.tenantId, id))!;
}

/** Every event of a definition and types, oldest first, through ListEvents. */
async function events(definitionId: string, type: EventType): Promise<Event[]> {
  const out: Event[] = [];
  let pageToken = "";
  do {
    const page = await api.client(EventService).listEvents({ definitionId, types: [type], pageSize: 100, pageToken });
    out.push(...page.events);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return out;
}

const who = (es: readonly Event[]) => es.map((e) => `${e.memberExternalId}@${e.teamId}`).sort();

async function teamRow(teamId: string) {
  const { rows } = await db.query<{ status: string; current_count: number; state: { freezesHeld: number } }>("select status, current_count, state from team where id = $1", [teamId]);
  return rows[0]!;
}

/** The team's stored window history (team_window), oldest first. */
async function history(teamId: string) {
  const { rows } = await db.query<{ window_key: string; outcome: string; count_after: number }>(
    "select window_key, outcome, count_after from team_window where team_id = $1 order by start_at",
    [teamId],
  );
  return rows.map((r) => `${r.window_key} ${r.outcome} ${r.count_after}`);
}

beforeAll(async () => {
  clock = createTestClock(at(0, 8));
  api = await startTestApi({ label: "team_sweeps", now: clock.now });
  db = sqlPool(api.databaseUrl);
  other = sqlPool(api.databaseUrl);
  const defs = api.client(DefinitionService);
  const withFreezes = {
    team: { freezePolicy: { maxHeld: 2, initialGrant: 0 } },
    atRiskLeadDuration: { seconds: 7200n },
    repairDuration: { seconds: BigInt(3 * 86_400) },
  };
  teamDef = (await createLiveDefinition(defs, { name: "Team sweeps", ...withFreezes })).id;
  pairDef = (await createLiveDefinition(defs, { name: "Pair", ...withFreezes })).id;
  plainDef = (await createLiveDefinition(defs, { name: "Team without freezes", team: {}, atRiskLeadDuration: { seconds: 7200n } })).id;
  const make = async (name: string, definitionId: string, members: string[]) => {
    team[name] = (await teams().createTeam({ definitionId, name, memberExternalIds: members })).team!.id;
  };
  await make("trio", teamDef, ["ana", "ben", "cal"]);
  await make("duo", teamDef, ["dee", "eve"]);
  await make("pair", pairDef, ["jo", "kim"]);
  await make("plain", plainDef, ["fay", "gus"]);
  // Day 0: every team counts its first window.
  for (const m of ["ana", "ben", "cal", "dee", "eve"]) await checkIn(teamDef, m, 0, 9);
  for (const m of ["jo", "kim"]) await checkIn(pairDef, m, 0, 9);
  for (const m of ["fay", "gus"]) await checkIn(plainDef, m, 0, 9);
}, 60_000);
afterAll(async () => {
  await other?.end();
  await db?.end();
  await api?.close();
});

describe("team streaks in the sweeps (day 0 to day 3)", () => {
  it("team_grants/freezes_capped_by_the_team_policy_and_bad_input_changes_nothing", async () => {
    clock.set(at(0, 12));
    const before = await teamRow(team["duo"]!);
    await expectFailure(teams().grantTeamFreezes({ teamId: team["duo"]!, count: 0 }), Code.InvalidArgument, "INVALID_REQUEST");
    await expectFailure(teams().grantTeamFreezes({ teamId: team["duo"]!, count: 101 }), Code.InvalidArgument, "INVALID_REQUEST");
    await expectFailure(teams().grantTeamFreezes({ teamId: "not-a-uuid", count: 1 }), Code.InvalidArgument, "INVALID_REQUEST");
    await expectFailure(teams().grantTeamFreezes({ teamId: MADE_UP, count: 1 }), Code.NotFound, "TEAM_NOT_FOUND");
    await expectFailure(teams().grantTeamFreezes({ teamId: team["plain"]!, count: 1 }), Code.FailedPrecondition, "FREEZES_DISABLED");
    expect(await teamRow(team["duo"]!)).toEqual(before);
    expect((await teamRow(team["plain"]!)).state.freezesHeld).toBe(0);
    // The team policy holds at most 2: asking for 5 grants 2.
    const granted = await teams().grantTeamFreezes({ teamId: team["duo"]!, count: 5 });
    expect(granted.grantedCount).toBe(2);
    expect(granted.team!.progress!.freezesHeld).toBe(2);
    expect((await teams().grantTeamFreezes({ teamId: team["duo"]!, count: 1 })).grantedCount).toBe(0);
    // The pair gets one: nobody on it will check in tomorrow.
    expect((await teams().grantTeamFreezes({ teamId: team["pair"]!, count: 1 })).grantedCount).toBe(1);
  });

  it("team_sweeps/at_risk_reminders_go_only_to_members_who_have_not_acted", async () => {
    // Day 1: Ana and Dee act; Ben, Cal and Eve do not (yet).
    await checkIn(teamDef, "ana", 1, 9);
    await checkIn(teamDef, "dee", 1, 9);
    const def = await definition(teamDef);
    // 22:30, inside the 2-hour lead of the 24:00 close.
    const sent = await sweepAtRisk(db, def, at(1, 22.5));
    const reminders = await events(teamDef, EventType.STREAK_AT_RISK);
    // Only the team's reminders, none of the members' own streaks (Ben's own run is at risk too).
    expect(who(reminders)).toEqual([`ben@${team["trio"]}`, `cal@${team["trio"]}`, `eve@${team["duo"]}`]);
    expect(sent).toBe(3);
    expect(reminders.every((e) => e.payload.case === "streakAtRisk" && e.payload.value.windowKey === "2025-03-04" && e.payload.value.currentCount === 1)).toBe(true);
    // Once per team and window: a second sweep (and a racing one) sends nothing more.
    const again = await Promise.all([sweepAtRisk(db, def, at(1, 23)), sweepAtRisk(other, def, at(1, 23))]);
    expect(again).toEqual([0, 0]);
    expect(await events(teamDef, EventType.STREAK_AT_RISK)).toHaveLength(3);
  });

  it("team_sweeps/break_sweep_breaks_a_team_once_with_its_events_even_when_two_race", async () => {
    const def = await definition(teamDef);
    // Day 2, 01:00: two sweeps at the same instant on two connections, one team per page so they interleave.
    await Promise.all([sweepBreaks(db, def, at(2, 1), { teamPageSize: 1 }), sweepBreaks(other, def, at(2, 1), { teamPageSize: 1 })]);
    expect(await teamRow(team["trio"]!)).toMatchObject({ status: "BROKEN", current_count: 0 });
    const broken = (await events(teamDef, EventType.STREAK_BROKEN)).filter((e) => e.teamId !== "");
    expect(who(broken)).toEqual([`ana@${team["trio"]}`, `ben@${team["trio"]}`, `cal@${team["trio"]}`]);
    expect(broken.every((e) => e.payload.case === "streakBroken" && e.payload.value.finalCount === 1 && e.payload.value.missedWindowKey === "2025-03-04")).toBe(true);
    // The missed window is in the team's history, as the sweep finalised it.
    expect(await history(team["trio"]!)).toEqual(["2025-03-03 SATISFIED 1", "2025-03-04 MISSED 0"]);
    // Swept again, and the team written to by a check-in (which advances it first): no second break.
    expect(await sweepBreaks(db, def, at(2, 2))).toBe(0);
    await checkIn(teamDef, "ben", 2, 9);
    expect((await events(teamDef, EventType.STREAK_BROKEN)).filter((e) => e.teamId !== "")).toHaveLength(3);
    // The other order: a check-in finds the plain team's missed day 1 first and tells its members; the sweep
    // after it tells nobody again.
    await checkIn(plainDef, "fay", 2, 9);
    await sweepBreaks(db, await definition(plainDef), at(2, 10));
    const plain = (await events(plainDef, EventType.STREAK_BROKEN)).filter((e) => e.teamId !== "");
    expect(who(plain)).toEqual([`fay@${team["plain"]}`, `gus@${team["plain"]}`]);
    expect(await teamRow(team["plain"]!)).toMatchObject({ status: "BROKEN", current_count: 0 });
  });

  it("team_sweeps/team_freeze_used_by_the_sweep", async () => {
    // The duo missed day 1 (Eve) and held 2 team freezes: the sweep spent one, and told both members.
    expect(await teamRow(team["duo"]!)).toMatchObject({ status: "IN_PROGRESS", current_count: 1, state: { freezesHeld: 1 } });
    const used = (await events(teamDef, EventType.STREAK_FREEZE_USED)).filter((e) => e.teamId !== "");
    expect(who(used)).toEqual([`dee@${team["duo"]}`, `eve@${team["duo"]}`]);
    const duo = used.find((e) => e.teamId === team["duo"])!;
    expect(duo.payload.case === "streakFreezeUsed" && duo.payload.value).toMatchObject({ windowKey: "2025-03-04", freezesRemaining: 1 });
    expect(await history(team["duo"]!)).toEqual(["2025-03-03 SATISFIED 1", "2025-03-04 FROZEN 1"]);
  });

  it("team_sweeps/a_team_kept_alive_by_a_freeze_alone_is_due_for_the_sweeper", async () => {
    // Neither Jo nor Kim acted on day 1: their own streaks break, the pair spends its freeze. Only the team still
    // has deadlines on its definition, and the sweeper must wake for them: the reminder at 22:00 on day 2.
    await sweepBreaks(db, await definition(pairDef), at(2, 1));
    const { rows } = await db.query<{ n: number }>(
      "select count(*)::int as n from member_streak s join member m on m.id = s.member_id where m.external_id in ('jo', 'kim') and s.break_at is not null",
    );
    expect(rows[0]!.n).toBe(0);
    expect(await teamRow(team["pair"]!)).toMatchObject({ status: "IN_PROGRESS", current_count: 1 });
    expect(await nextDueAt(db, { tenantId: api.admin.tenantId, definitionId: pairDef }, at(2, 1))).toBe(at(2, 22));
  });

  it("team_repair/restores_the_broken_team_once_and_bad_input_changes_nothing", async () => {
    clock.set(at(2, 10));
    const before = await teamRow(team["trio"]!);
    await expectFailure(teams().repairTeamStreak({ teamId: "nope" }), Code.InvalidArgument, "INVALID_REQUEST");
    await expectFailure(teams().repairTeamStreak({ teamId: MADE_UP }), Code.NotFound, "TEAM_NOT_FOUND");
    await expectFailure(teams().repairTeamStreak({ teamId: team["duo"]! }), Code.FailedPrecondition, "STREAK_NOT_BROKEN");
    await expectFailure(teams().repairTeamStreak({ teamId: team["plain"]! }), Code.FailedPrecondition, "REPAIR_NOT_ALLOWED");
    expect(await teamRow(team["trio"]!)).toEqual(before);
    const repaired = await teams().repairTeamStreak({ teamId: team["trio"]! });
    expect(repaired.restoredCount).toBe(1);
    expect(repaired.team!.progress).toMatchObject({ currentCount: 1, state: MemberStreakState.IN_PROGRESS });
    const told = (await events(teamDef, EventType.STREAK_REPAIRED)).filter((e) => e.teamId === team["trio"]);
    expect(who(told)).toEqual([`ana@${team["trio"]}`, `ben@${team["trio"]}`, `cal@${team["trio"]}`]);
    expect(await history(team["trio"]!)).toEqual(["2025-03-03 SATISFIED 1", "2025-03-04 BRIDGED 1"]);
    // Once: a second repair is refused and changes nothing.
    const after = await teamRow(team["trio"]!);
    await expectFailure(teams().repairTeamStreak({ teamId: team["trio"]! }), Code.FailedPrecondition, "ALREADY_REPAIRED");
    expect(await teamRow(team["trio"]!)).toEqual(after);
    // Day 2 completes for the trio (Ben checked in already): the repaired run counts on.
    await checkIn(teamDef, "ana", 2, 11);
    await checkIn(teamDef, "cal", 2, 12);
    expect((await teamRow(team["trio"]!)).current_count).toBe(2);
  });

  it("team_views/list_member_streaks_shows_the_team_on_team_definitions", async () => {
    const { streaks } = await api.client(MemberStreakService).listMemberStreaks({ memberExternalId: "ana" });
    const onTeam = streaks.find((s) => s.definitionId === teamDef)!;
    expect(onTeam.team).toMatchObject({ teamId: team["trio"], teamName: "trio", memberCount: 3, currentCount: 2 });
    const { streaks: fay } = await api.client(MemberStreakService).listMemberStreaks({ memberExternalId: "fay" });
    expect(fay.find((s) => s.definitionId === plainDef)!.team).toMatchObject({ teamId: team["plain"] });
  });
});
