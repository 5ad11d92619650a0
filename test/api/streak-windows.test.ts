// ListStreakWindows end to end: a member's window history through a freeze, a pause, a break and its repair,
// and a break finalised by the set-based sweep; paging in both orders, the time range, end users reading only
// their own; and stored history agreeing with the streak after batched ingest and after the sweeps.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberService } from "../../src/gen/kindling/v1/member_service_pb.js";
import { MemberStreakService, StreakWindowOrder } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { StreakWindowOutcome, type StreakWindow } from "../../src/gen/kindling/v1/streak_window_pb.js";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { ConditionType } from "../../src/gen/kindling/v1/definition_pb.js";
import { createDefinitionCatalog } from "../../src/engine/definitions/definition-catalog.ts";
import { sweepAdvance, sweepBreaks } from "../../src/engine/sweeps/window-sweeps.ts";
import { compareEntries, initialState, unsavedWindows, type ActivityEntry, type MemberStreakState } from "../../src/domain/index.ts";
import { createTestClock, startTestApi, type TestApi, type TestClock } from "../support/api.ts";
import { DAY, createLiveDefinition, expectFailure, sqlPool } from "../support/fixtures.ts";

const HOUR = 3_600_000;
const D0 = Date.parse("2025-01-06T00:00:00Z");
const at = (day: number, hour = 9) => D0 + day * DAY + hour * HOUR;

let api: TestApi;
let db: pg.Pool;
let clock: TestClock;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  clock = createTestClock(at(0, 8));
  api = await startTestApi({ label: "streak-windows", now: clock.now });
  db = sqlPool(api.databaseUrl);
});
afterAll(async () => {
  await db?.end();
  await api?.close();
});

async function checkIn(member: string, definitionId: string, day: number, hour = 9, extra: { value?: number; distinctKey?: string } = {}) {
  clock.set(at(day, hour));
  await api.client(ActivityService).recordActivity({
    activity: {
      memberRef: { case: "memberExternalId", value: member },
      target: { case: "definitionId", value: definitionId },
      occurTime: timestampFromMs(at(day, hour)),
      uniqueIdentifier: `${member}-${day}-${hour}-${Math.random()}`,
      ...extra,
    },
  });
}

/** With the aggregate's count and sum. */
const full = (ws: readonly StreakWindow[]) => ws.map((w) => `${brief([w])[0]} ${w.aggregate!.count}/${w.aggregate!.sum}`);
const brief = (ws: readonly StreakWindow[]) => ws.map((w) => `${w.windowKey} ${StreakWindowOutcome[w.outcome]} ${w.countAfter}${w.live ? " live" : ""}`);

async function allWindows(member: string, definitionId: string, order = StreakWindowOrder.OLDEST_FIRST, pageSize = 0, auth?: Record<string, string>) {
  const out: StreakWindow[] = [];
  let pageToken = "";
  let pages = 0;
  do {
    const page = await api.client(MemberStreakService, auth).listStreakWindows({ memberExternalId: member, definitionId, order, pageSize, pageToken });
    out.push(...page.windows);
    pageToken = page.nextPageToken;
    pages += 1;
  } while (pageToken !== "");
  return { windows: out, pages };
}

async function sweep(definitionId: string, asOf: number) {
  const catalog = createDefinitionCatalog(db, 0);
  const def = (await catalog.get(api.admin.tenantId, definitionId))!;
  return { broken: await sweepBreaks(db, def, asOf), advanced: await sweepAdvance(db, def, asOf) };
}

/** Every window of a member streak as one fold of all its applied activities gives them, at `now`. */
async function foldedFromScratch(member: string, definitionId: string, now: number) {
  const catalog = createDefinitionCatalog(db, 0);
  const def = (await catalog.get(api.admin.tenantId, definitionId))!;
  const { rows } = await db.query<{ unique_identifier: string; occurred_at: Date; value: number | null; distinct_key: string | null }>(
    `select a.unique_identifier, a.occurred_at, a.value, a.distinct_key from activity a join member m on m.id = a.member_id
      where m.external_id = $1 and $2 = any(a.applied_definition_ids)`,
    [member, definitionId],
  );
  const entries: ActivityEntry[] = rows.map((r) => ({ id: r.unique_identifier, at: r.occurred_at.getTime(), value: r.value ?? 0, key: r.distinct_key })).sort(compareEntries);
  const whole: MemberStreakState = { ...initialState(def.rules), zone: "UTC", tail: entries };
  return unsavedWindows(def.rules, whole, now, { pausedIntervals: def.pauses }).map((w) => `${w.key} ${w.outcome} ${w.countAfter}${w.final ? "" : " live"} ${w.count}/${w.sum}`);
}

describe("ListStreakWindows", () => {
  let defId: string;
  const story = [
    "2025-01-06 SATISFIED 1",
    "2025-01-07 SATISFIED 2",
    "2025-01-08 FROZEN 2",
    "2025-01-09 SATISFIED 3",
    "2025-01-10 NEUTRAL 3",
    "2025-01-11 SATISFIED 4",
    "2025-01-12 BRIDGED 4",
    "2025-01-13 BRIDGED 4",
    "2025-01-14 SATISFIED 5",
    "2025-01-15 MISSED 0",
  ];

  beforeAll(async () => {
    const defs = api.client(DefinitionService);
    clock.set(at(0, 8));
    defId = (await createLiveDefinition(defs, { name: "Calendar", freezePolicy: { maxHeld: 1, initialGrant: 1 }, repairDuration: { seconds: BigInt(3 * 86400) } })).id;
    await checkIn("ada", defId, 0);
    await checkIn("ada", defId, 1);
    // The 8th is missed: the freeze covers it when the 9th's check-in finalises it.
    await checkIn("ada", defId, 3);
    // Paused over the 10th's close: neutral.
    clock.set(at(4, 10));
    await defs.pauseDefinition({ definitionId: defId });
    clock.set(at(5, 10));
    await defs.resumeDefinition({ definitionId: defId });
    await checkIn("ada", defId, 5, 11);
    // The 12th is missed with no freeze left: the streak breaks (found by the repair), and the repair on the 14th
    // bridges the 12th and the 13th.
    clock.set(at(8, 8));
    expect((await api.client(MemberService).repairStreak({ memberExternalId: "ada", definitionId: defId })).restoredCount).toBe(4);
    await checkIn("ada", defId, 8);
    // Nothing on the 15th: the set-based sweep breaks the streak at its close.
    expect(await sweep(defId, at(10, 0))).toEqual({ broken: 1, advanced: 0 });
    clock.set(at(10, 9));
  });

  it("windows/freeze_pause_repair_and_break_each_show_as_their_window", async () => {
    const { windows } = await allWindows("ada", defId);
    expect(brief(windows)).toEqual(story);
    expect(windows[0]).toMatchObject({ startTime: timestampFromMs(at(0, 0)), endTime: timestampFromMs(at(1, 0)), aggregate: { count: 1, sum: 0, distinctKeys: [] } });
    // The count after the last window is the streak's.
    const { streak } = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: "ada", definitionId: defId });
    expect(streak!.currentCount).toBe(windows.at(-1)!.countAfter);
    // Stored as they were finalised: by recording, the repair and the sweep (the 14th is final but not yet saved:
    // the next write stores it).
    const stored = await db.query<{ window_key: string; outcome: string; count_after: number }>(
      "select window_key, outcome, count_after from streak_window where definition_id = $1 order by start_at",
      [defId],
    );
    expect(stored.rows.map((r) => `${r.window_key} ${r.outcome} ${r.count_after}`)).toEqual(story.filter((s) => !s.startsWith("2025-01-14")));
  });

  it("windows/pages_in_both_orders_cover_the_same_windows_once", async () => {
    const oldest = await allWindows("ada", defId, StreakWindowOrder.OLDEST_FIRST, 3);
    expect(oldest.pages).toBe(4);
    expect(brief(oldest.windows)).toEqual(story);
    const newest = await allWindows("ada", defId, StreakWindowOrder.NEWEST_FIRST, 4);
    expect(newest.pages).toBe(3);
    expect(brief(newest.windows)).toEqual([...story].reverse());
  });

  it("windows/time_range_keeps_windows_starting_inside_it", async () => {
    const page = await api.client(MemberStreakService).listStreakWindows({
      memberExternalId: "ada", definitionId: defId, startTime: timestampFromMs(at(3, 0)), endTime: timestampFromMs(at(6, 0)),
    });
    expect(brief(page.windows)).toEqual(story.slice(3, 6));
    const newest = await api.client(MemberStreakService).listStreakWindows({
      memberExternalId: "ada", definitionId: defId, startTime: timestampFromMs(at(7, 12)), order: StreakWindowOrder.NEWEST_FIRST,
    });
    expect(brief(newest.windows)).toEqual(story.slice(8).reverse());
  });

  it("windows/open_and_in_grace_windows_come_from_the_live_state", async () => {
    const def = (await createLiveDefinition(api.client(DefinitionService), { name: "Graceful", graceDuration: { seconds: BigInt(6 * 3600) }, condition: { type: ConditionType.SUM, min: 10 } })).id;
    await checkIn("gus", def, 0, 9, { value: 12 });
    await checkIn("gus", def, 1, 9, { value: 4 });
    clock.set(at(1, 20));
    expect(brief((await allWindows("gus", def)).windows)).toEqual(["2025-01-06 SATISFIED 1", "2025-01-07 OPEN 1 live"]);
    clock.set(at(2, 3));
    const { windows } = await allWindows("gus", def);
    expect(brief(windows)).toEqual(["2025-01-06 SATISFIED 1", "2025-01-07 IN_GRACE 1 live"]);
    expect(windows[1]!.aggregate).toMatchObject({ count: 1, sum: 4 });
    expect(timestampMs(windows[1]!.endTime!)).toBe(at(2, 0));
  });

  it("windows/unknown_streak_is_not_found_and_a_bad_range_or_token_is_invalid", async () => {
    const streaks = api.client(MemberStreakService);
    await expectFailure(streaks.listStreakWindows({ memberExternalId: "nobody", definitionId: defId }), Code.NotFound, "MEMBER_STREAK_NOT_FOUND");
    await expectFailure(
      streaks.listStreakWindows({ memberExternalId: "ada", definitionId: defId, startTime: timestampFromMs(at(5, 0)), endTime: timestampFromMs(at(4, 0)) }),
      Code.InvalidArgument,
      "INVALID_REQUEST",
    );
    const forged = Buffer.from(JSON.stringify(["x", "y"])).toString("base64url");
    await expectFailure(streaks.listStreakWindows({ memberExternalId: "ada", definitionId: defId, pageToken: forged }), Code.InvalidArgument, "INVALID_PAGE_TOKEN");
  });

  it("windows/end_user_reads_own_history_and_is_refused_another_members", async () => {
    clock.set(at(10, 9));
    const { token } = await api.client(TenantService).createMemberSession({ memberExternalId: "ada" });
    const own = await allWindows("ada", defId, StreakWindowOrder.OLDEST_FIRST, 0, bearer(token));
    expect(brief(own.windows)).toEqual(story);
    await checkIn("bob", defId, 10);
    await expectFailure(
      api.client(MemberStreakService, bearer(token)).listStreakWindows({ memberExternalId: "bob", definitionId: defId }),
      Code.PermissionDenied,
      "MEMBER_MISMATCH",
    );
  });
});

describe("stored history agrees with the streak", () => {
  it("windows/batched_ingest_and_sweeps_store_what_one_fold_of_all_activity_gives", async () => {
    clock.set(at(20, 0));
    const def = (await createLiveDefinition(api.client(DefinitionService), {
      name: "Batched", freezePolicy: { maxHeld: 1, initialGrant: 1 }, condition: { type: ConditionType.COUNT, min: 2 },
    })).id;
    const members = ["m1", "m2", "m3", "m4", "m5"];
    // Day by day, one RecordActivities call per day with every member's activity for that day: m1 every day,
    // m2 skips a day (freeze), m3 skips two (break after the freeze), m4 does one of two on day 22 (partial),
    // m5 uses its freeze on day 21 and does one of two on day 24, so the set-based sweep breaks it on a window
    // with activity in it.
    const plan: Record<string, number[][]> = {
      m1: [[20, 20], [21, 21], [22, 22], [23, 23], [24, 24]],
      m2: [[20, 20], [21, 21], [], [23, 23], [24, 24]],
      m3: [[20, 20], [], [], [23, 23], [24, 24]],
      m4: [[20, 20], [21, 21], [22], [], [24, 24]],
      m5: [[20, 20], [], [22, 22], [23, 23], [24]],
    };
    for (let d = 0; d < 5; d++) {
      clock.set(at(20 + d, 12));
      const activities = members.flatMap((m) =>
        plan[m]![d]!.map((day, k) => ({
          memberRef: { case: "memberExternalId" as const, value: m },
          target: { case: "definitionId" as const, value: def },
          occurTime: timestampFromMs(at(day, 9 + k)),
          uniqueIdentifier: `${m}-${day}-${k}`,
        })),
      );
      await api.client(ActivityService).recordActivities({ activities });
    }
    for (const m of members) expect(full((await allWindows(m, def)).windows)).toEqual(await foldedFromScratch(m, def, at(24, 12)));

    // Two days later: the sweeps finalise what recording left open (breaks set-based, freezes through the domain).
    const swept = await sweep(def, at(26, 0));
    expect(swept.broken + swept.advanced).toBeGreaterThan(0);
    clock.set(at(26, 1));
    for (const m of members) {
      const { windows } = await allWindows(m, def);
      expect(full(windows)).toEqual(await foldedFromScratch(m, def, at(26, 1)));
      const { streak } = await api.client(MemberStreakService).getMemberStreak({ memberExternalId: m, definitionId: def });
      expect(windows.at(-1)!.countAfter).toBe(streak!.currentCount);
    }
    // Every stored row is a window the fold finalised, with the same outcome, count and aggregate; m5's broken
    // window was stored by the set-based sweep, with the activity it had.
    for (const m of members) {
      const { rows } = await db.query<{ window_key: string; outcome: string; count_after: number; activity_count: number; value_sum: number }>(
        `select w.window_key, w.outcome, w.count_after, w.activity_count, w.value_sum from streak_window w join member mm on mm.id = w.member_id
          where mm.external_id = $1 and w.definition_id = $2 order by w.start_at`,
        [m, def],
      );
      const folded = await foldedFromScratch(m, def, at(26, 1));
      for (const r of rows) expect(folded).toContain(`${r.window_key} ${r.outcome} ${r.count_after} ${r.activity_count}/${r.value_sum}`);
      if (m === "m5") expect(rows.at(-1)).toMatchObject({ window_key: "2025-01-30", outcome: "MISSED", count_after: 0, activity_count: 1 });
    }
  });
});
