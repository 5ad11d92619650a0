// The window sweeps on Citus (issue 18; docs/scaling.md "Beyond one PostgreSQL: Citus"). The set-based sweeps of
// window-sweeps.ts lock a page of a definition's rows with `SELECT … FOR UPDATE` in the statement that finalises
// them; Citus takes row locks only in statements routed to one shard, and a definition's rows are on every shard.
// So a page here is found without a lock (one statement over all shards, in (due time, id) order), then finalised
// in one transaction by statements that re-check each row under the UPDATE's own row lock: a row is finalised
// only if its `version` (moved by every save of its state) is the one the page read, so a row a recording or
// repair changed meanwhile is left to the writer that changed it. The events carry the same dedupe keys as the
// single-PostgreSQL sweeps, so a re-run sweep writes nothing twice. The sweep's clock is a parameter: Citus runs
// no volatile function in a distributed UPDATE.
//
// The advance sweep (FREEZE / SETTLE rows and breaks inside a pause) pages as on one PostgreSQL: two keyset passes
// over (break_at, id) with sweepAdvance's predicates, the due rows that do not simply break (a range read of the
// partial index `member_streak_advance_page` on each shard, migration 0017), then, on a definition with pauses, the
// due BREAK rows a pause neutralises; it never reads the BREAK rows the break sweep finalises. Each row found goes
// through the domain one member at a time: locked on its shard (the statement names the member), re-checked,
// advanced and saved, as on one PostgreSQL.
import type { Pool, PoolClient } from "pg";
import { advance, type MemberStreakState } from "../../domain/streak-machine.ts";
import type { CatalogDefinition } from "../definitions/definition-catalog.ts";
import { insertEvents, persistTransition } from "../ingest/streak-persistence.ts";
import type { PlannedEvent } from "../ingest/streak-events.ts";
import { insertStreakWindowsSql, partialProgressPossible } from "../history/streak-history.ts";
import { inTransaction } from "../transaction.ts";
import { ADVANCE_NOT_BREAK, ADVANCE_PAUSED_BREAK, pauseArrays, type SweepOptions } from "./window-sweeps.ts";

const DEFAULT_PAGE = 5_000;
const DEFAULT_ADVANCE_PAGE = 500;

interface DueRow {
  id: string; member_id: string; external_id: string; version: number; current_count: number; break_at: Date; break_kind: string | null;
  break_window_key: string | null; window_start_at: Date | null; window_close_at: Date | null; at_risk_at: Date | null;
}

const DUE_COLUMNS = `s.id, s.member_id, m.external_id, s.version, s.current_count, s.break_at, s.break_kind, s.break_window_key,
  s.window_start_at, s.window_close_at, s.at_risk_at`;

/** Domain isNeutral(closeAt, grace) of a row (window-sweeps.ts neutralSql): a pause over the break that ends after the close. */
function neutral(def: CatalogDefinition, row: Pick<DueRow, "break_at" | "window_close_at">): boolean {
  const breakAt = row.break_at.getTime();
  const closeAt = row.window_close_at?.getTime() ?? null;
  return def.pauses.some((p) => p.from <= breakAt && closeAt !== null && (p.to === null || p.to > closeAt));
}

/**
 * The definition's next page of rows due by `asOf` on `due` after the keyset position, over every shard, unlocked.
 * `filter` may name `extra` as parameters from $7 on.
 */
async function duePage(
  pool: Pool, def: CatalogDefinition, due: "break_at" | "at_risk_at", filter: string, asOf: number, after: { at: Date; id: string } | null, limit: number,
  extra: readonly unknown[],
): Promise<DueRow[]> {
  const { rows } = await pool.query<DueRow>(
    `select ${DUE_COLUMNS}
       from member_streak s join member m on m.id = s.member_id
      where s.tenant_id = $1 and s.definition_id = $2 and s.${due} <= $3 and ${filter}
        and (s.${due}, s.id) > ($4::timestamptz, $5::uuid)
      order by s.${due}, s.id
      limit $6`,
    [def.tenantId, def.id, new Date(asOf), after?.at ?? "-infinity", after?.id ?? "00000000-0000-0000-0000-000000000000", limit, ...extra],
  );
  return rows;
}

/** Runs `work` on each page until a page finds nothing; returns the rows it finalised. */
async function pages(
  pool: Pool, def: CatalogDefinition, due: "break_at" | "at_risk_at", filter: string, asOf: number, limit: number, options: SweepOptions,
  work: (rows: DueRow[]) => Promise<number>, extra: readonly unknown[] = [],
): Promise<number> {
  let total = 0;
  let after: { at: Date; id: string } | null = null;
  for (;;) {
    const rows = await duePage(pool, def, due, filter, asOf, after, limit, extra);
    if (rows.length === 0) return total;
    const last = rows[rows.length - 1]!;
    after = { at: last[due]!, id: last.id };
    const n = await work(rows);
    total += n;
    if (n > 0) options.onPage?.(total);
  }
}

/** The page's rows as `id:version` keys: an UPDATE finalises a row only at the version the page read. */
const versionKeys = (rows: readonly DueRow[]) => rows.map((r) => `${r.id}:${r.version}`);

/** (a) on Citus: breaks every due BREAK row of the definition with its streak.broken event and its MISSED window. */
export async function citusSweepBreaks(pool: Pool, def: CatalogDefinition, asOf: number, options: SweepOptions = {}): Promise<number> {
  return pages(pool, def, "break_at", "s.break_kind = 'BREAK'", asOf, options.pageSize ?? DEFAULT_PAGE, options, async (found) => {
    const rows = found.filter((r) => !neutral(def, r));
    if (rows.length === 0) return 0;
    return inTransaction(pool, async (client) => {
      const broken = await client.query<{ id: string }>(
        `update member_streak s
            set status = 'BROKEN', current_count = 0, window_start_at = null, window_close_at = null, at_risk_at = null, break_at = null,
                break_kind = null, break_window_key = null, version = s.version + 1, updated_at = $6
          where s.member_id = any($3::uuid[]) and s.id = any($4::uuid[]) and (s.id::text || ':' || s.version::text) = any($5::text[])
            and s.tenant_id = $1 and s.definition_id = $2 and s.break_kind = 'BREAK'
         returning s.id`,
        [def.tenantId, def.id, rows.map((r) => r.member_id), rows.map((r) => r.id), versionKeys(rows), new Date()],
      );
      const done = new Set(broken.rows.map((r) => r.id));
      const mine = rows.filter((r) => done.has(r.id));
      await insertEvents(client, mine.map((d): PlannedEvent => ({
        tenantId: def.tenantId, type: "streak.broken", memberId: d.member_id, definitionId: def.id, dedupeKey: `${d.id}:broken:${d.break_window_key}`,
        payload: { user_id: d.external_id, definition_id: def.id, final_count: d.current_count, window_key: d.break_window_key },
        occurredAt: d.break_at.getTime(),
      })));
      await storeBrokenWindows(client, def, mine);
      return mine.length;
    });
  });
}

/** The broken windows as MISSED, as breakHistorySql stores them (the aggregate from the state's tail when it can be partial). */
async function storeBrokenWindows(client: PoolClient, def: CatalogDefinition, rows: readonly DueRow[]): Promise<void> {
  const windows = rows.filter((r) => r.window_start_at !== null);
  if (windows.length === 0) return;
  const states = new Map<string, MemberStreakState>();
  if (partialProgressPossible(def.rules.condition)) {
    const { rows: found } = await client.query<{ member_streak_id: string; state: MemberStreakState }>(
      "select member_streak_id, state from member_streak_state where member_id = any($1::uuid[]) and member_streak_id = any($2::uuid[])",
      [windows.map((r) => r.member_id), windows.map((r) => r.id)],
    );
    for (const s of found) states.set(s.member_streak_id, s.state);
  }
  const at = new Date().toISOString();
  const records = windows.map((r) => {
    const from = r.window_start_at!.getTime();
    const to = r.window_close_at!.getTime();
    const tail = ((states.get(r.id) as { tail?: { at: number; value?: number | null; key?: string | null }[] } | undefined)?.tail ?? [])
      .filter((e) => e.at >= from && e.at < to);
    const firsts = new Map<string, number>();
    for (const e of tail) if (e.key != null) firsts.set(e.key, Math.min(firsts.get(e.key) ?? Infinity, e.at));
    const keys = [...firsts].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([k]) => k);
    return {
      member_streak_id: r.id, tenant_id: def.tenantId, member_id: r.member_id, definition_id: def.id, window_key: r.break_window_key,
      start_at: r.window_start_at!.toISOString(), end_at: r.window_close_at!.toISOString(), outcome: "MISSED",
      activity_count: tail.length, value_sum: tail.reduce((n, e) => n + (e.value ?? 0), 0), distinct_keys: keys, count_after: 0, finalised_at: at,
    };
  });
  await client.query(insertStreakWindowsSql(1, true), [JSON.stringify(records)]);
}

/** (c) on Citus: one streak.at_risk per member and window (individual definitions; team definitions are not distributed). */
export async function citusSweepAtRisk(pool: Pool, def: CatalogDefinition, asOf: number, options: SweepOptions = {}): Promise<number> {
  const filter = "s.break_at > $3 and s.at_risk_notified_window is distinct from s.break_window_key";
  return pages(pool, def, "at_risk_at", filter, asOf, options.pageSize ?? DEFAULT_PAGE, options, (rows) => inTransaction(pool, async (client) => {
    const marked = await client.query<{ id: string }>(
      `update member_streak s set at_risk_notified_window = s.break_window_key
        where s.member_id = any($3::uuid[]) and s.id = any($4::uuid[]) and (s.id::text || ':' || s.version::text) = any($5::text[])
          and s.tenant_id = $1 and s.definition_id = $2 and s.at_risk_notified_window is distinct from s.break_window_key
       returning s.id`,
      [def.tenantId, def.id, rows.map((r) => r.member_id), rows.map((r) => r.id), versionKeys(rows)],
    );
    const done = new Set(marked.rows.map((r) => r.id));
    const mine = rows.filter((r) => done.has(r.id));
    await insertEvents(client, mine.map((k): PlannedEvent => ({
      tenantId: def.tenantId, type: "streak.at_risk", memberId: k.member_id, definitionId: def.id, dedupeKey: `${k.id}:at_risk:${k.break_window_key}`,
      payload: {
        user_id: k.external_id, definition_id: def.id, current_count: k.current_count, window_key: k.break_window_key,
        window_end_time: k.window_close_at === null ? null : k.window_close_at.toISOString(),
      },
      occurredAt: k.at_risk_at!.getTime(),
    })));
    return mine.length;
  }));
}

/**
 * (b) on Citus: FREEZE / SETTLE rows and breaks inside a pause, through the domain, one member's row a transaction;
 * found by sweepAdvance's two keyset passes (see the top of this file). Returns rows advanced.
 */
export async function citusSweepAdvance(pool: Pool, def: CatalogDefinition, asOf: number, options: SweepOptions = {}): Promise<number> {
  const opts = { pausedIntervals: def.pauses };
  const needsDomain = (r: Pick<DueRow, "break_at" | "break_kind" | "window_close_at">) => r.break_kind !== "BREAK" || neutral(def, r);
  const passes: [string, unknown[]][] = [[ADVANCE_NOT_BREAK, []], ...(def.pauses.length > 0 ? [[ADVANCE_PAUSED_BREAK, pauseArrays(def)] as [string, unknown[]]] : [])];
  let total = 0;
  for (const [filter, extra] of passes) {
    const before = total;
    const onPage = (done: number) => options.onPage?.(before + done);
    total += await pages(pool, def, "break_at", filter, asOf, options.pageSize ?? DEFAULT_ADVANCE_PAGE, { ...options, onPage }, async (found) => {
      let n = 0;
      for (const candidate of found) {
        n += await inTransaction(pool, async (client) => {
          const { rows } = await client.query<{ state: MemberStreakState; break_at: Date | null; break_kind: string | null; window_close_at: Date | null }>(
            `select st.state, s.break_at, s.break_kind, s.window_close_at
               from member_streak s join member_streak_state st on st.member_id = s.member_id and st.member_streak_id = s.id
              where s.member_id = $1 and s.id = $2 for update of s, st`,
            [candidate.member_id, candidate.id],
          );
          const row = rows[0];
          // Re-checked under the lock: a writer may have moved the row since the page read it.
          if (!row || row.break_at === null || row.break_at.getTime() > asOf || !needsDomain({ ...row, break_at: row.break_at })) return 0;
          const next = advance(def.rules, row.state, asOf, opts);
          const owner = { tenantId: def.tenantId, memberId: candidate.member_id, memberExternalId: candidate.external_id, memberStreakId: candidate.id, activityId: null };
          await persistTransition(client, owner, def, next.state, next.effects, asOf, next);
          return 1;
        });
      }
      return n;
    }, extra);
  }
  return total;
}
