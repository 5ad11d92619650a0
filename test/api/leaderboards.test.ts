// LeaderboardService end to end over Connect JSON (issue 13, item 2): the board's order and its tie-break (who
// reached the count first, kept while they keep checking in), one member's rank and neighbours, a streak whose
// window passed leaving the current board at read time (no sweeper runs here), opt-out by the tenant's backend
// and by the member themself (also for streaks created after opting out), what end users see, and who may call.
// The server runs on a test clock, moved through daily UTC windows.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberService } from "../../src/gen/kindling/v1/member_service_pb.js";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { ApiKeyRole } from "../../src/gen/kindling/v1/tenant_pb.js";
import { CalendarPeriod, ConditionType } from "../../src/gen/kindling/v1/definition_pb.js";
import { LeaderboardMetric, LeaderboardService } from "../../src/gen/kindling/v1/leaderboard_service_pb.js";
import { createTestClock, startTestApi, type Protocol, type TestApi, type TestClock } from "../support/api.ts";
import { DAY, createLiveDefinition, expectFailure, sqlPool } from "../support/fixtures.ts";

const HOUR = 3_600_000;
const DAY0 = Date.parse("2025-03-03T00:00:00Z");
const CURRENT = LeaderboardMetric.CURRENT_COUNT;
const LONGEST = LeaderboardMetric.LONGEST_COUNT;

let api: TestApi;
let clock: TestClock;
let db: pg.Pool;
let serviceKey: Record<string, string>;
let defId: string;

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const boards = (auth?: Record<string, string>) => api.client(LeaderboardService, auth);

/** Moves the server clock to `hours` past midnight of day `day`, and records one activity for `member` there. */
async function checkIn(member: string, day: number, hours: number, definitionId = defId) {
  clock.set(DAY0 + day * DAY + hours * HOUR);
  await api.client(ActivityService).recordActivity({
    activity: {
      memberRef: { case: "memberExternalId", value: member },
      target: { case: "definitionId", value: definitionId },
      occurTime: timestampFromMs(clock.now()),
      uniqueIdentifier: `${member}-${definitionId}-${day}-${hours}`,
    },
  });
}

async function session(member: string, definitionId?: string) {
  const { token } = await api.client(TenantService, serviceKey).createMemberSession({ memberExternalId: member, ...(definitionId ? { definitionId } : {}) });
  return bearer(token);
}

const top = async (metric = CURRENT, auth?: Record<string, string>) =>
  (await boards(auth).getLeaderboard({ definitionId: defId, metric, limit: 100 })).entries.map((e) => [e.memberExternalId, e.count]);

beforeAll(async () => {
  clock = createTestClock(DAY0 + 8 * HOUR);
  api = await startTestApi({ label: "leaderboards", now: clock.now });
  db = sqlPool(api.databaseUrl);
  serviceKey = bearer((await api.client(TenantService).createApiKey({ name: "backend", role: ApiKeyRole.SERVICE })).bearerToken);
  defId = (await createLiveDefinition(api.client(DefinitionService), { name: "Daily board" })).id;
  // Day 0: five members start. Day 1: four extend, in the order c, a, e, b (the reverse of their names and of
  // their creation, so neither explains the order); d does not.
  for (const [i, m] of ["a", "b", "c", "d", "e"].entries()) await checkIn(m, 0, 8 + i);
  await checkIn("c", 1, 8);
  await checkIn("a", 1, 9);
  await checkIn("e", 1, 10);
  await checkIn("b", 1, 11);
  // c checks in again in the same window: "already checked in", the count and its moment stand.
  await checkIn("c", 1, 12);
}, 60_000);
afterAll(async () => {
  await db?.end();
  await api?.close();
});

describe("LeaderboardService (day 1, 13:00: d is at risk, not broken)", () => {
  it("leaderboard/top_orders_by_count_then_who_reached_it_first", async () => {
    clock.set(DAY0 + DAY + 13 * HOUR);
    expect(await top()).toEqual([["c", 2], ["a", 2], ["e", 2], ["b", 2], ["d", 1]]);
    const { entries } = await boards().getLeaderboard({ definitionId: defId, metric: CURRENT, limit: 2 });
    expect(entries.map((e) => [e.rank, e.memberExternalId])).toEqual([[1, "c"], [2, "a"]]);
    // The default size is 10; the longest board orders the same way here.
    expect((await boards().getLeaderboard({ definitionId: defId, metric: LONGEST })).entries.map((e) => e.memberExternalId)).toEqual(["c", "a", "e", "b", "d"]);
  });

  it("leaderboard/rank_and_neighbours_agree_with_the_board", async () => {
    const rank = (member: string, neighbours: number, metric = CURRENT) => boards().getLeaderboardRank({ definitionId: defId, metric, memberExternalId: member, neighbours });
    const e = await rank("e", 2);
    expect(e).toMatchObject({ ranked: true, entry: { rank: 3, memberExternalId: "e", count: 2 } });
    expect(e.above.map((x) => [x.rank, x.memberExternalId])).toEqual([[1, "c"], [2, "a"]]);
    expect(e.below.map((x) => [x.rank, x.memberExternalId, x.count])).toEqual([[4, "b", 2], [5, "d", 1]]);
    const c = await rank("c", 1);
    expect(c).toMatchObject({ ranked: true, entry: { rank: 1 } });
    expect(c.above).toEqual([]);
    expect(c.below.map((x) => x.memberExternalId)).toEqual(["a"]);
    const d = await rank("d", 3, LONGEST);
    expect(d.entry).toMatchObject({ rank: 5, count: 1 });
    expect(d.above.map((x) => x.memberExternalId)).toEqual(["a", "e", "b"]);
    expect(d.below).toEqual([]);
    // No streak at all: not ranked.
    expect(await rank("nobody", 1)).toMatchObject({ ranked: false, above: [], below: [] });
  });

  it("leaderboard/end_users_see_display_names_and_only_their_own_external_id", async () => {
    await boards(serviceKey).setLeaderboardPreference({ memberExternalId: "c", displayName: "Cleo" });
    const asA = await session("a");
    expect(await boards(asA).setLeaderboardPreference({ memberExternalId: "a", displayName: "Ada" })).toMatchObject({ memberExternalId: "a", optOut: false, displayName: "Ada" });
    const { entries } = await boards(asA).getLeaderboard({ definitionId: defId, metric: CURRENT });
    expect(entries.map((x) => [x.rank, x.memberExternalId, x.displayName, x.isCaller])).toEqual([
      [1, "", "Cleo", false],
      [2, "a", "Ada", true],
      [3, "", "", false],
      [4, "", "", false],
      [5, "", "", false],
    ]);
    const mine = await boards(asA).getLeaderboardRank({ definitionId: defId, metric: CURRENT, memberExternalId: "a", neighbours: 1 });
    expect([mine.above[0]!.memberExternalId, mine.above[0]!.displayName, mine.below[0]!.memberExternalId]).toEqual(["", "Cleo", ""]);
    // ADMIN and SERVICE callers see external ids beside the names.
    expect((await boards(serviceKey).getLeaderboard({ definitionId: defId, metric: CURRENT, limit: 2 })).entries.map((x) => [x.memberExternalId, x.displayName])).toEqual([["c", "Cleo"], ["a", "Ada"]]);
    // An empty name clears it.
    expect(await boards(asA).setLeaderboardPreference({ memberExternalId: "a", displayName: "" })).toMatchObject({ displayName: "" });
  });

  it("leaderboard/opt_out_by_backend_or_member_leaves_every_board_and_opting_in_restores_the_place", async () => {
    await boards(serviceKey).setLeaderboardPreference({ memberExternalId: "e", optOut: true });
    const asA = await session("a");
    expect(await boards(asA).setLeaderboardPreference({ memberExternalId: "a", optOut: true })).toMatchObject({ optOut: true });
    expect(await top()).toEqual([["c", 2], ["b", 2], ["d", 1]]);
    expect((await top(LONGEST)).map(([m]) => m)).toEqual(["c", "b", "d"]);
    expect(await boards().getLeaderboardRank({ definitionId: defId, metric: CURRENT, memberExternalId: "e", neighbours: 1 })).toMatchObject({ ranked: false });
    expect((await boards().getLeaderboardRank({ definitionId: defId, metric: CURRENT, memberExternalId: "d", neighbours: 5 })).entry).toMatchObject({ rank: 3 });
    // A member who opted out before their first activity is left out of the streak created later.
    await api.client(MemberService).upsertMember({ member: { externalId: "f" } });
    await boards(serviceKey).setLeaderboardPreference({ memberExternalId: "f", optOut: true });
    await checkIn("f", 1, 13);
    expect((await top()).map(([m]) => m)).toEqual(["c", "b", "d"]);
    // Back in: the original place (who reached the count first) is kept.
    await boards(asA).setLeaderboardPreference({ memberExternalId: "a", optOut: false });
    await boards(serviceKey).setLeaderboardPreference({ memberExternalId: "e", optOut: false });
    await boards(serviceKey).setLeaderboardPreference({ memberExternalId: "f", optOut: false });
    expect(await top()).toEqual([["c", 2], ["a", 2], ["e", 2], ["b", 2], ["d", 1], ["f", 1]]);
  });

  it("leaderboard/permissions_hidden_boards_and_bad_input", async () => {
    const asA = await session("a");
    await expectFailure(boards(asA).getLeaderboardRank({ definitionId: defId, metric: CURRENT, memberExternalId: "b" }), Code.PermissionDenied, "MEMBER_MISMATCH");
    await expectFailure(boards(asA).setLeaderboardPreference({ memberExternalId: "b", optOut: true }), Code.PermissionDenied, "MEMBER_MISMATCH");
    await expectFailure(boards(asA).getLeaderboardSettings({}), Code.PermissionDenied, "PERMISSION_DENIED");
    await expectFailure(boards(serviceKey).setLeaderboardSettings({ hiddenFromEndUsers: true }), Code.PermissionDenied, "PERMISSION_DENIED");
    await expectFailure(boards({ "x-kindling-tenant": api.admin.tenantId }).getLeaderboard({ definitionId: defId, metric: CURRENT }), Code.PermissionDenied, "PERMISSION_DENIED");
    // A member session scoped to another definition; a draft definition end users cannot see; another tenant's.
    const draft = (await api.client(DefinitionService).createDefinition({
      definition: { name: "Draft", window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } }, condition: { type: ConditionType.COUNT, min: 1 } },
    })).definition!.id;
    const other = await createLiveDefinition(api.client(DefinitionService), { name: "Other" });
    await expectFailure(boards(await session("a", other.id)).getLeaderboard({ definitionId: defId, metric: CURRENT }), Code.PermissionDenied, "DEFINITION_MISMATCH");
    await expectFailure(boards(asA).getLeaderboard({ definitionId: draft, metric: CURRENT }), Code.NotFound, "DEFINITION_NOT_FOUND");
    expect((await boards().getLeaderboard({ definitionId: draft, metric: CURRENT })).entries).toEqual([]);
    const tenantB = await api.newTenant("b");
    await expectFailure(api.client(LeaderboardService, tenantB).getLeaderboard({ definitionId: defId, metric: CURRENT }), Code.NotFound, "DEFINITION_NOT_FOUND");
    await expectFailure(boards(serviceKey).setLeaderboardPreference({ memberExternalId: "ghost", optOut: true }), Code.NotFound, "MEMBER_NOT_FOUND");
    // Validation: a metric is required, at most 100 entries.
    await expectFailure(boards().getLeaderboard({ definitionId: defId }), Code.InvalidArgument, "INVALID_REQUEST");
    await expectFailure(boards().getLeaderboard({ definitionId: defId, metric: CURRENT, limit: 101 }), Code.InvalidArgument, "INVALID_REQUEST");
    await expectFailure(boards().setLeaderboardPreference({ memberExternalId: "a", displayName: "x".repeat(65) }), Code.InvalidArgument, "INVALID_REQUEST");
    // The tenant hides its boards from end users; its backend still reads them.
    expect(await boards().setLeaderboardSettings({ hiddenFromEndUsers: true })).toMatchObject({ hiddenFromEndUsers: true });
    expect(await boards(serviceKey).getLeaderboardSettings({})).toMatchObject({ hiddenFromEndUsers: true });
    await expectFailure(boards(asA).getLeaderboard({ definitionId: defId, metric: CURRENT }), Code.PermissionDenied, "LEADERBOARDS_HIDDEN");
    await expectFailure(boards(asA).getLeaderboardRank({ definitionId: defId, metric: CURRENT, memberExternalId: "a" }), Code.PermissionDenied, "LEADERBOARDS_HIDDEN");
    expect((await boards(serviceKey).getLeaderboard({ definitionId: defId, metric: CURRENT })).entries).toHaveLength(6);
    await boards().setLeaderboardSettings({ hiddenFromEndUsers: false });
    expect((await boards(asA).getLeaderboard({ definitionId: defId, metric: CURRENT })).entries).toHaveLength(6);
  });
  it("leaderboard/a_board_read_again_keeps_each_callers_view_on_every_protocol", async () => {
    // The API reuses the response it built for a board while the board's statement returns the same answer
    // (src/api/services/leaderboard.service.ts); each caller must still get their own view of it, on every
    // protocol, however the calls interleave. Top 2: c, a; b is a member not on it.
    const asA = await session("a");
    const asB = await session("b");
    const view = async (auth: Record<string, string> | undefined, protocol: Protocol) =>
      (await api.client(LeaderboardService, auth ?? api.admin, protocol).getLeaderboard({ definitionId: defId, metric: CURRENT, limit: 2 }))
        .entries.map((e) => [e.rank, e.memberExternalId, e.count, e.isCaller, e.reachTime !== undefined]);
    const server = [[1, "c", 2, false, true], [2, "a", 2, false, true]];
    const others = [[1, "", 2, false, true], [2, "", 2, false, true]];
    const own = [[1, "", 2, false, true], [2, "a", 2, true, true]];
    for (const protocol of ["grpc", "connect-json", "connect-binary", "grpc-web", "grpc"] as const) {
      expect(await view(undefined, protocol), protocol).toEqual(server);
      expect(await view(asB, protocol), protocol).toEqual(others);
      expect(await view(asA, protocol), protocol).toEqual(own);
      expect(await view(serviceKey, protocol), protocol).toEqual(server);
      expect(await view(asB, protocol), protocol).toEqual(others);
    }
  });
});

describe("LeaderboardService (day 2: d missed day 1)", () => {
  it("leaderboard/a_streak_past_its_unsatisfied_window_leaves_the_current_board_before_any_sweep", async () => {
    clock.set(DAY0 + 2 * DAY + HOUR);
    // d's window (day 1) closed unsatisfied at midnight; no sweeper runs here, so its row still holds count 1 ...
    const { rows } = await db.query<{ current_count: number }>(
      "select s.current_count from member_streak s join member m on m.id = s.member_id where m.external_id = 'd'",
    );
    expect(rows).toEqual([{ current_count: 1 }]);
    // ... but it is broken from that instant: off the current board, still on the longest one. (f started on
    // day 1; its day-2 window is open.)
    expect(await top()).toEqual([["c", 2], ["a", 2], ["e", 2], ["b", 2], ["f", 1]]);
    expect((await top(LONGEST)).map(([m]) => m)).toEqual(["c", "a", "e", "b", "d", "f"]);
    expect(await boards().getLeaderboardRank({ definitionId: defId, metric: CURRENT, memberExternalId: "d", neighbours: 1 })).toMatchObject({ ranked: false });
    const f = await boards().getLeaderboardRank({ definitionId: defId, metric: CURRENT, memberExternalId: "f", neighbours: 1 });
    expect(f).toMatchObject({ ranked: true, entry: { rank: 5 }, below: [] });
    // d starts again: back on the board with a count of 1, behind f, who reached 1 before.
    await checkIn("d", 2, 2);
    expect(await top()).toEqual([["c", 2], ["a", 2], ["e", 2], ["b", 2], ["f", 1], ["d", 1]]);
  });
});
