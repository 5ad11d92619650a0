// Per-window streak history (issue 13, item 1; migration 0010). Finalised windows are rows of streak_window,
// written in the transaction — or the statement — that finalises them, so the history never disagrees with the
// streak:
// - every domain transition (recording activity one by one or batched, freeze grants, repairs, the sweep's
//   ADVANCE pages) carries the windows its folds moved into the base (`Transition.finalised`); they are upserted
//   beside the state. A window is stored once, by its start: a writer that folds it again (the break sweep never
//   rewrites the JSON state, so the next writer finalises the broken window a second time) writes the same row.
// - a repair rewrites what it restored (`Transition.bridge`): the missed windows since the break become BRIDGED
//   and the run since the break counts on from the restored count.
// - the set-based break sweep stores the broken window from the row's projected columns (`breakHistorySql`).
// Reads merge the stored rows with the windows after the stored base, folded at `now` by the domain
// (`unsavedWindows`): those not saved yet and the live ones (open, in grace).
import type { Pool, PoolClient } from "pg";
import { unsavedWindows, type Bridge, type WindowRecord } from "../../domain/streak-machine.ts";
import type { Condition } from "../../domain/rules.ts";
import type { CatalogDefinition } from "../definitions/definition-catalog.ts";
import { notFoundError } from "../engine-error.ts";

/** Whose windows a write stores. */
export interface HistoryOwner {
  readonly tenantId: string;
  readonly memberId: string;
  readonly definitionId: string;
  readonly memberStreakId: string;
}

/** The rows `insertStreakWindowsSql` reads from its JSON parameter; a window listed twice is stored once (the last). */
export function streakWindowRecords(items: readonly { readonly owner: HistoryOwner; readonly windows: readonly WindowRecord[] }[], now: number): string {
  const rows = new Map<string, object>();
  const at = new Date(now).toISOString();
  for (const { owner, windows } of items) {
    for (const w of windows) {
      rows.set(`${owner.memberStreakId}|${w.startMs}`, {
        member_streak_id: owner.memberStreakId, tenant_id: owner.tenantId, member_id: owner.memberId, definition_id: owner.definitionId,
        window_key: w.key, start_at: new Date(w.startMs).toISOString(), end_at: new Date(w.endMs).toISOString(), outcome: w.outcome,
        activity_count: w.count, value_sum: w.sum, distinct_keys: w.distinct, count_after: w.countAfter, finalised_at: at,
      });
    }
  }
  return JSON.stringify([...rows.values()]);
}

const UPSERT = `update set window_key = excluded.window_key, end_at = excluded.end_at, outcome = excluded.outcome,
       activity_count = excluded.activity_count, value_sum = excluded.value_sum, distinct_keys = excluded.distinct_keys,
       count_after = excluded.count_after`;

/**
 * An INSERT (usable as a WITH item) of the windows in `streakWindowRecords` from parameter `$param`. A window
 * stored before is overwritten with the domain's values (it is the same window folded from the same base), or
 * kept with `keep` (a repair's bridged windows never replace a stored one).
 */
export function insertStreakWindowsSql(param: number, keep = false): string {
  return `insert into streak_window (member_streak_id, start_at, window_key, tenant_id, member_id, definition_id, end_at, outcome,
       activity_count, value_sum, distinct_keys, count_after, finalised_at)
     select x.member_streak_id, x.start_at, x.window_key, x.tenant_id, x.member_id, x.definition_id, x.end_at, x.outcome,
       x.activity_count, x.value_sum, x.distinct_keys, x.count_after, x.finalised_at
       from jsonb_to_recordset($${param}::jsonb) as x(member_streak_id uuid, start_at timestamptz, window_key varchar, tenant_id uuid, member_id uuid,
         definition_id uuid, end_at timestamptz, outcome varchar, activity_count int, value_sum float8, distinct_keys jsonb, count_after int,
         finalised_at timestamptz)
     on conflict on constraint streak_window_pkey do ${keep ? "nothing" : UPSERT}`;
}

/** Stores what one transition finalised, and applies a repair's rewrite of the history it restored. */
export async function saveStreakHistory(
  client: Pick<PoolClient, "query">,
  owner: HistoryOwner,
  change: { readonly finalised?: readonly WindowRecord[]; readonly bridge?: Bridge },
  now: number,
): Promise<void> {
  const finalised = change.finalised ?? [];
  if (finalised.length > 0) await client.query(insertStreakWindowsSql(1), [streakWindowRecords([{ owner, windows: finalised }], now)]);
  const bridge = change.bridge;
  if (bridge === undefined) return;
  // Missed windows since the break (stored at 0) become BRIDGED at the restored count; the run since the break
  // (stored above 0) counts on from it.
  await client.query(
    `update streak_window set outcome = case when count_after = 0 then 'BRIDGED' else outcome end, count_after = count_after + $4
      where member_streak_id = $1 and start_at >= $2 and start_at < $3`,
    [owner.memberStreakId, new Date(bridge.fromMs), new Date(bridge.untilMs), bridge.previousStreak],
  );
  if (bridge.windows.length > 0) {
    await client.query(
      insertStreakWindowsSql(1, true),
      [streakWindowRecords([{ owner, windows: bridge.windows }], now)],
    );
  }
}

/** Whether a window can close unsatisfied with activity in it (COUNT of at most 1 is satisfied by any). */
export function partialProgressPossible(condition: Condition): boolean {
  return condition.type !== "COUNT" || condition.min > 1;
}

/**
 * A WITH item for the break sweep (window-sweeps.ts): stores the broken window of every row of `due` (which must
 * select id, tenant_id, member_id, definition_id, window_start_at, window_close_at, break_window_key) as MISSED
 * with a count of 0 after it. Its aggregate comes from the JSON state's tail only when the definition's condition
 * can leave activity in an unsatisfied window; otherwise it is empty and the JSON is not read. Rows saved before
 * migration 0010 have no window_start_at: their broken window is stored by the next writer's fold instead.
 */
export function breakHistorySql(def: CatalogDefinition): string {
  const inWindow = (e: string) => `${e}.at >= extract(epoch from d.window_start_at) * 1000 and ${e}.at < extract(epoch from d.window_close_at) * 1000`;
  const aggregate = partialProgressPossible(def.rules.condition)
    ? `join member_streak_state st on st.member_id = d.member_id and st.member_streak_id = d.id
       cross join lateral (
         select count(*)::int as n, coalesce(sum(e.value), 0)::float8 as total
           from jsonb_to_recordset(st.state->'tail') as e(at float8, value float8) where ${inWindow("e")}
       ) a
       cross join lateral (
         select coalesce(jsonb_agg(k.key order by k.first, k.key), '[]'::jsonb) as keys
           from (select e.key, min(e.at) as first from jsonb_to_recordset(st.state->'tail') as e(at float8, key text)
                  where e.key is not null and ${inWindow("e")} group by e.key) k
       ) b`
    : `cross join (select 0 as n, 0::float8 as total) a cross join (select '[]'::jsonb as keys) b`;
  return `history as (
       insert into streak_window (member_streak_id, start_at, window_key, tenant_id, member_id, definition_id, end_at, outcome,
         activity_count, value_sum, distinct_keys, count_after, finalised_at)
       select d.id, d.window_start_at, d.break_window_key, d.tenant_id, d.member_id, d.definition_id, d.window_close_at, 'MISSED',
              a.n, a.total, b.keys, 0, now()
         from due d ${aggregate}
        where d.window_start_at is not null
       on conflict on constraint streak_window_pkey do nothing
     )`;
}

export type WindowOrder = "OLDEST_FIRST" | "NEWEST_FIRST";

export interface WindowQuery {
  readonly tenantId: string;
  readonly memberExternalId: string;
  readonly definition: CatalogDefinition;
  /** Windows starting at or after this instant. */
  readonly fromMs: number | null;
  /** Windows starting before this instant. */
  readonly toMs: number | null;
  readonly order: WindowOrder;
}

/** A window of the history: stored (final), or folded from the live state (final or not). */
export type HistoryWindow = WindowRecord;

/** Keyset position: a window's start and key (the key breaks a tie a zone change could make). */
export type WindowCursor = readonly [number, string];

function compareWindows(a: Pick<HistoryWindow, "startMs" | "key">, b: Pick<HistoryWindow, "startMs" | "key">): number {
  return a.startMs - b.startMs || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/**
 * Up to `limit` windows of one member streak in the query's range and order, after `after`: the stored rows
 * merged with the domain's windows after the stored base at `now` (which win where both have a window: they are
 * what the next write stores). NOT_FOUND when the member has no streak on the definition.
 */
export async function listStreakWindows(pool: Pool, q: WindowQuery, now: number, limit: number, after: WindowCursor | undefined): Promise<HistoryWindow[]> {
  const { rows: found } = await pool.query<{ id: string; state: Parameters<typeof unsavedWindows>[1] }>(
    `select s.id, st.state from member m join member_streak s on s.member_id = m.id join member_streak_state st on st.member_id = s.member_id and st.member_streak_id = s.id
      where m.tenant_id = $1 and m.external_id = $2 and s.definition_id = $3`,
    [q.tenantId, q.memberExternalId, q.definition.id],
  );
  const streak = found[0];
  if (streak === undefined) throw notFoundError("member streak", { member_external_id: q.memberExternalId, definition_id: q.definition.id });
  const newest = q.order === "NEWEST_FIRST";
  const inRange = (w: HistoryWindow) => (q.fromMs === null || w.startMs >= q.fromMs) && (q.toMs === null || w.startMs < q.toMs);
  const beyond = (w: HistoryWindow) => {
    if (after === undefined) return true;
    const c = compareWindows(w, { startMs: after[0], key: after[1] });
    return newest ? c < 0 : c > 0;
  };
  const live: HistoryWindow[] = unsavedWindows(q.definition.rules, streak.state, now, { pausedIntervals: q.definition.pauses })
    .filter((w) => inRange(w) && beyond(w));
  const cmp = newest ? ">" : "<";
  const { rows } = await pool.query<{
    window_key: string; start_at: Date; end_at: Date; outcome: WindowRecord["outcome"]; activity_count: number; value_sum: number; distinct_keys: string[]; count_after: number;
  }>(
    `select window_key, start_at, end_at, outcome, activity_count, value_sum, distinct_keys, count_after
       from streak_window
      where member_streak_id = $1 and ($2::timestamptz is null or start_at >= $2) and ($3::timestamptz is null or start_at < $3)
        and ($4::timestamptz is null or ($4, $5::varchar) ${cmp} (start_at, window_key))
      order by start_at ${newest ? "desc" : "asc"}, window_key ${newest ? "desc" : "asc"}
      limit $6`,
    [streak.id, q.fromMs === null ? null : new Date(q.fromMs), q.toMs === null ? null : new Date(q.toMs),
      after === undefined ? null : new Date(after[0]), after?.[1] ?? null, limit],
  );
  const merged = new Map<number, HistoryWindow>();
  for (const r of rows) {
    merged.set(r.start_at.getTime(), {
      key: r.window_key, startMs: r.start_at.getTime(), endMs: r.end_at.getTime(), outcome: r.outcome,
      count: r.activity_count, sum: r.value_sum, distinct: r.distinct_keys, countAfter: r.count_after, final: true,
    });
  }
  for (const w of live) merged.set(w.startMs, w);
  const sorted = [...merged.values()].sort(compareWindows);
  if (newest) sorted.reverse();
  return sorted.slice(0, limit);
}
