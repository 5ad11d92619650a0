// Leaderboard reads at scale (PRODUCT §7: top 100 and a member's rank at 1,000,000 streaks, one indexed query
// each). On a definition of a few thousand member streaks (bulk-loaded: counts with many ties, equal reached-at
// moments, opted-out rows, rows whose window passed unswept, a FREEZE row past its deadline), after ANALYZE:
// - every board statement is planned without a sequential scan, as a prepared statement under a generic and a
//   custom plan;
// - the answers equal a full sort of the same rows done here in TypeScript (the board's rules written out again:
//   count desc, reached first, id; ranked rows only);
// - the store's reuse of a board it read before (the same frozen entries while its statement returns the same
//   answer) never outlives the answer: a changed row, another read instant or another size is a new board at once;
// - concurrent reads of one board share a statement, and a read never joins a statement that began before it: a
//   change committed while a statement runs is in the answer of every read that began after the commit.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { createDefinitionCatalog } from "../../src/engine/definitions/definition-catalog.ts";
import { createLeaderboardStore, hasPauses, liveArgs, rankSql, topSql, TOP_STATEMENTS_PER_BOARD, type LeaderboardMetric } from "../../src/engine/history/leaderboard.ts";
import type { CatalogDefinition } from "../../src/engine/definitions/definition-catalog.ts";
import { startTestApi, type TestApi } from "../support/api.ts";
import { preparedPlans } from "../support/plans.ts";
import { createLiveDefinition } from "../support/fixtures.ts";

const MEMBERS = 4000;
const SCANNED_TABLES = /Seq Scan on (member|member_streak)\b/;
const NOW = Date.parse("2025-06-01T12:00:00Z");

let api: TestApi;
let pool: pg.Pool;
let def: CatalogDefinition;

beforeAll(async () => {
  api = await startTestApi({ label: "leaderboard_plans" });
  pool = new pg.Pool({ connectionString: api.databaseUrl, max: 2 });
  const defs = api.client(DefinitionService);
  const ids = [];
  for (const name of ["Board", "Neighbour board"]) ids.push((await createLiveDefinition(defs, { name })).id);
  const tenantId = api.admin.tenantId;
  await pool.query(
    `insert into member (id, tenant_id, external_id, created_at, updated_at, leaderboard_opt_out)
     select gen_random_uuid(), $1, 'm' || i, now(), now(), i % 13 = 0 from generate_series(1, $2) i`,
    [tenantId, MEMBERS],
  );
  // Both definitions get a row per member, so the board must pick its definition's rows out of a larger table.
  await pool.query(
    `insert into member_streak (id, tenant_id, member_id, definition_id, status, current_count, longest_count, count_reached_at, longest_reached_at,
                                break_at, window_close_at, break_kind, leaderboard_opt_out, version, created_at, updated_at)
     select gen_random_uuid(), $1, m.id, d.id, 'IN_PROGRESS', c, c + n % 3,
            $3::timestamptz - make_interval(mins => (n * 104729) % 50), $3::timestamptz - make_interval(mins => (n * 7) % 50),
            case when n % 10 = 0 or n % 17 = 0 then $3::timestamptz - interval '1 hour' else $3::timestamptz + interval '1 day' end,
            $3::timestamptz - interval '1 hour',
            case when n % 17 = 0 then 'FREEZE' else 'BREAK' end, m.leaderboard_opt_out, 1, now(), now()
       from member m cross join unnest($2::uuid[]) as d(id),
            lateral (select substr(m.external_id, 2)::int as n) k,
            lateral (select (k.n * 7919) % 40 as c) cc
      where m.tenant_id = $1`,
    [tenantId, ids, new Date(NOW).toISOString()],
  );
  await pool.query("analyze member, member_streak");
  def = (await createDefinitionCatalog(pool).get(tenantId, ids[0]!))!;
}, 120_000);
afterAll(async () => {
  await pool?.end();
  await api?.close();
});

/** The plans of one prepared statement, generic and custom (test/support/plans.ts). */
const plans = (text: string, types: readonly string[], args: readonly unknown[]) => preparedPlans(pool, text, types, args);

/**
 * The board computed the long way: every row of the definition, filtered and sorted here. `neutral`: a pause
 * neutralises every passed window, so no row is broken by its deadline.
 */
async function fullSort(metric: LeaderboardMetric, neutral = false): Promise<string[]> {
  const { rows } = await pool.query<{ id: string; external_id: string; current_count: number; longest_count: number; count_reached_at: Date; longest_reached_at: Date; break_at: Date; break_kind: string; leaderboard_opt_out: boolean }>(
    `select s.id, m.external_id, s.current_count, s.longest_count, s.count_reached_at, s.longest_reached_at, s.break_at, s.break_kind, s.leaderboard_opt_out
       from member_streak s join member m on m.id = s.member_id where s.definition_id = $1`,
    [def.id],
  );
  const current = metric === "CURRENT_COUNT";
  const count = (r: (typeof rows)[number]) => (current ? r.current_count : r.longest_count);
  const reached = (r: (typeof rows)[number]) => (current ? r.count_reached_at : r.longest_reached_at).getTime();
  return rows
    .filter((r) => count(r) > 0 && !r.leaderboard_opt_out && (!current || neutral || r.break_kind !== "BREAK" || r.break_at.getTime() > NOW))
    .sort((a, b) => count(b) - count(a) || reached(a) - reached(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((r) => r.external_id);
}

describe("leaderboard statement plans", () => {
  it("plans/top_and_rank_use_the_board_index_without_a_sequential_scan", async () => {
    // A definition with pauses has statements of their own (the pause test): planned alike.
    const withPause: CatalogDefinition = { ...def, pauses: [{ from: NOW - 3 * 86_400_000, to: NOW - 2 * 86_400_000 }] };
    for (const metric of ["CURRENT_COUNT", "LONGEST_COUNT"] as const) {
      for (const d of [def, withPause]) {
        const top = liveArgs(metric, d, NOW, hasPauses(d));
        const rank = liveArgs(metric, d, NOW, true);
        const types = (live: readonly unknown[]) => ["timestamptz", "timestamptz[]", "timestamptz[]"].slice(0, live.length);
        const planned = [
          ...(await plans(topSql(metric, 100, hasPauses(d)), ["uuid", "uuid", ...types(top)], [d.tenantId, d.id, ...top])),
          ...(await plans(rankSql(metric, 5), ["uuid", "uuid", "text", ...types(rank)], [d.tenantId, d.id, "m1234", ...rank])),
        ];
        for (const plan of planned) {
          expect(plan, metric).not.toMatch(SCANNED_TABLES);
          expect(plan, metric).toMatch(metric === "CURRENT_COUNT" ? /member_streak_leaderboard_current/ : /member_streak_leaderboard_longest/);
        }
      }
    }
    // Large enough that the planner would scan if the statements left it the choice.
    const { rows } = await pool.query<{ n: string }>("select count(*) as n from member_streak");
    expect(Number(rows[0]!.n)).toBe(2 * MEMBERS);
  });

  it("plans/top_statements_are_planned_once_per_connection_not_at_every_read", async () => {
    // Planning the top 100 costs about as much as running it: each top statement is prepared once per connection and
    // its generic plan kept, which needs its size written in and its instant hidden from the planner (rowCount,
    // HIDDEN_INSTANT). A rank is planned for its values at every read (PLANNED_INSTANT): its count costs far more.
    const one = new pg.Pool({ connectionString: api.databaseUrl, max: 1 });
    try {
      const store = createLeaderboardStore(one);
      for (let i = 0; i < 10; i++) {
        for (const metric of ["CURRENT_COUNT", "LONGEST_COUNT"] as const) {
          // Another instant each time: every read runs its own statement.
          expect(await store.top(def, metric, 100, NOW + i)).toHaveLength(100);
          expect((await store.rank(def, metric, "m1234", 5, NOW + i)).entry).not.toBeNull();
        }
      }
      const { rows } = await one.query<{ name: string; generic_plans: string; custom_plans: string }>(
        "select name, generic_plans, custom_plans from pg_prepared_statements where name like 'leaderboard_%' order by name",
      );
      expect(rows.map((r) => r.name)).toEqual([
        "leaderboard_rank_CURRENT_COUNT_5", "leaderboard_rank_LONGEST_COUNT_5", "leaderboard_top_CURRENT_COUNT_100", "leaderboard_top_LONGEST_COUNT_100",
      ]);
      // PostgreSQL plans the first five executions for their values, then keeps the generic plan if it costs no more.
      for (const r of rows.filter((r) => r.name.startsWith("leaderboard_top_"))) {
        expect({ name: r.name, generic: Number(r.generic_plans), custom: Number(r.custom_plans) }).toEqual({ name: r.name, generic: 5, custom: 5 });
      }
    } finally {
      await one.end();
    }
  });

  it("plans/top_and_ranks_equal_a_full_sort_with_ties_opt_outs_and_unswept_breaks", async () => {
    const store = createLeaderboardStore(pool);
    for (const metric of ["CURRENT_COUNT", "LONGEST_COUNT"] as const) {
      const expected = await fullSort(metric);
      expect(expected.length).toBeGreaterThan(MEMBERS / 2);
      expect((await store.top(def, metric, 100, NOW)).map((e) => e.memberExternalId)).toEqual(expected.slice(0, 100));
      const bottom = expected.length - 1;
      for (const at of [0, 1, 57, 99, 100, Math.floor(bottom / 2), bottom - 1, bottom]) {
        const member = expected[at]!;
        const found = await store.rank(def, metric, member, 3, NOW);
        expect(found.entry, `${metric} ${member}`).toMatchObject({ rank: at + 1, memberExternalId: member });
        expect(found.above.map((e) => [e.rank, e.memberExternalId])).toEqual(expected.slice(Math.max(0, at - 3), at).map((m, i, all) => [at + 1 - all.length + i, m]));
        expect(found.below.map((e) => [e.rank, e.memberExternalId])).toEqual(expected.slice(at + 1, at + 4).map((m, i) => [at + 2 + i, m]));
      }
    }
    // Not ranked: opted out (m13), due to break (m10), a count of 0 (m40: 40 × 7919 ≡ 0 mod 40).
    for (const member of ["m13", "m10", "m40"]) expect((await store.rank(def, "CURRENT_COUNT", member, 1, NOW)).entry).toBeNull();
  });

  it("plans/a_pause_over_a_passed_deadline_keeps_its_rows_on_the_board", async () => {
    // Every due row's window closed an hour before NOW; a pause begun two hours before NOW, still running, neutralises
    // them (the sweeps' test), so they keep their counts. A pause that ended before the windows closed does not.
    const store = createLeaderboardStore(pool);
    const ongoing: CatalogDefinition = { ...def, pauses: [{ from: NOW - 2 * 3_600_000, to: null }] };
    const over: CatalogDefinition = { ...def, pauses: [{ from: NOW - 3 * 86_400_000, to: NOW - 2 * 86_400_000 }] };
    const neutral = await fullSort("CURRENT_COUNT", true);
    const plain = await fullSort("CURRENT_COUNT");
    expect(neutral.length).toBeGreaterThan(plain.length);
    expect((await store.top(ongoing, "CURRENT_COUNT", 100, NOW)).map((e) => e.memberExternalId)).toEqual(neutral.slice(0, 100));
    expect((await store.top(over, "CURRENT_COUNT", 100, NOW)).map((e) => e.memberExternalId)).toEqual(plain.slice(0, 100));
    // A member whose window passed (the first such on the board): ranked while the pause neutralises it, else not.
    const ranked = new Set(plain);
    const at = neutral.findIndex((m) => !ranked.has(m));
    const due = neutral[at]!;
    const found = await store.rank(ongoing, "CURRENT_COUNT", due, 2, NOW);
    expect(found.entry).toMatchObject({ rank: at + 1, memberExternalId: due });
    expect([...found.above, ...found.below].map((e) => e.memberExternalId)).toEqual(neutral.slice(at - 2, at + 3).filter((m) => m !== due));
    expect((await store.rank(over, "CURRENT_COUNT", due, 2, NOW)).entry).toBeNull();
  });

  it("cache/top_reuses_an_unchanged_board_and_answers_every_change_at_once", async () => {
    const store = createLeaderboardStore(pool);
    const other = createLeaderboardStore(pool); // another API process
    const first = await store.top(def, "CURRENT_COUNT", 100, NOW);
    expect(first).toHaveLength(100);
    // The statement ran again and returned the same board: the same entries, frozen as they are shared.
    expect(await store.top(def, "CURRENT_COUNT", 100, NOW)).toBe(first);
    expect(Object.isFrozen(first) && first.every((e) => Object.isFrozen(e))).toBe(true);
    // Reached-at moments are the stored ones, to the millisecond.
    const { rows: stored } = await pool.query<{ external_id: string; count_reached_at: Date }>(
      "select m.external_id, s.count_reached_at from member_streak s join member m on m.id = s.member_id where s.definition_id = $1 and m.external_id = any ($2)",
      [def.id, first.map((e) => e.memberExternalId)],
    );
    const reached = new Map(stored.map((r) => [r.external_id, r.count_reached_at.getTime()]));
    expect(first.map((e) => e.reachedAt)).toEqual(first.map((e) => reached.get(e.memberExternalId)));

    // Another size is another board.
    expect((await store.top(def, "CURRENT_COUNT", 5, NOW)).map((e) => e.memberExternalId)).toEqual(first.slice(0, 5).map((e) => e.memberExternalId));
    // A changed row (the leader renamed) is answered at once, by this store and by the other one.
    const leader = first[0]!.memberExternalId;
    await pool.query("update member set display_name = 'Renamed leader' where tenant_id = $1 and external_id = $2", [def.tenantId, leader]);
    try {
      for (const s of [store, other]) {
        const renamed = await s.top(def, "CURRENT_COUNT", 100, NOW);
        expect(renamed).not.toBe(first);
        expect(renamed[0]).toMatchObject({ rank: 1, memberExternalId: leader, displayName: "Renamed leader" });
        expect(renamed.slice(1)).toEqual(first.slice(1));
      }
    } finally {
      await pool.query("update member set display_name = null where tenant_id = $1 and external_id = $2", [def.tenantId, leader]);
    }
    expect((await store.top(def, "CURRENT_COUNT", 100, NOW)).map((e) => e.displayName)).toEqual(first.map((e) => e.displayName));
    // No row changed, but a day later every BREAK row's window has passed: only the FREEZE rows (n % 17 = 0) stand.
    const later = await store.top(def, "CURRENT_COUNT", 100, NOW + 2 * 86_400_000);
    expect(later.length).toBeGreaterThan(0);
    expect(later.every((e) => Number(e.memberExternalId.slice(1)) % 17 === 0)).toBe(true);
  });

  it("share/concurrent_reads_share_a_statement_and_none_joins_one_begun_before_it", async () => {
    expect(TOP_STATEMENTS_PER_BOARD).toBe(2); // the sequence below holds two statements to fill the board
    const { held, counts, setHold } = heldPool();
    const store = createLeaderboardStore(held);

    // Ten reads begun in one turn: one statement, one answer.
    const together = await Promise.all(Array.from({ length: 10 }, () => store.top(def, "CURRENT_COUNT", 100, NOW)));
    expect(counts.sent).toBe(1);
    expect(together.every((b) => b === together[0])).toBe(true);
    const leader = together[0]![0]!.memberExternalId;

    // A statement has run and its answer is held; the leader is renamed after it ran (committed). Reads begun after
    // the commit must not be answered by that statement: they share one of their own.
    let release!: () => void;
    setHold(new Promise((r) => (release = r)));
    const early = store.top(def, "CURRENT_COUNT", 100, NOW);
    while (counts.answered < 2) await turns(1);
    await pool.query("update member set display_name = 'Shared read' where tenant_id = $1 and external_id = $2", [def.tenantId, leader]);
    try {
      const late = Array.from({ length: 5 }, () => store.top(def, "CURRENT_COUNT", 100, NOW));
      while (counts.answered < 3) await turns(1);
      // Both statements are held now: the board runs its most; a read begun now waits for a free one.
      const last = store.top(def, "CURRENT_COUNT", 100, NOW);
      await turns(5);
      expect(counts.sent).toBe(3);
      setHold(undefined);
      release();
      expect((await early)[0]).toMatchObject({ memberExternalId: leader, displayName: null });
      const boards = await Promise.all(late);
      expect(boards.every((b) => b === boards[0])).toBe(true); // the five shared one statement
      expect(boards[0]![0]).toMatchObject({ memberExternalId: leader, displayName: "Shared read" });
      expect((await last)[0]).toMatchObject({ memberExternalId: leader, displayName: "Shared read" });
      expect(counts.sent).toBe(4);
    } finally {
      release();
      await pool.query("update member set display_name = null where tenant_id = $1 and external_id = $2", [def.tenantId, leader]);
    }
  });

  it("share/a_shared_statement_reads_the_latest_instant_fails_every_read_it_answers_and_keeps_versions_apart", async () => {
    const { held, counts, failNext } = heldPool();
    const store = createLeaderboardStore(held);
    // One statement for a read at NOW and one two days on: both get the board of the later instant (only the
    // FREEZE rows stand), which is inside both calls.
    const [a, b] = await Promise.all([store.top(def, "CURRENT_COUNT", 100, NOW), store.top(def, "CURRENT_COUNT", 100, NOW + 2 * 86_400_000)]);
    expect(counts.sent).toBe(1);
    expect(a).toBe(b);
    expect(a.length).toBeGreaterThan(0);
    expect(a.every((e) => Number(e.memberExternalId.slice(1)) % 17 === 0)).toBe(true);
    // A failing statement fails every read it was to answer; the board's next read runs again.
    failNext(new Error("connection lost"));
    const failed = await Promise.allSettled([store.top(def, "CURRENT_COUNT", 100, NOW), store.top(def, "CURRENT_COUNT", 100, NOW)]);
    expect(failed.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(await store.top(def, "CURRENT_COUNT", 100, NOW)).toHaveLength(100);
    // Another version of the definition is another board: reads of both versions in one turn do not share.
    const before = counts.sent;
    await Promise.all([store.top(def, "CURRENT_COUNT", 100, NOW), store.top({ ...def, version: def.version + 1 }, "CURRENT_COUNT", 100, NOW)]);
    expect(counts.sent - before).toBe(2);
  });
});

/** `n` turns of the event loop. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/**
 * The real pool, with a hand on its answers: each statement runs in PostgreSQL at once, and its answer is held back
 * from the store while a hold is set; `failNext` makes the next statement fail instead of running.
 */
function heldPool() {
  const counts = { sent: 0, answered: 0 };
  let hold: Promise<void> | undefined;
  let failure: Error | undefined;
  const held = {
    async query(...args: Parameters<pg.Pool["query"]>) {
      counts.sent++;
      if (failure) {
        const error = failure;
        failure = undefined;
        throw error;
      }
      const result = await (pool.query as (...a: unknown[]) => Promise<unknown>)(...args);
      counts.answered++;
      if (hold) await hold;
      return result;
    },
  } as unknown as pg.Pool;
  return { held, counts, setHold: (h: Promise<void> | undefined): void => { hold = h; }, failNext: (e: Error): void => { failure = e; } };
}
