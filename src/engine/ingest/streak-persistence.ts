// Writes shared by everything that changes a member streak inside a transaction — recording activity
// (activity-ingestor.ts) and the admin operations (freeze grants, repairs): lock or create the row, save the
// domain state with the projected columns the sweeps index on, and persist the rewards and events a transition
// produced. One copy, so the columns a sweep relies on cannot drift between writers.
import { randomUUID } from "node:crypto";
import type { PoolClient } from "pg";
import { initialState, type MemberStreakState, type StreakEffect, type Transition } from "../../domain/streak-machine.ts";
import { saveStreakHistory } from "../history/streak-history.ts";
import { streakProjection } from "./streak-projection.ts";
import type { CatalogDefinition } from "../definitions/definition-catalog.ts";
import { enqueueOutbox } from "../delivery/outbox.ts";
import { planRewards, type PlannedReward } from "../rewards/reward-plan.ts";
import { eventsForEffects, type PlannedEvent } from "./streak-events.ts";

/** A member streak's id with its domain document (member_streak_state). */
export interface StreakStateRow {
  readonly id: string;
  readonly definition_id: string;
  readonly state: MemberStreakState;
}

/** The member's streaks on `definitionIds` with their documents, read without locking (answers that change nothing). */
export async function readMemberStreakStates(
  client: Pick<PoolClient, "query">,
  tenantId: string,
  memberId: string,
  definitionIds: readonly string[],
): Promise<StreakStateRow[]> {
  if (definitionIds.length === 0) return [];
  const { rows } = await client.query<StreakStateRow>(
    `select s.id, s.definition_id, st.state from member_streak s join member_streak_state st on st.member_id = s.member_id and st.member_streak_id = s.id
      where s.tenant_id = $1 and s.member_id = $2 and s.definition_id = any($3::uuid[])`,
    [tenantId, memberId, definitionIds],
  );
  return rows;
}

/**
 * Locks the member streak and its document, if it exists; callers serialise on it. Every locking read of the
 * state locks its member_streak_state row too (`for update of s, st`): a read that waited for another writer's
 * lock re-reads only the rows it locks, so locking `s` alone would answer the document as it was before that
 * writer committed — a lost update.
 */
export async function lockExistingMemberStreak(client: PoolClient, tenantId: string, memberId: string, definitionId: string): Promise<StreakStateRow | undefined> {
  const { rows } = await client.query<StreakStateRow>(
    `select s.id, s.definition_id, st.state from member_streak s join member_streak_state st on st.member_id = s.member_id and st.member_streak_id = s.id
      where s.tenant_id = $1 and s.member_id = $2 and s.definition_id = $3 for update of s, st`,
    [tenantId, memberId, definitionId],
  );
  return rows[0];
}

/** Locks the member streak row (creating it in its initial state when absent); callers serialise on it. */
export async function lockMemberStreak(client: PoolClient, tenantId: string, memberId: string, def: CatalogDefinition): Promise<{ id: string; state: MemberStreakState }> {
  const found = await lockExistingMemberStreak(client, tenantId, memberId, def.id);
  if (found) return found;
  const state = initialState(def.rules);
  // Two statements, each on the member's shard on Citus (which plans no INSERT with a subquery or a modifying
  // WITH feeding another table's insert as one shard's statement); in one transaction, as one statement was.
  const optOut = await client.query<{ leaderboard_opt_out: boolean }>(
    "select leaderboard_opt_out from member where id = $1 and tenant_id = $2", [memberId, tenantId]);
  const created = await client.query<{ id: string }>(
    `insert into member_streak (id, tenant_id, member_id, definition_id, status, current_count, longest_count, version, created_at, updated_at, leaderboard_opt_out)
     values ($1, $2, $3, $4, $5, 0, 0, 1, now(), now(), $6)
     on conflict (tenant_id, member_id, definition_id) do nothing returning id`,
    [randomUUID(), tenantId, memberId, def.id, state.status, optOut.rows[0]?.leaderboard_opt_out ?? false],
  );
  if (created.rows[0]) {
    await client.query("insert into member_streak_state (member_streak_id, member_id, state) values ($1, $2, $3)", [created.rows[0].id, memberId, JSON.stringify(state)]);
    return { id: created.rows[0].id, state };
  }
  // Another transaction created it between our select and insert; its row is committed or we wait for it.
  return (await lockExistingMemberStreak(client, tenantId, memberId, def.id))!;
}

/**
 * The columns a save writes: the state and everything projected from it (see the domain's persistence
 * contract). The one definition of those columns, shared by `saveMemberStreak` and the batched ingestor's
 * multi-row update (batch-sql.ts), so the two writers cannot drift.
 */
export interface MemberStreakColumns<Instant> {
  readonly state: MemberStreakState;
  readonly status: string;
  readonly current_count: number;
  readonly longest_count: number;
  readonly window_start_at: Instant | null;
  readonly window_close_at: Instant | null;
  readonly at_risk_at: Instant | null;
  readonly break_at: Instant | null;
  readonly last_activity_at: Instant | null;
  readonly updated_at: Instant;
  readonly break_kind: string | null;
  readonly break_window_key: string | null;
  /** The domain's break counter: with the count, it tells a run's count from the same count reached again. */
  readonly breaks: number;
}

/**
 * `instant` gives each time column's value from epoch milliseconds: a Date for a statement parameter, or the
 * milliseconds themselves for the JSON records of `memberStreakRecords` (a Date there is turned into ISO text by
 * JSON.stringify, which cost as much as the rest of a record's encoding).
 */
export function memberStreakColumns<Instant>(def: CatalogDefinition, state: MemberStreakState, now: number, instant: (ms: number) => Instant): MemberStreakColumns<Instant> {
  const d = streakProjection(def.rules, state, { pausedIntervals: def.pauses });
  const at = (v: number | null) => (v === null ? null : instant(v));
  return {
    state, status: state.status, current_count: state.current, longest_count: state.longest, window_start_at: at(d.windowStartAt), window_close_at: at(d.windowCloseAt),
    at_risk_at: at(d.atRiskAt), break_at: at(d.breakAt), last_activity_at: at(state.lastActivityAt), updated_at: instant(now),
    break_kind: d.breakKind, break_window_key: d.breakWindowKey, breaks: state.breaks,
  };
}

const asDate = (ms: number) => new Date(ms);
/** Epoch milliseconds as a Date holds them (truncated to whole milliseconds), for the JSON records. */
export const wholeMillis = (ms: number): number => Math.trunc(ms);

/**
 * SET items keeping the leaderboard tie-breaks (migration 0009): a count that changes takes the writer's clock
 * `at` as the moment it was reached; an unchanged one keeps its moment. The same current count in a new run (the
 * streak broke at read time, unswept, and restarted to the count it had) is a change too: the break counter
 * moved. In an UPDATE's SET list the row's columns (qualified by `row`) are its values before the update.
 */
const REACHED_AT_SET = (row: string, current: string, longest: string, breaks: string, at: string) =>
  `count_reached_at = case when ${row}current_count is distinct from ${current} or ${row}breaks is distinct from ${breaks}
           or ${row}count_reached_at is null then ${at} else ${row}count_reached_at end,
       longest_reached_at = case when ${row}longest_count is distinct from ${longest} or ${row}longest_reached_at is null then ${at} else ${row}longest_reached_at end`;

/** Writes the state and refreshes the columns projected from it (see the domain's persistence contract). */
export async function saveMemberStreak(client: PoolClient, id: string, memberId: string, def: CatalogDefinition, state: MemberStreakState, now: number): Promise<void> {
  const c = memberStreakColumns(def, state, now, asDate);
  await client.query(
    `with saved as (update member_streak_state set state = $2 where member_id = $15 and member_streak_id = $1)
     update member_streak set status = $3, current_count = $4, longest_count = $5, window_close_at = $6,
       at_risk_at = $7, break_at = $8, last_activity_at = $9, version = version + 1, updated_at = $10,
       break_kind = $11, break_window_key = $12, ${REACHED_AT_SET("", "$4", "$5", "$13", "$10")}, breaks = $13, window_start_at = $14
     where member_id = $15 and id = $1`,
    [id, JSON.stringify(c.state), c.status, c.current_count, c.longest_count, c.window_close_at, c.at_risk_at, c.break_at, c.last_activity_at, c.updated_at,
      c.break_kind, c.break_window_key, c.breaks, c.window_start_at, memberId],
  );
}

type SavedStreak = { readonly id: string; readonly def: CatalogDefinition; readonly state: MemberStreakState; readonly saves: number };

/**
 * The timestamptz of whole epoch milliseconds (a float8 expression; null stays null). Exact to the millisecond for
 * any instant before 2106: ms / 1000 is within ~0.2 µs of the true value there, and to_timestamp rounds to whole
 * microseconds. Records give whole milliseconds (`wholeMillis`), as a Date parameter would.
 */
export const EPOCH_MS = (expression: string) => `to_timestamp(${expression} / 1000)`;

/** The records `saveMemberStreaksSql` reads from its JSON parameter (times as epoch milliseconds). */
export function memberStreakRecords(rows: readonly SavedStreak[], now: number): string {
  return JSON.stringify(rows.map((r) => ({ id: r.id, saves: r.saves, ...memberStreakColumns(r.def, r.state, now, wholeMillis) })));
}

/**
 * WITH items (named `<prefix>_…`) that save many member streaks from `memberStreakRecords` in parameter `$param`,
 * each row once: `saves` counts the per-activity saves a row stands for, so `version` moves exactly as that many
 * `saveMemberStreak` calls would have moved it. For statements that save streaks beside other writes.
 *
 * The `id = any(array(...))` beside the join makes the row update an index probe per saved id: the join alone
 * (a set-returning function, estimated at 100 rows, against a table of a few thousand rows) was planned as a hash
 * join over a sequential scan of `member_streak` — measured in bench/ at 5,000 members as about half of the batch
 * write's time.
 */
export function saveMemberStreaksSql(prefix: string, param: number): string {
  return `${prefix}_x as materialized (
       select x.id, x.saves, x.state, x.status, x.current_count, x.longest_count, ${EPOCH_MS("x.window_start_at")} as window_start_at,
              ${EPOCH_MS("x.window_close_at")} as window_close_at, ${EPOCH_MS("x.at_risk_at")} as at_risk_at, ${EPOCH_MS("x.break_at")} as break_at,
              ${EPOCH_MS("x.last_activity_at")} as last_activity_at, ${EPOCH_MS("x.updated_at")} as updated_at, x.break_kind, x.break_window_key, x.breaks
         from jsonb_to_recordset($${param}::jsonb) as x(id uuid, saves int, state jsonb, status varchar, current_count int, longest_count int,
           window_start_at float8, window_close_at float8, at_risk_at float8, break_at float8, last_activity_at float8, updated_at float8,
           break_kind varchar, break_window_key varchar, breaks int)
     ), ${prefix}_state as (
       update member_streak_state st set state = x.state from ${prefix}_x x where st.member_streak_id = x.id
     ), ${prefix}_row as (
       update member_streak s set status = x.status, current_count = x.current_count, longest_count = x.longest_count,
         window_start_at = x.window_start_at, window_close_at = x.window_close_at, at_risk_at = x.at_risk_at, break_at = x.break_at, last_activity_at = x.last_activity_at,
         version = s.version + x.saves, updated_at = x.updated_at, break_kind = x.break_kind, break_window_key = x.break_window_key,
         ${REACHED_AT_SET("s.", "x.current_count", "x.longest_count", "x.breaks", "x.updated_at")}, breaks = x.breaks
       from ${prefix}_x x
       where s.id = x.id and s.id = any(array(select id from ${prefix}_x))
     )`;
}

/** Saves many rows in one statement (each row at most once); see `saveMemberStreaksSql`. */
export async function saveMemberStreaks(client: Pick<PoolClient, "query">, rows: readonly SavedStreak[], now: number): Promise<void> {
  if (rows.length === 0) return;
  await client.query(`with ${saveMemberStreaksSql("saved", 1)} select 1`, [memberStreakRecords(rows, now)]);
}

/** Inserts planned rewards (at most once each, by reward_grant_once) and their lifecycle outbox rows. */
export async function insertRewardsAndOutbox(client: PoolClient, rewards: readonly PlannedReward[]): Promise<void> {
  for (const r of rewards) {
    const inserted = await client.query(
      `insert into reward (id, tenant_id, member_id, definition_id, threshold, cycle, repetition, kind, name, value, points, state, mode,
         claim_deadline_at, issued_at, streak_count, multiplier, activity_id, attempts, created_at, updated_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $17, $18, $19, 0, $16, $16)
       on conflict on constraint reward_grant_once do nothing returning id`,
      [r.id, r.tenantId, r.memberId, r.definitionId, r.threshold, r.cycle, r.repetition, r.kind, r.name, r.value, r.points, r.state, r.mode,
        r.claimDeadlineAt === null ? null : new Date(r.claimDeadlineAt), r.issuedAt === null ? null : new Date(r.issuedAt), new Date(r.createdAt),
        r.streakCount, r.multiplier, r.activityId],
    );
    if (inserted.rowCount === 0 || !r.needsWorkflow) continue;
    await enqueueOutbox(client, r.tenantId, "reward.lifecycle", `reward:${r.id}`, { rewardId: r.id, tenantId: r.tenantId, memberId: r.memberId, definitionId: r.definitionId });
  }
}

/** The records `insertEventsSql` reads from its JSON parameter, in the order the events are numbered. */
export function eventRecords(events: readonly PlannedEvent[]): string {
  return JSON.stringify(events.map((e, n) => ({
    tenant_id: e.tenantId, type: e.type, member_id: e.memberId, definition_id: e.definitionId, dedupe_key: e.dedupeKey, payload: e.payload,
    occurred_at: wholeMillis(e.occurredAt), n,
  })));
}

/**
 * An INSERT (usable as a WITH item) of the events in `eventRecords` from parameter `$param`, once each by their
 * dedupe key: the table's key trigger skips an event whose key is stored (migration 0016).
 */
export function insertEventsSql(param: number): string {
  return `insert into streak_event (tenant_id, type, member_id, definition_id, dedupe_key, payload, occurred_at, created_at)
     select x.tenant_id, x.type, x.member_id, x.definition_id, x.dedupe_key, x.payload, ${EPOCH_MS("x.occurred_at")}, now()
       from jsonb_to_recordset($${param}::jsonb) as x(tenant_id uuid, type varchar, member_id uuid, definition_id uuid, dedupe_key varchar,
         payload jsonb, occurred_at float8, n bigint)
      order by n`;
}

export async function insertEvents(client: Pick<PoolClient, "query">, events: readonly PlannedEvent[]): Promise<void> {
  if (events.length === 0) return;
  await client.query(insertEventsSql(1), [eventRecords(events)]);
}

export interface TransitionOwner {
  readonly tenantId: string;
  readonly memberId: string;
  readonly memberExternalId: string;
  readonly memberStreakId: string;
  readonly activityId: string | null;
}

/**
 * Saves a transition's state and persists what it produced (the windows it finalised, rewards for milestones
 * reached, their outbox rows, events), as recording activity does. Returns the rewards it planned.
 */
export async function persistTransition(
  client: PoolClient,
  owner: TransitionOwner,
  def: CatalogDefinition,
  state: MemberStreakState,
  effects: readonly StreakEffect[],
  now: number,
  history: Pick<Transition<unknown>, "finalised" | "bridge"> = {},
): Promise<PlannedReward[]> {
  await saveMemberStreak(client, owner.memberStreakId, owner.memberId, def, state, now);
  await saveStreakHistory(client, { tenantId: owner.tenantId, memberId: owner.memberId, definitionId: def.id, memberStreakId: owner.memberStreakId }, history, now);
  const planned = planRewards(def, { tenantId: owner.tenantId, memberId: owner.memberId, memberStreakId: owner.memberStreakId, activityId: owner.activityId }, effects, now);
  await insertRewardsAndOutbox(client, planned);
  await insertEvents(client, eventsForEffects({ ...owner, definitionId: def.id }, effects, planned, now));
  return planned;
}
