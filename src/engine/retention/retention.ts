// Retention of activities and events (issue 15, item 1), run by the worker's retention workflow
// (src/workflows/retention.workflow.ts). The tables are range-partitioned by UTC week (migration 0016):
// activity by recorded_at, streak_event by created_at.
//
// - Ahead: the current week and the next WEEKS_AHEAD weeks always exist (kindling_week_partition, which also moves
//   rows the default partition caught for a week into it).
// - Behind, whole weeks: a week partition is dropped when all of it is older than the longest retention any tenant
//   has (the global default for tenants without their own, tenant_retention otherwise). Activities still needed by
//   a member's state (below) are held aside and come back into the default partition; the keys of everything else
//   (activity_key, streak_event_key) and the webhook deliveries of its events go first (dropPartition).
// - Behind, rows: a tenant whose retention is shorter than that longest one has its older activities and events
//   deleted row by row, in pages, with their keys and deliveries; rows in the default partition past their
//   tenant's retention go the same way.
// - Never removed: an activity the member's state still needs — one applied to a member streak whose window is not
//   final yet (dated at or after the streak's base.cursor, or any, while no window of it is final). Those are the
//   domain's tail: late events in grace and the fold of the open windows are decided from them, and a repair
//   restores from the state alone. Recomputation from the whole history (ImportActivities) reads only what is
//   retained: see docs/semantics.md §9.
// - Events behind a removed one: the highest removed id is kept per tenant (event_retention_floor; the nil UUID for
//   a dropped partition, which held every tenant's), and a cursor below it is CURSOR_EXPIRED.
//
// DDL (creating and dropping partitions) takes an ACCESS EXCLUSIVE lock on the parent; those transactions take it
// first (so they never wait for it while holding row locks a writer waits for), do little under it, and set a
// lock_timeout, so a long query on the table makes the step fail and the workflow retry it rather than queueing
// the hot path behind it for long.
import type { Pool, PoolClient } from "pg";
import { inTransaction } from "../transaction.ts";
import { ALL_TENANTS } from "../delivery/event-stream.ts";
import { EPOCH_MS } from "../ingest/streak-persistence.ts";

export const PARTITIONED = ["activity", "streak_event"] as const;
export type PartitionedTable = (typeof PARTITIONED)[number];

const DAY = 86_400_000;
const WEEK = 7 * DAY;
/** Weeks created ahead of the current one: the worker may be down this long before rows fall into the default partition. */
export const WEEKS_AHEAD = 4;
/** Shortest retention accepted (the stats snapshot re-reads the last days' events; a week partition is a week). */
export const MIN_RETENTION_DAYS = 7;
export const MAX_RETENTION_DAYS = 36_500;
const ROW_PAGE = 5_000;
const LOCK_TIMEOUT = "5s";

/** Monday 00:00 UTC of the week holding `ms`. */
export function weekStart(ms: number): number {
  const day = Math.floor(ms / DAY) * DAY;
  // 1970-01-01 was a Thursday: days since the epoch + 3, mod 7, is days since Monday.
  const sinceMonday = (Math.floor(ms / DAY) + 3) % 7;
  return day - sinceMonday * DAY;
}

export interface Partition {
  readonly table: PartitionedTable;
  readonly name: string;
  /** Lower and upper bound (ms); null for MINVALUE, and both null for the default partition. */
  readonly from: number | null;
  readonly to: number | null;
  readonly isDefault: boolean;
}

/** The partitions of the partitioned tables, by their bounds as the catalog states them. */
export async function listPartitions(db: Pick<Pool, "query">): Promise<Partition[]> {
  const { rows } = await db.query<{ parent: PartitionedTable; name: string; bound: string; from_at: Date | null; to_at: Date | null }>(
    `select parent.relname as parent, child.relname as name, pg_get_expr(child.relpartbound, child.oid) as bound,
            (substring(pg_get_expr(child.relpartbound, child.oid) from 'FROM \\(''([^'']+)''\\)'))::timestamptz as from_at,
            (substring(pg_get_expr(child.relpartbound, child.oid) from 'TO \\(''([^'']+)''\\)'))::timestamptz as to_at
       from pg_inherits i
       join pg_class parent on parent.oid = i.inhparent
       join pg_class child on child.oid = i.inhrelid
      where parent.relname = any($1::text[]) and parent.relnamespace = 'public'::regnamespace
      order by parent.relname, to_at nulls first, child.relname`,
    [[...PARTITIONED]],
  );
  return rows.map((r) => ({
    table: r.parent, name: r.name, from: r.from_at?.getTime() ?? null, to: r.to_at?.getTime() ?? null, isDefault: r.bound === "DEFAULT",
  }));
}

/** Creates the week partitions of `now`'s week and the WEEKS_AHEAD after it that do not exist yet. Returns their names. */
export async function ensurePartitions(pool: Pool, now: number, weeksAhead = WEEKS_AHEAD): Promise<string[]> {
  const created: string[] = [];
  const first = weekStart(now);
  for (const table of PARTITIONED) {
    for (let w = 0; w <= weeksAhead; w++) {
      const start = new Date(first + w * WEEK);
      const made = await inTransaction(pool, async (client) => {
        await client.query(`set local lock_timeout = '${LOCK_TIMEOUT}'`);
        const { rows } = await client.query<{ made: boolean }>("select kindling_week_partition($1, $2::timestamptz) as made", [table, start.toISOString()]);
        return rows[0]!.made;
      });
      if (made) created.push(`${table}_p${start.toISOString().slice(0, 10).replaceAll("-", "")}`);
    }
  }
  return created;
}

export interface RetentionPolicy {
  /** The global default in days (KINDLING_RETENTION_DAYS); null keeps everything of tenants without their own. */
  readonly defaultDays: number | null;
}

export interface TenantRetentionDays {
  readonly tenantId: string;
  /** Null: kept forever. */
  readonly days: number | null;
}

/** Every tenant's retention: its own (tenant_retention) or the default. */
export async function tenantRetentions(db: Pick<Pool, "query">, policy: RetentionPolicy): Promise<TenantRetentionDays[]> {
  const { rows } = await db.query<{ id: string; days: number | null }>(
    "select t.id, r.retention_days as days from tenant t left join tenant_retention r on r.tenant_id = t.id order by t.id",
  );
  return rows.map((r) => ({ tenantId: r.id, days: r.days ?? policy.defaultDays }));
}

/** The tenant's own retention in days, or null when it has none (the default applies). */
export async function tenantRetention(db: Pick<Pool, "query">, tenantId: string): Promise<number | null> {
  const { rows } = await db.query<{ days: number }>("select retention_days as days from tenant_retention where tenant_id = $1", [tenantId]);
  return rows[0]?.days ?? null;
}

/**
 * Sets (days) or clears (null: back to the default) a tenant's own retention. The update takes the inserted row's
 * time (`excluded.updated_at`, the same now()) rather than calling now(): tenant_retention is a reference table on
 * Citus, which refuses a function that is not immutable in an upsert's DO UPDATE.
 */
export async function setTenantRetention(db: Pick<Pool, "query">, tenantId: string, days: number | null): Promise<void> {
  if (days === null) {
    await db.query("delete from tenant_retention where tenant_id = $1", [tenantId]);
    return;
  }
  if (!Number.isInteger(days) || days < MIN_RETENTION_DAYS || days > MAX_RETENTION_DAYS) {
    throw new RangeError(`retention must be a whole number of days from ${MIN_RETENTION_DAYS} to ${MAX_RETENTION_DAYS}, got ${days}`);
  }
  await db.query(
    `insert into tenant_retention (tenant_id, retention_days, updated_at) values ($1, $2, now())
     on conflict (tenant_id) do update set retention_days = excluded.retention_days, updated_at = excluded.updated_at`,
    [tenantId, days],
  );
}

/**
 * True for an activity row `a` that a member streak's state still needs: applied to a streak whose windows from the
 * activity's time on are not final (its base.cursor, in ms, is null or at most the activity's occurred_at).
 * One probe of member_streak's unique key per definition the activity was applied to.
 */
const NEEDED_BY_STATE = `exists (
  select 1 from member_streak s join member_streak_state st on st.member_id = s.member_id and st.member_streak_id = s.id
   where s.tenant_id = a.tenant_id and s.member_id = a.member_id and s.definition_id = any(a.applied_definition_ids::uuid[])
     and (st.state->'base'->>'cursor' is null
          or a.occurred_at >= ${EPOCH_MS("(st.state->'base'->>'cursor')::double precision")}))`;

export interface RetentionResult {
  readonly droppedPartitions: string[];
  readonly activitiesDeleted: number;
  readonly eventsDeleted: number;
  /** Activities of dropped partitions kept because a member's state needed them (moved to the default partition). */
  readonly activitiesKept: number;
}

/**
 * One pass of retention at `now`: drops the week partitions older than every tenant's retention, then deletes the
 * rows of tenants with a shorter one (and rows past retention in the default partition). `pageSize` (5,000 unless
 * given) is the rows a transaction deletes.
 */
export async function applyRetention(
  pool: Pool, now: number, policy: RetentionPolicy, options: { onPage?: (done: number) => void; pageSize?: number } = {},
): Promise<RetentionResult> {
  const pageSize = options.pageSize ?? ROW_PAGE;
  const tenants = await tenantRetentions(pool, policy);
  const result = { droppedPartitions: [] as string[], activitiesDeleted: 0, eventsDeleted: 0, activitiesKept: 0 };
  // A tenant with no limit (null) keeps every partition; so does a deployment with no tenants yet and no default.
  const limits = tenants.map((t) => t.days);
  const longest = limits.length === 0 ? policy.defaultDays : limits.some((d) => d === null) ? null : Math.max(...(limits as number[]));
  if (longest !== null) {
    const dropBefore = now - longest * DAY;
    for (const p of await listPartitions(pool)) {
      if (p.isDefault || p.to === null || p.to > dropBefore) continue;
      result.activitiesKept += await dropPartition(pool, p, pageSize);
      result.droppedPartitions.push(p.name);
      options.onPage?.(result.droppedPartitions.length);
    }
  }
  for (const t of tenants) {
    if (t.days === null) continue;
    const before = new Date(now - t.days * DAY);
    // Partitions are dropped only at the longest retention: a tenant at it loses rows by rows only in the default
    // partition; a tenant below it in every partition older than its own limit.
    const onlyDefault = longest !== null && t.days >= longest;
    for (;;) {
      const page = await deleteActivityPage(pool, t.tenantId, before, onlyDefault, pageSize);
      result.activitiesDeleted += page.deleted;
      if (page.read < pageSize) break;
      options.onPage?.(result.activitiesDeleted);
    }
    for (;;) {
      const page = await deleteEventPage(pool, t.tenantId, before, onlyDefault, pageSize);
      result.eventsDeleted += page.deleted;
      if (page.read < pageSize) break;
      options.onPage?.(result.eventsDeleted);
    }
  }
  return result;
}

/**
 * Drops one week partition in two steps, so recording never waits behind the long part:
 * 1. without any table lock: the activities a member's state still needs are copied to activity_retention_hold,
 *    and every other key of the week's rows is deleted (for events, page by page: their keys and webhook
 *    deliveries);
 * 2. with the parent locked (lock_timeout bounds the wait): the week is dropped, and the held activities go back
 *    into activity under their own keys, into the default partition now that their week is gone.
 * A key removed in step 1 frees its unique_identifier a moment before its row goes: that row is past retention.
 * Every statement also runs on a Citus coordinator: the joins between member tables match the member
 * (`member_id`), so each shard joins its own rows, and webhook_delivery (a coordinator table) is deleted by the
 * event ids read from the partition, never joined with it. Returns the activities kept.
 */
async function dropPartition(pool: Pool, p: Partition, pageSize: number): Promise<number> {
  const part = quoteIdent(p.name);
  const inWeek = (column: string) => `${column} < $1${p.from === null ? "" : ` and ${column} >= $2`}`;
  const bounds = p.from === null ? [new Date(p.to!)] : [new Date(p.to!), new Date(p.from)];
  if (p.table === "activity") {
    await inTransaction(pool, async (client) => {
      await client.query(`insert into activity_retention_hold select a.* from ${part} a where ${NEEDED_BY_STATE} on conflict do nothing`);
      await client.query(
        `delete from activity_key k using ${part} a
          where k.tenant_id = a.tenant_id and k.member_id = a.member_id and k.unique_identifier = a.unique_identifier and k.activity_id = a.id
            and not exists (select 1 from activity_retention_hold h where h.member_id = a.member_id and h.id = a.id and h.recorded_at = a.recorded_at)`,
      );
    });
    return inTransaction(pool, async (client) => {
      await client.query(`set local lock_timeout = '${LOCK_TIMEOUT}'`);
      await client.query("lock table activity in access exclusive mode");
      await client.query(`drop table ${part}`);
      const kept = await client.query(`insert into activity select * from activity_retention_hold where ${inWeek("recorded_at")}`, bounds);
      await client.query(`delete from activity_retention_hold where ${inWeek("recorded_at")}`, bounds);
      return kept.rowCount ?? 0;
    });
  }
  // The week's events a page a transaction, in (tenant_id, id) order (the index streak_event_tenant_id_id_index).
  let after: { tenantId: string; id: string } | null = null;
  for (;;) {
    const { rows }: { rows: EventRow[] } = await pool.query<EventRow>(
      `select e.id::text as id, e.tenant_id, e.member_id, e.dedupe_key from ${part} e
        ${after === null ? "" : "where (e.tenant_id, e.id) > ($2::uuid, $3::bigint)"}
        order by e.tenant_id, e.id limit $1`,
      after === null ? [pageSize] : [pageSize, after.tenantId, after.id],
    );
    if (rows.length > 0) await inTransaction(pool, (client) => deleteEventKeysAndDeliveries(client, rows));
    if (rows.length < pageSize) break;
    const last: EventRow = rows[rows.length - 1]!;
    after = { tenantId: last.tenant_id, id: last.id };
  }
  return inTransaction(pool, async (client) => {
    await client.query(`set local lock_timeout = '${LOCK_TIMEOUT}'`);
    await client.query("lock table streak_event in access exclusive mode");
    const { rows } = await client.query<{ through: string | null }>(`select max(id)::text as through from ${part}`);
    await client.query(`drop table ${part}`);
    if (rows[0]?.through) await raiseFloor(client, ALL_TENANTS, rows[0].through);
    return 0;
  });
}

interface EventRow {
  readonly id: string;
  readonly tenant_id: string;
  readonly member_id: string | null;
  readonly dedupe_key: string;
}

/** A page's webhook deliveries, by tenants ($1) and event ids ($2): probes of migration 0019's index. */
export const PAGE_DELIVERIES_DELETE_SQL = "delete from webhook_delivery d where d.tenant_id = any($1::uuid[]) and d.event_id = any($2::bigint[])";

/**
 * Deletes the dedupe keys and webhook deliveries of `events`. A key is matched by its whole primary key and its
 * event (an event without a member has its key under the nil UUID, as the key trigger writes it) from the list the
 * statement carries, not by a join with a partition (which Citus would have to plan across shards); the
 * deliveries, a coordinator table, by tenant and event id.
 */
async function deleteEventKeysAndDeliveries(client: PoolClient, events: readonly EventRow[]): Promise<void> {
  await client.query(
    `delete from streak_event_key k
      where (k.tenant_id, k.member_id, k.dedupe_key, k.event_id) in (select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[]))`,
    [events.map((e) => e.tenant_id), events.map((e) => e.member_id ?? ALL_TENANTS), events.map((e) => e.dedupe_key), events.map((e) => e.id)],
  );
  await client.query(PAGE_DELIVERIES_DELETE_SQL, [
    [...new Set(events.map((e) => e.tenant_id))], events.map((e) => e.id),
  ]);
}

/** A page of a row delete: the rows it read as past retention, and those it deleted. */
interface PageResult {
  readonly read: number;
  readonly deleted: number;
}

// The row deletes are a few statements in one transaction rather than a chain of data-modifying CTEs (which Citus
// plans CTE by CTE): the page is read (a LIMIT over every shard), its rows deleted from the list read (activities
// by their primary key, events by id through the (tenant_id, id) index), and then the keys (and deliveries) of exactly the rows that delete returned, so a row removed
// meanwhile by someone else (an erasure) costs no key that is not its own. None calls a volatile function, so
// Citus runs each delete on every shard at once.

/**
 * The times a page's rows span, widened to whole milliseconds either side: a bound on the time column of the page's
 * delete, so it reads only the week partitions the page came from (the ids or keys decide which rows go).
 */
function timeSpan(page: readonly { ms: number }[]): [Date, Date] {
  let low = Infinity;
  let high = -Infinity;
  for (const r of page) {
    low = Math.min(low, Number(r.ms));
    high = Math.max(high, Number(r.ms));
  }
  return [new Date(Math.floor(low) - 1), new Date(Math.ceil(high) + 1)];
}

async function deleteActivityPage(pool: Pool, tenantId: string, before: Date, onlyDefault: boolean, pageSize: number): Promise<PageResult> {
  return inTransaction(pool, async (client) => {
    const table = onlyDefault ? "activity_default" : "activity";
    // recorded_at as text: a JavaScript Date would drop its microseconds, and the row would not be found.
    const { rows: page } = await client.query<{ member_id: string; id: string; recorded_at: string; ms: number }>(
      `select a.member_id, a.id, a.recorded_at::text as recorded_at, extract(epoch from a.recorded_at)::float8 * 1000 as ms from ${table} a
        where a.tenant_id = $1 and a.recorded_at < $2 and not ${NEEDED_BY_STATE}
        limit $3`,
      [tenantId, before, pageSize],
    );
    if (page.length === 0) return { read: 0, deleted: 0 };
    // The delete tests again that no member's state needs the row: a state committed since the page was read (an
    // import's recomputation, say) may have come to need it.
    const { rows: gone } = await client.query<{ member_id: string; id: string; unique_identifier: string }>(
      `delete from ${table} a
        where a.tenant_id = $1 and a.recorded_at between $2 and $3
          and (a.member_id, a.id, a.recorded_at) in (select * from unnest($4::uuid[], $5::uuid[], $6::timestamptz[]))
          and not ${NEEDED_BY_STATE}
        returning a.member_id, a.id, a.unique_identifier`,
      [tenantId, ...timeSpan(page), page.map((r) => r.member_id), page.map((r) => r.id), page.map((r) => r.recorded_at)],
    );
    if (gone.length > 0) {
      await client.query(
        `delete from activity_key k
          where k.tenant_id = $1 and (k.member_id, k.unique_identifier, k.activity_id) in (select * from unnest($2::uuid[], $3::text[], $4::uuid[]))`,
        [tenantId, gone.map((r) => r.member_id), gone.map((r) => r.unique_identifier), gone.map((r) => r.id)],
      );
    }
    return { read: page.length, deleted: gone.length };
  });
}

async function deleteEventPage(pool: Pool, tenantId: string, before: Date, onlyDefault: boolean, pageSize: number): Promise<PageResult> {
  return inTransaction(pool, async (client) => {
    const table = onlyDefault ? "streak_event_default" : "streak_event";
    const { rows: page } = await client.query<{ id: string; ms: number }>(
      `select e.id::text as id, extract(epoch from e.created_at)::float8 * 1000 as ms from ${table} e
        where e.tenant_id = $1 and e.created_at < $2
        limit $3`,
      [tenantId, before, pageSize],
    );
    if (page.length === 0) return { read: 0, deleted: 0 };
    const { rows: gone } = await client.query<EventRow>(
      `delete from ${table} e
        where e.tenant_id = $1 and e.created_at between $2 and $3 and e.id = any($4::bigint[])
        returning e.id::text as id, e.tenant_id, e.member_id, e.dedupe_key`,
      [tenantId, ...timeSpan(page), page.map((r) => r.id)],
    );
    if (gone.length > 0) {
      await deleteEventKeysAndDeliveries(client, gone);
      const through = gone.reduce((max, e) => (BigInt(e.id) > max ? BigInt(e.id) : max), 0n);
      await raiseFloor(client, tenantId, through.toString());
    }
    return { read: page.length, deleted: gone.length };
  });
}

/**
 * Raises the tenant's floor to `through`. The update takes the inserted row's time (`excluded.updated_at`, the
 * same now()): event_retention_floor is a reference table on Citus, which refuses a function that is not immutable
 * in an upsert's DO UPDATE.
 */
async function raiseFloor(client: PoolClient, tenantId: string, through: string): Promise<void> {
  await client.query(
    `insert into event_retention_floor (tenant_id, deleted_through, updated_at) values ($1, $2::bigint, now())
     on conflict (tenant_id) do update
       set deleted_through = greatest(event_retention_floor.deleted_through, excluded.deleted_through), updated_at = excluded.updated_at`,
    [tenantId, through],
  );
}

function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`retention: unexpected partition name ${name}`);
  return `"${name}"`;
}
