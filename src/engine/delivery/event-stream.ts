// Reading persisted events in stream order, for ListEvents, WatchEvents and the webhook dispatcher.
//
// The stream position is streak_event's bigserial id. Ids are handed out when a row is inserted but become
// visible when its transaction commits, so a reader that has seen id 11 may still see id 10 appear later; and
// some ids never appear (a rolled back insert, an `on conflict do nothing` that drew an id). A follower therefore
// keeps a *floor*: every id at or below it is settled. The floor moves over ids that are contiguous with it at
// once; at a gap it waits until the gap is known to be settled — no transaction that could hold a missing id is
// still open (PostgreSQL's own activity view, which shows this database user's sessions), or, failing
// that, the gap has been open for `gapTimeoutMs`. Events beyond a gap are still handed out as soon as they are
// seen; the caller remembers what it already handed out (webhook deliveries by their unique key, watch streams
// in memory), so nothing is sent twice and nothing committed late is skipped.
import type { Pool, PoolClient } from "pg";
import type { StreakEventType } from "../../db/entities/index.ts";

export interface StoredEvent {
  /** The bigserial id: the stream position (Event.cursor). */
  readonly seq: bigint;
  readonly publicId: string;
  readonly tenantId: string;
  readonly type: StreakEventType;
  readonly memberId: string | null;
  readonly memberExternalId: string | null;
  readonly definitionId: string | null;
  readonly payload: Record<string, unknown>;
  readonly occurredAt: number;
  readonly createdAt: number;
}

export interface EventFilter {
  readonly tenantId: string;
  readonly types?: readonly StreakEventType[] | undefined;
  readonly definitionId?: string | undefined;
  readonly memberExternalId?: string | undefined;
  readonly from?: number | undefined;
  readonly to?: number | undefined;
}

interface Row {
  id: string; public_id: string; tenant_id: string; type: StreakEventType; member_id: string | null; external_id: string | null;
  definition_id: string | null; payload: Record<string, unknown>; occurred_at: Date; created_at: Date;
}

const stored = (r: Row): StoredEvent => ({
  seq: BigInt(r.id), publicId: r.public_id, tenantId: r.tenant_id, type: r.type, memberId: r.member_id, memberExternalId: r.external_id,
  definitionId: r.definition_id, payload: r.payload, occurredAt: r.occurred_at.getTime(), createdAt: r.created_at.getTime(),
});

const SELECT = `select e.id, e.public_id, e.tenant_id, e.type, e.member_id, m.external_id, e.definition_id, e.payload, e.occurred_at, e.created_at
  from streak_event e left join member m on m.id = e.member_id and m.tenant_id = e.tenant_id`;

/** Events of one tenant after `afterSeq`, oldest first, matching the filter. */
export async function listEvents(db: Pick<Pool, "query">, f: EventFilter & { afterSeq?: bigint | undefined; onlySeqs?: readonly bigint[] | undefined; limit: number }): Promise<StoredEvent[]> {
  const where = ["e.tenant_id = $1"];
  const params: unknown[] = [f.tenantId];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace("?", `$${params.length}`));
  };
  if (f.types && f.types.length > 0) add("e.type = any(?::text[])", f.types);
  if (f.definitionId) add("e.definition_id = ?::uuid", f.definitionId);
  if (f.memberExternalId) add("m.external_id = ?", f.memberExternalId);
  if (f.from !== undefined) add("e.occurred_at >= ?", new Date(f.from));
  if (f.to !== undefined) add("e.occurred_at < ?", new Date(f.to));
  if (f.afterSeq !== undefined) add("e.id > ?::bigint", f.afterSeq.toString());
  if (f.onlySeqs) add("e.id = any(?::bigint[])", f.onlySeqs.map(String));
  params.push(f.limit);
  const { rows } = await db.query<Row>(`${SELECT} where ${where.join(" and ")} order by e.id limit $${params.length}`, params);
  return rows.map(stored);
}

/** The tenant every row of event_retention_floor with this id speaks for: a dropped partition held every tenant's events. */
export const ALL_TENANTS = "00000000-0000-0000-0000-000000000000";

/**
 * The highest event id retention removed for the tenant (its own row deletes, or a dropped partition of every
 * tenant's), 0 when none: a cursor below it may have missed events that are gone (CURSOR_EXPIRED).
 */
export async function retentionFloor(db: Pick<Pool, "query">, tenantId: string): Promise<bigint> {
  const { rows } = await db.query<{ through: string }>(
    "select coalesce(max(deleted_through), 0)::text as through from event_retention_floor where tenant_id = any($1::uuid[])",
    [[tenantId, ALL_TENANTS]],
  );
  return BigInt(rows[0]!.through);
}

export async function latestSeq(db: Pick<Pool, "query">): Promise<bigint> {
  const { rows } = await db.query<{ id: string }>("select coalesce(max(id), 0)::text as id from streak_event");
  return BigInt(rows[0]!.id);
}

/** Positions (of every tenant: the id sequence is global) after `afterSeq`, with what a floor needs to decide. */
export interface StreamSlice {
  readonly entries: readonly { readonly seq: bigint; readonly tenantId: string; readonly type: StreakEventType; readonly definitionId: string | null }[];
  /** The database's clock at the read. */
  readonly at: number;
  /**
   * Start of the oldest other transaction open in this database; +Infinity when there is none. Read-only ones
   * count too: an insert draws its id a moment before it has a transaction id to show for it.
   */
  readonly oldestWriteStart: number;
}

export async function readSlice(db: Pick<PoolClient, "query">, afterSeq: bigint, limit: number): Promise<StreamSlice> {
  const [events, clock] = await Promise.all([
    db.query<{ id: string; tenant_id: string; type: StreakEventType; definition_id: string | null }>(
      "select id, tenant_id, type, definition_id from streak_event where id > $1::bigint order by id limit $2",
      [afterSeq.toString(), limit],
    ),
    db.query<{ at: Date; oldest: Date | null }>(
      `select clock_timestamp() as at,
              (select min(xact_start) from pg_stat_activity
                where xact_start is not null and pid <> pg_backend_pid() and datname = current_database()) as oldest`,
    ),
  ]);
  const c = clock.rows[0]!;
  return {
    entries: events.rows.map((r) => ({ seq: BigInt(r.id), tenantId: r.tenant_id, type: r.type, definitionId: r.definition_id })),
    at: c.at.getTime(),
    oldestWriteStart: c.oldest ? c.oldest.getTime() : Number.POSITIVE_INFINITY,
  };
}

export interface StreamFloor {
  /** The new floor after `slice` was read from `floor`. */
  advance(floor: bigint, slice: StreamSlice): bigint;
}

export function createStreamFloor(gapTimeoutMs: number): StreamFloor {
  // When each open gap (keyed by the floor it sits above) was first seen, by the database's clock.
  const gapSeenAt = new Map<bigint, number>();
  return {
    advance(floor, slice) {
      let f = floor;
      for (const e of slice.entries) {
        if (e.seq !== f + 1n) {
          const seenAt = gapSeenAt.get(f) ?? slice.at;
          gapSeenAt.set(f, seenAt);
          // A missing id was drawn before the next one became visible (seenAt); a transaction that could still
          // commit it started before then. None running, or waited long enough: the gap is settled.
          const settled = slice.oldestWriteStart > seenAt || slice.at - seenAt >= gapTimeoutMs;
          if (!settled) break;
        }
        gapSeenAt.delete(f);
        f = e.seq;
      }
      for (const key of gapSeenAt.keys()) if (key < f) gapSeenAt.delete(key);
      return f;
    },
  };
}

/** Resolves after `ms`, or at once when `signal` aborts: the wait between polls of the stream. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
