// Window close at scale (PRODUCT §5): the set-based sweeps a definition's sweeper workflow runs when a deadline
// bucket falls due. Every sweep is keyed by the definition and an instant `asOf` chosen by the workflow (its own
// deterministic clock), pages through due rows in (due time, id) order, and is idempotent: a row it finalised no longer matches,
// and every event it writes carries the dedupe key the domain path would write, so re-running changes nothing.
//
// (a) BREAK: rows whose deadlines() said "BREAK at break_at" and whose window is not neutralised by a pause are
//     exactly `current = 0, status = BROKEN` (domain persistence contract), so one UPDATE … RETURNING per page
//     finalises them, and the same statement inserts their streak.broken events. The JSON state (its own table,
//     member_streak_state, so these rows stay narrow — migration 0005) is left as it is: every reader and writer
//     advances it first, deterministically, to the same result.
// (b) ADVANCE: FREEZE / SETTLE rows and rows whose break fell inside a pause need the domain: each page is read
//     with FOR UPDATE, advanced, saved with fresh projections, with rewards, outbox rows and events as recording
//     activity would write them.
// (c) AT RISK: live streaks whose open window is unsatisfied and inside the at-risk lead, not yet told about
//     this window: one streak.at_risk per member and window, marked in at_risk_notified_window.
//
// Page cost must not grow with the table. A page of the break and at-risk sweeps is found by a keyset on the due
// time: the next `pageSize` rows after the last page's (due time, id) in the definition's partial index on
// (definition_id, due time, id) (migration 0013) — one index range read of a page, however many rows are due,
// finished or in other definitions. (Pages ordered by id with the due time as a filter read every due row of the
// definition and sorted them on each page: quadratic in the rows due, since a whole daily cohort shares one due
// instant.) The rows are then locked in id order, the UPDATE finds them by primary key
// (`id = any(array(select id from due))`) and the event's user_id by member primary key. A join to `due` / `member`
// let the planner hash-join against a sequential scan of the whole member_streak and member tables on every
// page. Each page is a single statement, so there are 20 commits per million rows: synchronous_commit off would
// save nothing.
//
// Row locks: each page locks its rows for one statement or transaction. Recording activity locks one member's
// rows in definition order; a sweep only ever locks rows of one definition, so the two cannot deadlock.
//
// Team definitions (issue 14, part 3): the break sweep also finalises the definition's teams, and the at-risk
// sweep sends the team's reminders instead of the members' own (team-sweeps.ts): on a team definition the
// reminder is about the team's window, and it goes only to the roster members who have not satisfied it.
import type { Pool } from "pg";
import { advance, type MemberStreakState } from "../../domain/streak-machine.ts";
import type { CatalogDefinition } from "../definitions/definition-catalog.ts";
import { persistTransition } from "../ingest/streak-persistence.ts";
import { breakHistorySql } from "../history/streak-history.ts";
import { inTransaction } from "../transaction.ts";
import { teamRuleOf } from "../teams/team-streaks.ts";
import { sweepTeamAtRisk, sweepTeamBreaks } from "../teams/team-sweeps.ts";
import { citusSweepAdvance, citusSweepAtRisk, citusSweepBreaks } from "./citus-sweeps.ts";

export interface SweepScope {
  readonly tenantId: string;
  readonly definitionId: string;
}

export interface SweepOptions {
  /** Rows per statement; bounds lock time and statement size. */
  readonly pageSize?: number;
  /** Called after every page with the running total (activities heartbeat from it). */
  readonly onPage?: (done: number) => void;
  /** Teams per page of the team sweeps (a transaction through the domain; team-sweeps.ts). */
  readonly teamPageSize?: number;
  /** The database is a Citus coordinator: the member sweeps run as citus-sweeps.ts does them. */
  readonly citus?: boolean;
}

const DEFAULT_BREAK_PAGE = 50_000;
const DEFAULT_ADVANCE_PAGE = 500;
const MAX_TS = "infinity";

/** The definition's pauses as two parallel arrays for unnest(); an open pause ends at 'infinity'. */
export function pauseArrays(def: CatalogDefinition): [string[], string[]] {
  return [def.pauses.map((p) => new Date(p.from).toISOString()), def.pauses.map((p) => (p.to === null ? MAX_TS : new Date(p.to).toISOString()))];
}

/**
 * Domain isNeutral(closeAt, grace) of the row `s`: a pause that starts at or before close + grace and ends after
 * close. `$from` and `$to` are the statement's parameters holding `pauseArrays`.
 */
export const neutralSql = (from: number, to: number) =>
  `exists (select 1 from unnest($${from}::timestamptz[], $${to}::timestamptz[]) as p(f, t) where p.f <= s.break_at and p.t > s.window_close_at)`;
const NEUTRAL = neutralSql(5, 6);

/**
 * The WITH item `page`: the definition's next `$4` rows due by `$3` after the keyset position, in one id range —
 * the range's bounds in parameters `range` and `range + 1`, the position (due time, id) in `after` and `after + 1`;
 * `$2` is the definition. One range read of the (definition_id, due, id) index.
 */
const pageSql = (due: "break_at" | "at_risk_at", range: number, after: number) => `page as materialized (
         select s.id, s.${due}
           from member_streak s
          where s.definition_id = $2 and s.${due} <= $3 and (s.${due}, s.id) > ($${after}::timestamptz, $${after + 1}::uuid)
            and s.id > $${range} and s.id <= $${range + 1}
          order by s.${due}, s.id
          limit $4
       )`;

/**
 * The answer of a page statement (WITH items `page` and `done`): rows finalised, rows the page found, and the page's
 * last (due time, id), where the next page starts.
 */
const pageAnswer = (done: string, due: string) =>
  `select (select count(*)::int from ${done}) as n, (select count(*)::int from page) as found, l.${due}::text as last_at, l.id::text as last_id
     from (select 1) one left join lateral (select ${due}, id from page order by ${due} desc, id desc limit 1) l on true`;

/** Where a range's next page starts: after this (due time, id) in the sweep's index order. */
interface PageCursor {
  readonly at: string;
  readonly id: string;
}

// Id ranges swept side by side, each on its own connection: (lower, upper], splitting the uuid space in halves.
// A page is one statement (its own transaction), CPU-bound in the backend; two backends use both cores of the
// development machine. The ranges are disjoint, so the two statements never wait for each other's rows; each
// locks only rows of this definition, in id order, like a single-range sweep (see "Row locks" above).
const ID_RANGES: readonly (readonly [string, string])[] = [
  ["00000000-0000-0000-0000-000000000000", "7fffffff-ffff-ffff-ffff-ffffffffffff"],
  ["7fffffff-ffff-ffff-ffff-ffffffffffff", "ffffffff-ffff-ffff-ffff-ffffffffffff"],
];

/**
 * Runs `page` over each id range concurrently until a page finds nothing; returns the rows done in all ranges.
 * If one range fails, the others stop after their current page and the first error is thrown, so a retried
 * activity never overlaps a leftover loop of the failed attempt.
 */
async function sweepRanges(
  options: SweepOptions,
  page: (after: PageCursor, lower: string, upper: string, pageSize: number) => Promise<{ n: number; found: number; last_at: string | null; last_id: string | null }>,
): Promise<number> {
  const pageSize = options.pageSize ?? DEFAULT_BREAK_PAGE;
  let total = 0;
  let failed = false;
  const settled = await Promise.allSettled(
    ID_RANGES.map(async ([lower, upper]) => {
      let after: PageCursor = { at: "-infinity", id: lower };
      while (!failed) {
        const { n, found, last_at, last_id } = await page(after, lower, upper, pageSize).catch((error: unknown) => {
          failed = true;
          throw error;
        });
        // A page can find rows and finalise none of them (each changed since: a concurrent sweep or recording took
        // it); the next page starts after them all the same. Only a page that finds nothing ends the range.
        if (found === 0 || last_at === null || last_id === null) return;
        total += n;
        after = { at: last_at, id: last_id };
        if (n > 0) options.onPage?.(total);
      }
    }),
  );
  for (const result of settled) if (result.status === "rejected") throw result.reason;
  return total;
}

/**
 * (a) Breaks every due BREAK row of the definition, with its streak.broken event; on a team definition, then
 * finalises its due teams (break, freeze or settle). Returns rows broken plus teams finalised.
 */
export async function sweepBreaks(pool: Pool, def: CatalogDefinition, asOf: number, options: SweepOptions = {}): Promise<number> {
  const members = options.citus === true ? await citusSweepBreaks(pool, def, asOf, options) : await sweepMemberBreaks(pool, def, asOf, options);
  const rule = teamRuleOf(def);
  if (rule === null) return members;
  return members + await sweepTeamBreaks(pool, def, rule, asOf, { pageSize: options.teamPageSize, onPage: (n) => options.onPage?.(members + n) });
}

async function sweepMemberBreaks(pool: Pool, def: CatalogDefinition, asOf: number, options: SweepOptions): Promise<number> {
  const [froms, tos] = pauseArrays(def);
  return sweepRanges(options, async (after, lower, upper, pageSize) => {
    const { rows } = await pool.query<{ n: number; found: number; last_at: string | null; last_id: string | null }>(
      `with ${pageSql("break_at", 7, 9)}, due as materialized (
         select s.id, s.tenant_id, s.member_id, s.definition_id, s.current_count, s.break_at, s.break_window_key, s.window_start_at, s.window_close_at
           from member_streak s
          where s.id = any (array(select id from page))
            and s.tenant_id = $1 and s.definition_id = $2 and s.break_kind = 'BREAK' and s.break_at <= $3 and not ${NEUTRAL}
          order by s.id
          for update of s
       ), broken as (
         update member_streak s
            set status = 'BROKEN', current_count = 0, window_start_at = null, window_close_at = null, at_risk_at = null, break_at = null,
                break_kind = null, break_window_key = null, version = s.version + 1, updated_at = now()
          where s.id = any (array(select id from due))
         returning s.id
       ), events as (
         -- From \`due\`, not \`broken\`: every row \`due\` locked is ours for the statement, so the UPDATE breaks each
         -- of them, and \`due\` still holds the values the UPDATE clears (the count and window the event reports).
         insert into streak_event (tenant_id, type, member_id, definition_id, dedupe_key, payload, occurred_at, created_at)
         select d.tenant_id, 'streak.broken', d.member_id, d.definition_id, d.id::text || ':broken:' || d.break_window_key,
                jsonb_build_object('user_id', (select m.external_id from member m where m.id = d.member_id), 'definition_id', d.definition_id,
                  'final_count', d.current_count, 'window_key', d.break_window_key),
                d.break_at, now()
           from due d
       ), ${breakHistorySql(def)}
       ${pageAnswer("broken", "break_at")}`,
      [def.tenantId, def.id, new Date(asOf), pageSize, froms, tos, lower, upper, after.at, after.id],
    );
    return rows[0]!;
  });
}

/**
 * (b) Advances FREEZE / SETTLE rows and rows whose break fell in a pause through the domain. Returns rows advanced.
 *
 * Two keyset passes over (break_at, id), each a range read of a partial index: first the due rows whose kind is
 * not BREAK (FREEZE, SETTLE: `member_streak_advance_page`, migration 0017, which holds only them), then — only
 * when the definition has pauses — the due BREAK rows inside a pause, from the first pause's start on (the break
 * page index). Neither pass reads the BREAK rows the break sweep just finalised: paging by id with the kind as a
 * filter read every row of the definition once per sweep, 10 million rows after a 10-million-row cohort broke.
 */
export async function sweepAdvance(pool: Pool, def: CatalogDefinition, asOf: number, options: SweepOptions = {}): Promise<number> {
  if (options.citus === true) return citusSweepAdvance(pool, def, asOf, options);
  const [froms, tos] = pauseArrays(def);
  const opts = { pausedIntervals: def.pauses };
  const passes = [ADVANCE_NOT_BREAK, ...(def.pauses.length > 0 ? [ADVANCE_PAUSED_BREAK] : [])];
  let total = 0;
  for (const pass of passes) {
    let after: PageCursor = { at: "-infinity", id: "00000000-0000-0000-0000-000000000000" };
    for (;;) {
      const n = await inTransaction(pool, async (client) => {
        const { rows } = await client.query<{ id: string; member_id: string; external_id: string; state: MemberStreakState; at: string }>(
          `select s.id, s.member_id, m.external_id, st.state, s.break_at::text as at
             from member_streak s join member m on m.id = s.member_id join member_streak_state st on st.member_id = s.member_id and st.member_streak_id = s.id
            where s.tenant_id = $1 and s.definition_id = $2 and s.break_at <= $3 and (s.break_at, s.id) > ($5::timestamptz, $6::uuid)
              and ${pass}
            order by s.break_at, s.id
            limit $4
            for update of s, st`,
          [def.tenantId, def.id, new Date(asOf), options.pageSize ?? DEFAULT_ADVANCE_PAGE, after.at, after.id,
            ...(pass === ADVANCE_PAUSED_BREAK ? [froms, tos] : [])],
        );
        for (const row of rows) {
          const next = advance(def.rules, row.state, asOf, opts);
          const owner = { tenantId: def.tenantId, memberId: row.member_id, memberExternalId: row.external_id, memberStreakId: row.id, activityId: null };
          await persistTransition(client, owner, def, next.state, next.effects, asOf, next);
        }
        if (rows.length > 0) after = { at: rows[rows.length - 1]!.at, id: rows[rows.length - 1]!.id };
        return rows.length;
      });
      if (n === 0) break;
      total += n;
      options.onPage?.(total);
    }
  }
  return total;
}

/**
 * The advance's first pass: due rows that do not simply break (the predicate of `member_streak_advance_page`).
 * Also the Citus advance sweep's (citus-sweeps.ts), whose page statement has the same parameters $1-$3, $7, $8.
 */
export const ADVANCE_NOT_BREAK = "s.break_kind is distinct from 'BREAK'";
/** Its second pass: due BREAK rows whose window a pause neutralises, at or after the first pause's start ($7). */
export const ADVANCE_PAUSED_BREAK = `s.break_kind = 'BREAK' and s.break_at >= (select min(f) from unnest($7::timestamptz[]) as f) and ${neutralSql(7, 8)}`;

/**
 * (c) Emits streak.at_risk once per member and window; on a team definition, once per team and window to each
 * roster member who has not acted yet (the members' own streaks send none). Returns reminders emitted.
 */
export async function sweepAtRisk(pool: Pool, def: CatalogDefinition, asOf: number, options: SweepOptions = {}): Promise<number> {
  const rule = teamRuleOf(def);
  if (rule !== null) return sweepTeamAtRisk(pool, def, rule, asOf, { pageSize: options.teamPageSize, onPage: options.onPage });
  if (options.citus === true) return citusSweepAtRisk(pool, def, asOf, options);
  return sweepRanges(options, async (after, lower, upper, pageSize) => {
    const { rows } = await pool.query<{ n: number; found: number; last_at: string | null; last_id: string | null }>(
      `with ${pageSql("at_risk_at", 5, 7)}, due as materialized (
         select s.id
           from member_streak s
          where s.id = any (array(select id from page))
            and s.tenant_id = $1 and s.definition_id = $2 and s.at_risk_at <= $3 and s.break_at > $3
            and s.at_risk_notified_window is distinct from s.break_window_key
          order by s.id
          for update of s
       ), marked as (
         update member_streak s set at_risk_notified_window = s.break_window_key
          where s.id = any (array(select id from due))
         returning s.id, s.tenant_id, s.member_id, s.definition_id, s.current_count, s.window_close_at, s.at_risk_at, s.break_window_key
       ), events as (
         insert into streak_event (tenant_id, type, member_id, definition_id, dedupe_key, payload, occurred_at, created_at)
         select k.tenant_id, 'streak.at_risk', k.member_id, k.definition_id, k.id::text || ':at_risk:' || k.break_window_key,
                jsonb_build_object('user_id', (select m.external_id from member m where m.id = k.member_id), 'definition_id', k.definition_id,
                  'current_count', k.current_count, 'window_key', k.break_window_key,
                  'window_end_time', to_char(k.window_close_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
                k.at_risk_at, now()
           from marked k
       )
       ${pageAnswer("marked", "at_risk_at")}`,
      [def.tenantId, def.id, new Date(asOf), pageSize, lower, upper, after.at, after.id],
    );
    return rows[0]!;
  });
}

/**
 * The next instant the definition needs a sweep: the earliest break, or the earliest at-risk reminder after
 * `atRiskAfter` (reminders at or before it were handled by the sweep at that instant), of its member streaks and
 * its teams. Null when nothing is due.
 */
export async function nextDueAt(pool: Pool, scope: SweepScope, atRiskAfter: number | null): Promise<number | null> {
  const { rows } = await pool.query<{ due: Date | null }>(
    `select least(
       (select min(break_at) from member_streak where definition_id = $2 and tenant_id = $1 and break_at is not null),
       (select min(at_risk_at) from member_streak where definition_id = $2 and tenant_id = $1 and at_risk_at > $3),
       (select min(break_at) from team where definition_id = $2 and tenant_id = $1 and break_at is not null),
       (select min(at_risk_at) from team where definition_id = $2 and tenant_id = $1 and at_risk_at > $3)
     ) as due`,
    [scope.tenantId, scope.definitionId, new Date(atRiskAfter ?? 0)],
  );
  return rows[0]?.due?.getTime() ?? null;
}
