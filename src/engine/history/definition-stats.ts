// Program analytics per definition and UTC day (issue 13, item 3): what GetDefinitionStats reads.
//
// Written by the definition sweeper, never at read time: after every sweep (a window close, an at-risk batch,
// or the wake at every UTC midnight that closes the day — see nextStatsDue) one statement snapshots the definition
// into definition_stats_day, set-based:
// - event counters per day from streak_event (index streak_event_definition_time, migration 0011), grouped by
//   the UTC day of each event's time: at risk = streak.at_risk, broken = streak.broken, frozen =
//   streak.freeze_used, started = streak.incremented to a count of 1 (a first start or a restart), milestones =
//   streak.milestone_reached per threshold, rewards = reward.issued / reward.claimed / reward.expired. The
//   counters of today and of the LOOKBACK_DAYS days before are recomputed by every snapshot (and of every day
//   since the last closed one, up to MAX_BACKFILL_DAYS, after a sweeper outage or at the first snapshot of a
//   definition that already has events), so an event written after its
//   day closed (an activity recorded inside grace whose milestone is dated to the previous day) still lands on
//   its day;
// - state per day from member_streak: active streaks (current count above 0) and their histogram over
//   COUNT_BUCKETS. The state of a day is the state at the first snapshot after the day ended (the midnight
//   sweep, after the breaks due then), and is not changed once the day is closed; a day that ended while no
//   snapshot ran keeps its counters but has no state (has_state false).
// Today's row is the latest snapshot (closed false, computed_at says when). A read is one range scan of the
// table's primary key.
import type { Pool } from "pg";
import { EngineError } from "../engine-error.ts";

/** Buckets of the current-count histogram: [min, max] inclusive; max null is unbounded. Never reorder. */
export const COUNT_BUCKETS: readonly (readonly [number, number | null])[] = [
  [1, 1], [2, 3], [4, 7], [8, 14], [15, 30], [31, 60], [61, 100], [101, null],
];

/** Closed days whose counters every snapshot recomputes, besides today. */
const LOOKBACK_DAYS = 2;
/** After a sweeper outage, the oldest day a snapshot fills in. */
const MAX_BACKFILL_DAYS = 31;
/** The longest range one read may ask for, in days. */
export const MAX_STATS_RANGE_DAYS = 366;

const DAY_MS = 86_400_000;

export interface StatsScope {
  readonly tenantId: string;
  readonly definitionId: string;
}

export interface DefinitionDayStats {
  /** YYYY-MM-DD, UTC. */
  readonly day: string;
  readonly closed: boolean;
  readonly computedAt: number;
  readonly hasState: boolean;
  readonly active: number;
  /** Streaks per COUNT_BUCKETS entry; empty when the day has no state. */
  readonly histogram: readonly number[];
  readonly atRisk: number;
  readonly broken: number;
  readonly frozen: number;
  readonly started: number;
  /** Milestones reached that day per threshold, by threshold ascending. */
  readonly milestones: readonly { readonly threshold: number; readonly reached: number }[];
  readonly rewardsIssued: number;
  readonly rewardsClaimed: number;
  readonly rewardsExpired: number;
}

const startOfUtcDay = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;
const dayText = (ms: number) => new Date(ms).toISOString().slice(0, 10);

const HISTOGRAM_SQL = `array[${COUNT_BUCKETS.map(([min, max]) =>
  `count(*) filter (where current_count >= ${min}${max === null ? "" : ` and current_count <= ${max}`})`).join(", ")}]::int[]`;

/**
 * Snapshots the definition's stats as of `asOf` (the sweeper's clock, after its sweeps): today's row, and the
 * rows of the days since the last closed one (at least LOOKBACK_DAYS), closed. Idempotent for a given `asOf`.
 * Returns the rows written.
 */
export async function snapshotDefinitionStats(pool: Pool, scope: StatsScope, asOf: number): Promise<number> {
  const today = startOfUtcDay(asOf);
  const { rows: last } = await pool.query<{ day: string | null }>(
    "select max(day)::text as day from definition_stats_day where tenant_id = $1 and definition_id = $2 and closed",
    [scope.tenantId, scope.definitionId],
  );
  const lastClosed = last[0]?.day ? Date.parse(`${last[0].day}T00:00:00Z`) : null;
  const from = Math.max(today - MAX_BACKFILL_DAYS * DAY_MS, Math.min(today - LOOKBACK_DAYS * DAY_MS, lastClosed === null ? -Infinity : lastClosed + DAY_MS));
  const { rowCount } = await pool.query(SNAPSHOT_SQL, snapshotArgs(scope, from, today, asOf));
  return rowCount ?? 0;
}

/** The snapshot's parameters: tenant, definition, first and last day, their instants, and the snapshot's time. */
export function snapshotArgs(scope: StatsScope, from: number, today: number, asOf: number): unknown[] {
  return [scope.tenantId, scope.definitionId, dayText(from), dayText(today), new Date(from), new Date(today + DAY_MS), new Date(asOf)];
}

/** One statement: the days' counters from streak_event, the state from member_streak, upserted. */
export const SNAPSHOT_SQL =
    `with ev as (
       select (e.occurred_at at time zone 'UTC')::date as day,
              count(*) filter (where e.type = 'streak.at_risk')::int as at_risk,
              count(*) filter (where e.type = 'streak.broken')::int as broken,
              count(*) filter (where e.type = 'streak.freeze_used')::int as frozen,
              count(*) filter (where e.type = 'streak.incremented' and e.payload->>'new_count' = '1')::int as started,
              count(*) filter (where e.type = 'reward.issued')::int as rewards_issued,
              count(*) filter (where e.type = 'reward.claimed')::int as rewards_claimed,
              count(*) filter (where e.type = 'reward.expired')::int as rewards_expired
         from streak_event e
        where e.definition_id = $2 and e.occurred_at >= $5 and e.occurred_at < $6 and e.tenant_id = $1
        group by 1
     ), ms as (
       select m.day, jsonb_object_agg(m.threshold, m.n) as milestones
         from (select (e.occurred_at at time zone 'UTC')::date as day, e.payload->>'threshold' as threshold, count(*)::int as n
                 from streak_event e
                where e.definition_id = $2 and e.occurred_at >= $5 and e.occurred_at < $6 and e.tenant_id = $1 and e.type = 'streak.milestone_reached'
                  and e.payload ? 'threshold'
                group by 1, 2) m
        group by m.day
     ), days as (
       -- Today, and earlier days that have events or a row already: no empty rows for days before the
       -- definition had anything to count.
       select g::date as day from generate_series($3::date, $4::date, interval '1 day') g
        where g::date = $4::date or g::date in (select day from ev union all select day from ms)
           or exists (select 1 from definition_stats_day x where x.tenant_id = $1 and x.definition_id = $2 and x.day = g::date)
     ), state as (
       -- Two index ranges: the current leaderboard's index holds the rows not opted out (migration 0009),
       -- member_streak_opted_out_counts the others (0011).
       select count(*)::int as active, ${HISTOGRAM_SQL} as histogram
         from (select current_count from member_streak where tenant_id = $1 and definition_id = $2 and current_count > 0 and not leaderboard_opt_out
               union all
               select current_count from member_streak where tenant_id = $1 and definition_id = $2 and current_count > 0 and leaderboard_opt_out) c
     )
     insert into definition_stats_day as t (tenant_id, definition_id, day, closed, computed_at, has_state, active, count_histogram,
       at_risk, broken, frozen, started, milestones, rewards_issued, rewards_claimed, rewards_expired)
     select $1, $2, d.day, d.day < $4::date, $7, d.day >= $4::date - 1,
            case when d.day >= $4::date - 1 then s.active else 0 end, case when d.day >= $4::date - 1 then s.histogram else '{}' end,
            coalesce(ev.at_risk, 0), coalesce(ev.broken, 0), coalesce(ev.frozen, 0), coalesce(ev.started, 0), coalesce(ms.milestones, '{}'),
            coalesce(ev.rewards_issued, 0), coalesce(ev.rewards_claimed, 0), coalesce(ev.rewards_expired, 0)
       from days d left join ev on ev.day = d.day left join ms on ms.day = d.day cross join state s
     on conflict (tenant_id, definition_id, day) do update set
       closed = excluded.closed, computed_at = excluded.computed_at,
       -- A closed day's state is the state at its close: later snapshots refresh its counters only.
       has_state = case when t.closed then t.has_state else excluded.has_state end,
       active = case when t.closed then t.active else excluded.active end,
       count_histogram = case when t.closed then t.count_histogram else excluded.count_histogram end,
       at_risk = excluded.at_risk, broken = excluded.broken, frozen = excluded.frozen, started = excluded.started,
       milestones = excluded.milestones, rewards_issued = excluded.rewards_issued, rewards_claimed = excluded.rewards_claimed,
       rewards_expired = excluded.rewards_expired`;

/**
 * When the sweeper must snapshot next to keep one row per day: the UTC midnight after the newest row's day, where
 * that day closes. Before the first snapshot it is the start of `asOf`'s day, so a new sweeper snapshots at
 * once, and every day from then on has its closing snapshot at its end.
 */
export async function nextStatsDue(pool: Pool, scope: StatsScope, asOf: number): Promise<number> {
  const { rows } = await pool.query<{ day: string | null }>(
    "select max(day)::text as day from definition_stats_day where tenant_id = $1 and definition_id = $2",
    [scope.tenantId, scope.definitionId],
  );
  const newest = rows[0]?.day ? Date.parse(`${rows[0].day}T00:00:00Z`) : startOfUtcDay(asOf) - DAY_MS;
  return newest + DAY_MS;
}

/** A read: one range of the primary key. */
export const READ_SQL = `select day::text as day, closed, computed_at, has_state, active, count_histogram, at_risk, broken, frozen, started, milestones,
         rewards_issued, rewards_claimed, rewards_expired
    from definition_stats_day
   where tenant_id = $1 and definition_id = $2 and day >= $3::date and day <= $4::date
   order by day`;

/** A YYYY-MM-DD day that exists, as the epoch ms of its UTC midnight; undefined otherwise. */
function parseDay(text: string): number | undefined {
  const ms = Date.parse(`${text}T00:00:00Z`);
  return Number.isNaN(ms) || dayText(ms) !== text ? undefined : ms;
}

const invalidRange = (message: string, field: string) => new EngineError("INVALID_ARGUMENT", "INVALID_DAY_RANGE", message, {}, field);

/** The stored days of [startDay, endDay] (inclusive, at most MAX_STATS_RANGE_DAYS), oldest first: one indexed query. */
export async function readDefinitionStats(pool: Pool, scope: StatsScope, startDay: string, endDay: string): Promise<DefinitionDayStats[]> {
  const start = parseDay(startDay);
  if (start === undefined) throw invalidRange(`start_day ${startDay} is not a day`, "start_day");
  const end = parseDay(endDay);
  if (end === undefined) throw invalidRange(`end_day ${endDay} is not a day`, "end_day");
  if (end < start) throw invalidRange("end_day is before start_day", "end_day");
  if ((end - start) / DAY_MS + 1 > MAX_STATS_RANGE_DAYS) throw invalidRange(`a range spans at most ${MAX_STATS_RANGE_DAYS} days`, "end_day");
  const { rows } = await pool.query<{
    day: string; closed: boolean; computed_at: Date; has_state: boolean; active: number; count_histogram: number[]; at_risk: number; broken: number;
    frozen: number; started: number; milestones: Record<string, number>; rewards_issued: number; rewards_claimed: number; rewards_expired: number;
  }>(READ_SQL, [scope.tenantId, scope.definitionId, startDay, endDay]);
  return rows.map((r) => ({
    day: r.day,
    closed: r.closed,
    computedAt: r.computed_at.getTime(),
    hasState: r.has_state,
    active: r.active,
    histogram: r.count_histogram,
    atRisk: r.at_risk,
    broken: r.broken,
    frozen: r.frozen,
    started: r.started,
    milestones: Object.entries(r.milestones).map(([threshold, reached]) => ({ threshold: Number(threshold), reached })).sort((a, b) => a.threshold - b.threshold),
    rewardsIssued: r.rewards_issued,
    rewardsClaimed: r.rewards_claimed,
    rewardsExpired: r.rewards_expired,
  }));
}
