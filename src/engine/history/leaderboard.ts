// Leaderboards per definition (issue 13, item 2): the top members by current or longest count, and one member's
// rank with their neighbours. Each read is ONE statement over the board's partial index (migration 0009), which
// holds the definition's ranked rows in board order: count descending, then whoever reached the count first
// (count_reached_at / longest_reached_at, set by every writer that changes a count, in the same UPDATE), then id.
//
// Exact at read time, as progress reads are (PRODUCT §5): a streak whose window passed unsatisfied is broken from
// that instant even if the sweeper has not run yet. Its row still carries its old count until the sweep sets it
// to 0, so the current board leaves out every row whose stored deadline says "BREAK at break_at" with
// break_at <= now, unless a pause neutralises that window (the sweeps' own NEUTRAL test). Rows due for FREEZE
// keep their count (a freeze is consumed, the count stands). Rows due for SETTLE (held windows counted at close)
// rank with their stored count until the sweep settles them. The longest board needs no such test: longest
// never decreases.
//
// Privacy: a member's opt-out is stored on the member and copied onto each of their member_streak rows
// (leaderboard_opt_out, part of the indexes' predicate), so ranks are counted from the index alone. A streak row
// created by a transaction that read the member's flag just before a concurrent opt-out committed keeps the old
// flag; the next SetLeaderboardPreference corrects it.
import pg, { type CustomTypesConfig, type Pool } from "pg";
import type { CatalogDefinition } from "../definitions/definition-catalog.ts";
import { notFoundError } from "../engine-error.ts";
import { inTransaction } from "../transaction.ts";
import { neutralSql, pauseArrays } from "../sweeps/window-sweeps.ts";
import { createBatcher, type Batcher } from "../group-batcher.ts";

export type LeaderboardMetric = "CURRENT_COUNT" | "LONGEST_COUNT";

export interface LeaderboardEntry {
  readonly rank: number;
  readonly memberExternalId: string;
  readonly displayName: string | null;
  readonly count: number;
  readonly reachedAt: number | null;
}

export interface MemberRank {
  /** Null when the member has no ranked row: no streak, a count of 0, a broken streak, or opted out. */
  readonly entry: LeaderboardEntry | null;
  /** Up to `neighbours` entries ranked just before the member, best first. */
  readonly above: readonly LeaderboardEntry[];
  /** Up to `neighbours` entries ranked just after the member, best first. */
  readonly below: readonly LeaderboardEntry[];
}

export interface LeaderboardPreference {
  readonly memberExternalId: string;
  readonly optOut: boolean;
  readonly displayName: string | null;
}

export interface LeaderboardStore {
  /**
   * Frozen; the same array as the last call's while the board's answer is unchanged (see createLeaderboardStore).
   * `now` is the current time, not a chosen instant: concurrent reads share a statement, which reads the board as
   * of the latest `now` among them.
   */
  top(def: CatalogDefinition, metric: LeaderboardMetric, limit: number, now: number): Promise<readonly LeaderboardEntry[]>;
  rank(def: CatalogDefinition, metric: LeaderboardMetric, memberExternalId: string, neighbours: number, now: number): Promise<MemberRank>;
  /** Undefined fields keep the stored value; an empty display name clears it. */
  setPreference(tenantId: string, memberExternalId: string, change: { optOut?: boolean | undefined; displayName?: string | undefined }): Promise<LeaderboardPreference>;
  hiddenFromEndUsers(tenantId: string): Promise<boolean>;
  setHiddenFromEndUsers(tenantId: string, hidden: boolean, now: number): Promise<boolean>;
}

interface Board {
  readonly count: string;
  readonly reached: string;
  /**
   * A predicate on `s`, true while the row's count stands at the read's instant; parameters `$n` (now), `$n+1`
   * and `$n+2` (the definition's pauses) follow the statement's own, the instant written as `instant(n)` gives it.
   * Null: every ranked row stands.
   */
  readonly live: ((n: number, paused: boolean, instant: Instant) => string) | null;
}

const BOARDS: Record<LeaderboardMetric, Board> = {
  CURRENT_COUNT: {
    count: "current_count",
    reached: "count_reached_at",
    // A definition never paused needs no pause test (the common case). With pauses, the arrays' lengths make custom
    // plans cheaper, so PostgreSQL plans each execution (an init plan over them is refused by Citus inside the
    // correlated EXISTS).
    live: (n, paused, instant) => `(s.break_kind is distinct from 'BREAK' or s.break_at > ${instant(n)}${paused ? ` or ${neutralSql(n + 1, n + 2)}` : ""})`,
  },
  LONGEST_COUNT: { count: "longest_count", reached: "longest_reached_at", live: null },
};

/** How a board statement writes its instant, parameter `$n`. */
type Instant = (n: number) => string;

/**
 * The top N reads about N index entries: planning it costs about as much as running it, so its plan is kept
 * (rowCount) and the instant read through an init plan, which the planner estimates alike with or without its
 * value, so the generic plan costs what a custom one does.
 */
const HIDDEN_INSTANT: Instant = (n) => `(select $${n}::timestamptz)`;

/**
 * A rank counts every entry ahead of the member (about 500,000 for a random one of 1,000,000), and planning (about
 * 1.5 ms) is small beside the count: its instant stays a parameter, each execution is planned for its values, and
 * it always carries the pause test (with no pauses, empty arrays). Measured at 1,000,000 (bench/leaderboard.ts's
 * data, 40 random members, serial): 95–97 ms a rank with the pause test, 113–118 ms without it or with the instant
 * behind an init plan, under a generic or a custom plan alike.
 */
const PLANNED_INSTANT: Instant = (n) => `$${n}`;

/**
 * The rows of the board: the index's predicate and key prefix ($1 tenant, $2 definition), ranked rows only.
 * `paused`: the definition has pauses (see `liveArgs`).
 */
const ranked = (b: Board, n: number, paused: boolean, instant: Instant) =>
  `s.tenant_id = $1 and s.definition_id = $2 and s.${b.count} > 0 and not s.leaderboard_opt_out${b.live ? ` and ${b.live(n, paused, instant)}` : ""}`;

/**
 * A statement's row count, written into its text. A `limit $n` parameter leaves the planner a generic plan costed
 * for a tenth of the board, so it planned every execution anew (planning the top 100 cost about as much as running
 * it); with a literal the generic plan costs what a custom one does and the top statement is planned once per
 * connection. One statement per size: at most 101 top and 26 rank sizes.
 */
function rowCount(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`a leaderboard row count must be a non-negative integer, not ${n}`);
  return n;
}

/**
 * Top `limit` rows in board order: count, reached_at, external_id, display_name (what an entry shows; the external
 * id, unique in the tenant, tells the members apart) — the plain
 * `select … order by … limit n` over the board's index range. The store reads them as text (`TEXT_ROWS`) and
 * compares them with the last rows it read (see `createLeaderboardStore`). See `liveArgs` for the parameters after
 * `$2`.
 */
export function topSql(metric: LeaderboardMetric, limit: number, paused: boolean): string {
  const b = BOARDS[metric];
  return `select s.${b.count} as count, s.${b.reached} as reached_at, m.external_id, m.display_name
       from member_streak s join member m on m.id = s.member_id
      where ${ranked(b, 3, paused, HIDDEN_INSTANT)}
      order by s.${b.count} desc, s.${b.reached}, s.id
      limit ${rowCount(limit)}`;
}

/** Whether the top statements of `def` test pauses (see BOARDS; the rank statement always does). */
export const hasPauses = (def: CatalogDefinition): boolean => def.pauses.length > 0;

/**
 * The parameters after a board statement's own: now, and the definition's pauses if the statement tests them
 * (`pauseTest`), for the current board only. ISO strings (the statement types them timestamptz), as the driver's own rendering of a Date
 * costs more.
 */
export function liveArgs(metric: LeaderboardMetric, def: CatalogDefinition, now: number, pauseTest: boolean): unknown[] {
  if (!BOARDS[metric].live) return [];
  return pauseTest ? [new Date(now).toISOString(), ...pauseArrays(def)] : [new Date(now).toISOString()];
}

/**
 * A board statement: its prepared name, and its text, built once per name (a name stands for one text), and whether
 * the text tests pauses, which decides its parameters (`liveArgs`).
 */
interface BoardStatement {
  readonly name: string;
  readonly text: string;
  readonly pauseTest: boolean;
}

/** At most 2 metrics × (101 sizes × 2 pause tests + 26 sizes): the texts need not be built again per read. */
const BOARD_STATEMENTS = new Map<string, BoardStatement>();

function boardStatement(name: string, pauseTest: boolean, build: () => string): BoardStatement {
  let found = BOARD_STATEMENTS.get(name);
  if (!found) BOARD_STATEMENTS.set(name, (found = { name, text: build(), pauseTest }));
  return found;
}

const topStatement = (metric: LeaderboardMetric, limit: number, paused: boolean) =>
  boardStatement(`leaderboard_top_${metric}_${limit}${paused ? "_paused" : ""}`, paused, () => topSql(metric, limit, paused));

const rankStatement = (metric: LeaderboardMetric, neighbours: number) =>
  boardStatement(`leaderboard_rank_${metric}_${neighbours}`, true, () => rankSql(metric, neighbours));

/**
 * One member's rank and neighbours in one statement: the member's row (`me`, external id `$3`), the number of
 * ranked rows before it (two index ranges: a higher count; the same count reached earlier), and the `neighbours`
 * rows on either side, each side the first `neighbours` of two index ranges read in the needed direction. See
 * `liveArgs` for the parameters after `$3`.
 */
export function rankSql(metric: LeaderboardMetric, neighbours: number): string {
  const b = BOARDS[metric];
  const rankedRows = ranked(b, 4, true, PLANNED_INSTANT);
  const n = rowCount(neighbours);
  const c = `s.${b.count}`;
  const r = `s.${b.reached}`;
  const row = `s.id, s.member_id, ${c} as count, ${r} as reached_at`;
  return `with me as materialized (
       select ${row}
         from member m join member_streak s on s.member_id = m.id and s.tenant_id = m.tenant_id and s.definition_id = $2
        where m.tenant_id = $1 and m.external_id = $3 and ${rankedRows}
     ), ahead as (
       select (select count(*) from member_streak s where ${rankedRows} and ${c} > (select count from me))
            + (select count(*) from member_streak s where ${rankedRows} and ${c} = (select count from me)
                 and (${r}, s.id) < ((select reached_at from me), (select id from me))) as n
     ), above as (
       select * from (
         (select ${row} from member_streak s where ${rankedRows} and ${c} = (select count from me)
             and (${r}, s.id) < ((select reached_at from me), (select id from me))
           order by ${r} desc, s.id desc limit ${n})
         union all
         (select ${row} from member_streak s where ${rankedRows} and ${c} > (select count from me)
           order by ${c}, ${r} desc, s.id desc limit ${n})
       ) x order by x.count, x.reached_at desc, x.id desc limit ${n}
     ), below as (
       select * from (
         (select ${row} from member_streak s where ${rankedRows} and ${c} = (select count from me)
             and (${r}, s.id) > ((select reached_at from me), (select id from me))
           order by ${r}, s.id limit ${n})
         union all
         (select ${row} from member_streak s where ${rankedRows} and ${c} < (select count from me)
           order by ${c} desc, ${r}, s.id limit ${n})
       ) x order by x.count desc, x.reached_at, x.id limit ${n}
     ), found as (
       select 0 as side, me.*, (select n from ahead) as ahead from me
       union all select -1, above.*, null from above
       union all select 1, below.*, null from below
     )
     select f.side, f.count, f.reached_at, f.ahead, m.external_id, m.display_name
       from found f join member m on m.id = f.member_id
      where exists (select 1 from me)
      order by f.side, f.count desc, f.reached_at, f.id`;
}

interface EntryRow {
  count: number; reached_at: Date | null; external_id: string; display_name: string | null;
}

const entry = (r: EntryRow, rank: number): LeaderboardEntry => ({
  rank, memberExternalId: r.external_id, displayName: r.display_name, count: r.count, reachedAt: r.reached_at?.getTime() ?? null,
});

/** A `topSql` row as the server sent it: every column as text (null stays null). */
type TopRow = [count: string, reachedAt: string | null, externalId: string, displayName: string | null];

/** Columns stay the server's text: a board read again is compared before anything is converted. */
const TEXT_ROWS = { getTypeParser: () => (text: string) => text } as unknown as CustomTypesConfig;
const parseTimestamptz = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ) as (text: string) => Date;

const sameRows = (a: readonly TopRow[], b: readonly TopRow[]) =>
  a.length === b.length && a.every((row, i) => row.every((field, j) => field === b[i]![j]));

/** The entries of `topSql` rows, frozen: they are shared by every read that got the same rows. */
export function parseTop(rows: readonly TopRow[]): readonly LeaderboardEntry[] {
  return Object.freeze(rows.map(([count, reachedAt, memberExternalId, displayName], i) =>
    // The driver's own timestamptz parser: the Date (milliseconds) a driver-typed column would give.
    Object.freeze({ rank: i + 1, memberExternalId, displayName, count: Number(count), reachedAt: reachedAt === null ? null : parseTimestamptz(reachedAt).getTime() })));
}

/** Boards whose last answer a store keeps (tenant, definition and its version, metric and size each make a board). */
export const TOP_CACHE_BOARDS = 512;

/** Statements one board runs at once in a process (reads that arrive meanwhile share the next). */
export const TOP_STATEMENTS_PER_BOARD = 2;

/** Top-board reads and the statements that answered them, in this process since it started (the bench reads these). */
const topTotals = { calls: 0, statements: 0, statementMillis: 0 };
/** `statementMillis`: the statements' summed wall time, from asking the pool for a connection to having the rows. */
export const leaderboardTopTotals = (): { readonly calls: number; readonly statements: number; readonly statementMillis: number } => ({ ...topTotals });

interface TopCall {
  readonly def: CatalogDefinition;
  readonly now: number;
}

/**
 * `preparedStatements` (default true; false behind a transaction-pooling proxy): the board statements are named,
 * so each connection parses and plans them once — planning the rank statement costs more than running it.
 *
 * `top`: concurrent reads of one board share one statement. A board runs up to `TOP_STATEMENTS_PER_BOARD` statements at
 * a time; reads that arrive while they run wait for the next one, which starts when one ends and answers all of
 * them (bench:leaderboard: two overlap the API's work on one answer with the next statement). A read never joins a
 * statement that started before it arrived, so every answer is the board at an instant after its call began and
 * before it ended — exact, as one statement per call would be. The statement takes the latest `now` of the reads it
 * answers (each a moment before it started). On an idle board a read waits only for the end of the current
 * event-loop turn (group-batcher.ts).
 *
 * The store reads the statement's rows as the server's text and keeps, per board, the last rows and their entries:
 * when the statement returns the same rows again, the same (frozen) entries array is returned, so the API can reuse
 * what it built from it (src/api/services/leaderboard.service.ts). The rows are the whole answer, so equal rows are
 * equal boards, in any process, at any instant. (Plain rows rather than one rendered JSON value: the server spends
 * about a quarter less per statement — bench:leaderboard runs the API's statement in pgbench.)
 */
export function createLeaderboardStore(pool: Pool, options: { preparedStatements?: boolean } = {}): LeaderboardStore {
  const prepared = options.preparedStatements ?? true;
  // The statement's own parameters, then the live ones its text needs (the instant, and pauses if it tests them).
  const statement = ({ name, text, pauseTest }: BoardStatement, own: unknown[], metric: LeaderboardMetric, def: CatalogDefinition, now: number) => {
    const values = [...own, ...liveArgs(metric, def, now, pauseTest)];
    return prepared ? { name, text, values } : { text, values };
  };
  const boards = new Map<string, Batcher<TopCall, readonly LeaderboardEntry[]>>();

  function board(metric: LeaderboardMetric, limit: number): Batcher<TopCall, readonly LeaderboardEntry[]> {
    let last: { readonly rows: readonly TopRow[]; readonly entries: readonly LeaderboardEntry[] } | undefined;
    return createBatcher(async (calls) => {
      const latest = calls.reduce((a, b) => (b.now > a.now ? b : a));
      topTotals.statements++;
      const started = performance.now();
      const { rows } = await pool.query<TopRow>({
        ...statement(topStatement(metric, limit, hasPauses(latest.def)), [latest.def.tenantId, latest.def.id], metric, latest.def, latest.now),
        rowMode: "array" as const,
        types: TEXT_ROWS,
      });
      topTotals.statementMillis += performance.now() - started;
      if (!last || !sameRows(last.rows, rows)) last = { rows, entries: parseTop(rows) };
      const value = last.entries;
      return calls.map(() => ({ ok: true, value }));
    }, { maxBatch: Number.MAX_SAFE_INTEGER, maxInFlight: TOP_STATEMENTS_PER_BOARD });
  }

  return {
    top(def, metric, limit, now) {
      topTotals.calls++;
      const key = `${def.tenantId}/${def.id}/${def.version}/${metric}/${limit}`;
      let batcher = boards.get(key);
      // Least recently read first out: a board read again moves to the end.
      if (batcher) boards.delete(key);
      // A board dropped here may still be running a statement; its reads are answered all the same.
      else if (boards.size >= TOP_CACHE_BOARDS) boards.delete(boards.keys().next().value!);
      boards.set(key, (batcher ??= board(metric, limit)));
      return batcher.submit({ def, now });
    },

    async rank(def, metric, memberExternalId, neighbours, now) {
      const { rows } = await pool.query<EntryRow & { side: number; ahead: string | null }>(statement(rankStatement(metric, neighbours), [def.tenantId, def.id, memberExternalId], metric, def, now));
      const me = rows.find((r) => r.side === 0);
      if (!me) return { entry: null, above: [], below: [] };
      const rank = Number(me.ahead) + 1;
      const above = rows.filter((r) => r.side === -1);
      const below = rows.filter((r) => r.side === 1);
      return {
        entry: entry(me, rank),
        above: above.map((r, i) => entry(r, rank - above.length + i)),
        below: below.map((r, i) => entry(r, rank + 1 + i)),
      };
    },

    async setPreference(tenantId, memberExternalId, change) {
      return inTransaction(pool, async (client) => {
        const { rows } = await client.query<{ id: string; leaderboard_opt_out: boolean; display_name: string | null }>(
          `update member set leaderboard_opt_out = coalesce($3, leaderboard_opt_out),
                  display_name = case when $4::text is null then display_name else nullif($4::text, '') end,
                  updated_at = now()
            where tenant_id = $1 and external_id = $2
           returning id, leaderboard_opt_out, display_name`,
          [tenantId, memberExternalId, change.optOut ?? null, change.displayName ?? null],
        );
        const member = rows[0];
        if (!member) throw notFoundError("member", { member_external_id: memberExternalId });
        // The member row is locked until commit; copy the flag onto every streak row of the member.
        await client.query(
          "update member_streak set leaderboard_opt_out = $3 where tenant_id = $1 and member_id = $2 and leaderboard_opt_out is distinct from $3",
          [tenantId, member.id, member.leaderboard_opt_out],
        );
        return { memberExternalId, optOut: member.leaderboard_opt_out, displayName: member.display_name };
      });
    },

    async hiddenFromEndUsers(tenantId) {
      const { rows } = await pool.query<{ hidden: boolean }>("select hidden_from_end_users as hidden from tenant_leaderboard_settings where tenant_id = $1", [tenantId]);
      return rows[0]?.hidden ?? false;
    },

    async setHiddenFromEndUsers(tenantId, hidden, now) {
      await pool.query(
        `insert into tenant_leaderboard_settings (tenant_id, hidden_from_end_users, updated_at) values ($1, $2, $3)
         on conflict (tenant_id) do update set hidden_from_end_users = excluded.hidden_from_end_users, updated_at = excluded.updated_at`,
        [tenantId, hidden, new Date(now)],
      );
      return hidden;
    },
  };
}
