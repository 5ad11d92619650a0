// Sweeps in O(page) (issue 15): a page of the break or at-risk sweep reads about a page of index entries, however
// many rows are due or in other definitions. 12,000 streaks of one definition all due at one instant (a daily
// cohort) and as many of a second definition; ANALYZEd. A page in the middle of the
// sweep (cursor after the 3,000th row, inside the first of the two id ranges) is run under EXPLAIN ANALYZE, in a transaction rolled back: the page is an
// index range scan of the keyset index that reads at most ~2 pages of entries (the id-range half filters about
// one in two), with no sequential scan of member_streak. Then the whole sweep runs with small pages and finalises
// every row once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Pool } from "pg";
import { sweepAdvance, sweepAtRisk, sweepBreaks } from "../../src/engine/sweeps/window-sweeps.ts";
import { sweepTeamAtRisk, sweepTeamBreaks } from "../../src/engine/teams/team-sweeps.ts";
import { teamRuleOf } from "../../src/engine/teams/team-streaks.ts";
import type { CatalogDefinition } from "../../src/engine/definitions/definition-catalog.ts";
import { createOrchestrationDb, dailyUtc, DAY, HOUR, type OrchestrationDb } from "../support/orchestration.ts";
import { isUuidV7Sql } from "../support/fixtures.ts";

const COHORT = 12_000;
const PAGE = 400;
const D0 = Date.UTC(2030, 0, 7);
const BREAK_AT = D0 + DAY;
const AT_RISK_AT = D0 + DAY - 4 * HOUR;

let db: OrchestrationDb;
let def: CatalogDefinition;
/** A team definition with COHORT teams all due at one instant (the team sweeps' pages, migration 0015). */
let teamDef: CatalogDefinition;
/** The second cohort's definition, swept only by the test of a stopped sweep. */
let otherDef: CatalogDefinition;

beforeAll(async () => {
  db = await createOrchestrationDb("sweep_plans");
  const ids = [await db.definition(dailyUtc({ name: "Cohort" })), await db.definition(dailyUtc({ name: "Other cohort" }))];
  def = await db.catalogDefinition(ids[0]!);
  otherDef = await db.catalogDefinition(ids[1]!);
  await db.pool.query(
    `insert into member (id, tenant_id, external_id, created_at, updated_at)
     select gen_random_uuid(), $1, 'm' || i, now(), now() from generate_series(1, $2) i`,
    [db.tenantId, COHORT],
  );
  // Each member: a due row on both definitions.
  await db.pool.query(
    `insert into member_streak (id, tenant_id, member_id, definition_id, status, current_count, longest_count, break_at, at_risk_at,
                                window_close_at, break_kind, break_window_key, version, created_at, updated_at)
     select gen_random_uuid(), $1, m.id, d.id, 'IN_PROGRESS', 3, 3, $3, $4, $5, 'BREAK', '2030-01-07', 1, now(), now()
       from member m cross join unnest($2::uuid[]) as d(id) where m.tenant_id = $1`,
    [db.tenantId, ids, new Date(BREAK_AT), new Date(AT_RISK_AT), new Date(D0 + DAY)],
  );
  await db.pool.query("analyze member_streak");
  teamDef = await db.catalogDefinition(await db.definition(dailyUtc({ name: "Teams", team: {} })));
  await db.pool.query(
    `insert into team (id, tenant_id, definition_id, name, state, status, current_count, longest_count, break_at, at_risk_at, window_close_at,
                       break_kind, break_window_key, created_at, updated_at)
     select gen_random_uuid(), $1, $2, 't' || i, '{}', 'IN_PROGRESS', 3, 3, $4, $5, $6, 'BREAK', '2030-01-07', now(), now()
       from generate_series(1, $3) i`,
    [db.tenantId, teamDef.id, COHORT, new Date(BREAK_AT), new Date(AT_RISK_AT), new Date(D0 + DAY)],
  );
  await db.pool.query("analyze team");
});

afterAll(async () => {
  await db?.close();
});

/** The statements a sweep sends, captured without running them. */
async function firstStatement(sweep: (pool: Pool) => Promise<unknown>): Promise<{ text: string; values: unknown[] }> {
  let captured: { text: string; values: unknown[] } | undefined;
  const spy = { query: (text: string, values: unknown[]) => ((captured ??= { text, values }), Promise.reject(new Error("captured"))) } as unknown as Pool;
  await sweep(spy).catch(() => undefined);
  return captured!;
}

/** The first statement of a sweep whose pages run in a transaction (sweepAdvance), captured without running it. */
async function firstTransactionStatement(sweep: (pool: Pool) => Promise<unknown>): Promise<{ text: string; values: unknown[] }> {
  let captured: { text: string; values: unknown[] } | undefined;
  const client = {
    // begin / rollback carry no values; the first statement with values is the page.
    query: (text: string, values?: unknown[]) => (values === undefined ? Promise.resolve({ rows: [] }) : ((captured ??= { text, values }), Promise.reject(new Error("captured")))),
    release: () => undefined,
  };
  const spy = { connect: () => Promise.resolve(client) } as unknown as Pool;
  await sweep(spy).catch(() => undefined);
  return captured!;
}

interface PlanNode { "Node Type": string; "Relation Name"?: string; "Index Name"?: string; "Actual Rows": number; "Actual Loops": number; "Rows Removed by Filter"?: number; Plans?: PlanNode[] }

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

async function explainMidSweep(statement: { text: string; values: unknown[] }, cursorAt: number, cursorId: number, dueColumn: string, table = "member_streak", definitionId = def.id): Promise<PlanNode[]> {
  const client = await db.pool.connect();
  try {
    await client.query("begin");
    const { rows: mid } = await client.query<{ at: string; id: string }>(
      `select ${dueColumn}::text as at, id::text as id from ${table} where definition_id = $1 order by ${dueColumn}, id offset 3000 limit 1`,
      [definitionId],
    );
    const values = [...statement.values];
    values[cursorAt] = mid[0]!.at;
    values[cursorId] = mid[0]!.id;
    const { rows } = await client.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(`explain (analyze, format json) ${statement.text}`, values);
    return nodes(rows[0]!["QUERY PLAN"][0].Plan);
  } finally {
    await client.query("rollback");
    client.release();
  }
}

function expectPageRead(plan: PlanNode[], index: string): void {
  expect(plan.filter((n) => n["Node Type"] === "Seq Scan" && n["Relation Name"] === "member_streak")).toEqual([]);
  const scans = plan.filter((n) => n["Index Name"] === index);
  expect(scans).toHaveLength(1);
  const read = scans[0]!["Actual Rows"] * scans[0]!["Actual Loops"] + (scans[0]!["Rows Removed by Filter"] ?? 0);
  if (process.env.SHOW_PLAN_READS) console.log(index, "entries read for a page of", PAGE, ":", read);
  // About two pages of entries (half of them in the other id range); an O(rows due) page would read thousands.
  expect(read).toBeGreaterThanOrEqual(PAGE);
  expect(read).toBeLessThanOrEqual(3 * PAGE);
}

/** A team page: one range read of the keyset index, about a page of entries, no sequential scan of team. */
function expectTeamPageRead(plan: PlanNode[], index: string): void {
  expect(plan.filter((n) => n["Node Type"] === "Seq Scan" && n["Relation Name"] === "team")).toEqual([]);
  const scans = plan.filter((n) => n["Index Name"] === index);
  expect(scans).toHaveLength(1);
  const read = scans[0]!["Actual Rows"] * scans[0]!["Actual Loops"] + (scans[0]!["Rows Removed by Filter"] ?? 0);
  expect(read).toBeGreaterThanOrEqual(PAGE);
  expect(read).toBeLessThanOrEqual(2 * PAGE);
}

describe("sweep pages", () => {
  it("plans/team_break_page_reads_about_a_page_of_the_keyset_index", async () => {
    const statement = await firstStatement((pool) => sweepTeamBreaks(pool, teamDef, teamRuleOf(teamDef)!, BREAK_AT + HOUR, { pageSize: PAGE }));
    expectTeamPageRead(await explainMidSweep(statement, 2, 3, "break_at", "team", teamDef.id), "team_break_page");
  });

  it("plans/team_at_risk_page_reads_about_a_page_of_the_keyset_index", async () => {
    const statement = await firstStatement((pool) => sweepTeamAtRisk(pool, teamDef, teamRuleOf(teamDef)!, AT_RISK_AT + HOUR, { pageSize: PAGE }));
    expectTeamPageRead(await explainMidSweep(statement, 2, 3, "at_risk_at", "team", teamDef.id), "team_at_risk_page");
  });

  it("plans/break_page_reads_about_a_page_of_the_keyset_index", async () => {
    const statement = await firstStatement((pool) => sweepBreaks(pool, def, BREAK_AT + HOUR, { pageSize: PAGE }));
    expectPageRead(await explainMidSweep(statement, 8, 9, "break_at"), "member_streak_break_page");
  });

  it("plans/at_risk_page_reads_about_a_page_of_the_keyset_index", async () => {
    const statement = await firstStatement((pool) => sweepAtRisk(pool, def, AT_RISK_AT + HOUR, { pageSize: PAGE }));
    expectPageRead(await explainMidSweep(statement, 6, 7, "at_risk_at"), "member_streak_at_risk_page");
  });

  // The advance sweep runs after the break sweep at every due instant; its rows (FREEZE / SETTLE, or a break in a
  // pause) are few. A whole cohort due to BREAK must cost it nothing: paging by id with the kind as a filter read
  // every row of the definition (10 million after a 10-million cohort), and stale statistics right after a
  // break sweep made that a scan of the table.
  it("plans/advance_page_reads_none_of_a_cohort_due_to_break", async () => {
    const statement = await firstTransactionStatement((pool) => sweepAdvance(pool, def, BREAK_AT + HOUR, { pageSize: PAGE }));
    const client = await db.pool.connect();
    try {
      await client.query("begin");
      const { rows } = await client.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(`explain (analyze, format json) ${statement.text}`, statement.values);
      const plan = nodes(rows[0]!["QUERY PLAN"][0].Plan);
      expect(plan.filter((n) => n["Node Type"] === "Seq Scan" && n["Relation Name"] === "member_streak")).toEqual([]);
      const streakScans = plan.filter((n) => n["Relation Name"] === "member_streak");
      expect(streakScans.map((n) => n["Index Name"])).toEqual(["member_streak_advance_page"]);
      const read = streakScans.reduce((sum, n) => sum + n["Actual Rows"] * n["Actual Loops"] + (n["Rows Removed by Filter"] ?? 0), 0);
      expect(read).toBe(0);
    } finally {
      await client.query("rollback");
      client.release();
    }
    expect(await sweepAdvance(db.pool, def, BREAK_AT + HOUR, { pageSize: PAGE })).toBe(0);
  });

  it("sweeps/small_pages_finalise_the_whole_cohort_once", async () => {
    const started = Date.now();
    expect(await sweepAtRisk(db.pool, def, AT_RISK_AT + HOUR, { pageSize: PAGE })).toBe(COHORT);
    expect(await sweepAtRisk(db.pool, def, AT_RISK_AT + HOUR, { pageSize: PAGE })).toBe(0);
    expect(await sweepBreaks(db.pool, def, BREAK_AT + HOUR, { pageSize: PAGE })).toBe(COHORT);
    expect(await sweepBreaks(db.pool, def, BREAK_AT + HOUR, { pageSize: PAGE })).toBe(0);
    const { rows } = await db.pool.query<{ definition_id: string; status: string; n: number }>(
      "select definition_id, status, count(*)::int as n from member_streak group by definition_id, status order by definition_id = $1 desc",
      [def.id],
    );
    expect(rows.map((r) => [r.definition_id === def.id, r.status, r.n])).toEqual([[true, "BROKEN", COHORT], [false, "IN_PROGRESS", COHORT]]);

    // The events' public ids are time-ordered (migration 0020): UUIDv7 whose 48-bit millisecond prefix is when the
    // sweep wrote them, so each page's ids land at the right edge of streak_event_public_id_index.
    const ids = await db.pool.query<{ type: string; n: number; v7: number; first: string; last: string }>(
      `select type, count(*)::int as n, count(*) filter (where ${isUuidV7Sql("public_id")})::int as v7,
              min(('x' || substr(replace(public_id::text, '-', ''), 1, 12))::bit(48)::bigint)::text as first,
              max(('x' || substr(replace(public_id::text, '-', ''), 1, 12))::bit(48)::bigint)::text as last
         from streak_event where definition_id = $1 group by type order by type`,
      [def.id],
    );
    expect(ids.rows.map((r) => [r.type, r.n, r.v7])).toEqual([["streak.at_risk", COHORT, COHORT], ["streak.broken", COHORT, COHORT]]);
    for (const r of ids.rows) {
      expect(Number(r.first)).toBeGreaterThanOrEqual(started - 1_000);
      expect(Number(r.last)).toBeLessThanOrEqual(Date.now() + 1_000);
    }
  });

  // A sweep activity's attempt that Temporal gave up on (timed out, cancelled) throws from its heartbeat
  // (src/activities/sweep.activities.ts); the sweep must stop in every id range after the page in flight, so the
  // old attempt does not race its retry to the end.
  it("sweeps/an_on_page_that_throws_stops_every_id_range", async () => {
    const stop = new Error("attempt cancelled");
    await expect(sweepAtRisk(db.pool, otherDef, AT_RISK_AT + HOUR, { pageSize: PAGE, onPage: () => { throw stop; } })).rejects.toBe(stop);
    const { rows } = await db.pool.query<{ n: number }>(
      "select count(*)::int as n from member_streak where definition_id = $1 and at_risk_notified_window is not null",
      [otherDef.id],
    );
    // The page that threw, and at most the one page the other range had in flight.
    expect(rows[0]!.n).toBeGreaterThan(0);
    expect(rows[0]!.n).toBeLessThanOrEqual(2 * PAGE);
    // The next attempt finishes the cohort.
    expect(await sweepAtRisk(db.pool, otherDef, AT_RISK_AT + HOUR, { pageSize: PAGE })).toBe(COHORT - rows[0]!.n);
  });
});
