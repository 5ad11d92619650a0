// Activity reads for the admin API (the write path is src/engine/ingest/activity-ingestor.ts).
import type { Pool } from "pg";
import type { ActivityRecord } from "../entities/index.ts";

interface Row {
  id: string; member_id: string; external_id: string; definition_id: string | null; event_type: string | null; applied_definition_ids: string[];
  occurred_at: Date; value: number | null; distinct_key: string | null; unique_identifier: string; metadata: Record<string, string>;
  platform: string | null; recorded_at: Date; imported: boolean;
}

const SELECT = `select a.id, a.member_id, m.external_id, a.definition_id, a.event_type, a.applied_definition_ids, a.occurred_at, a.value,
  a.distinct_key, a.unique_identifier, a.metadata, a.platform, a.recorded_at, a.imported
  from activity a join member m on m.id = a.member_id and m.tenant_id = a.tenant_id`;

const toRecord = (r: Row): ActivityRecord => ({
  id: r.id, memberId: r.member_id, memberExternalId: r.external_id, definitionId: r.definition_id, eventType: r.event_type,
  appliedDefinitionIds: r.applied_definition_ids, occurredAt: r.occurred_at.getTime(), value: r.value, distinctKey: r.distinct_key,
  uniqueIdentifier: r.unique_identifier, metadata: r.metadata, platform: r.platform, recordedAt: r.recorded_at.getTime(), imported: r.imported,
});

export async function findActivity(pool: Pool, tenantId: string, id: string): Promise<ActivityRecord | undefined> {
  const { rows } = await pool.query<Row>(`${SELECT} where a.tenant_id = $1 and a.id = $2`, [tenantId, id]);
  return rows[0] ? toRecord(rows[0]) : undefined;
}

export interface ActivityQuery {
  readonly tenantId: string;
  readonly memberExternalId?: string | undefined;
  readonly definitionId?: string | undefined;
  readonly eventType?: string | undefined;
  readonly from?: number | undefined;
  readonly to?: number | undefined;
  readonly limit: number;
  /** Keyset cursor (occurred_at ms, id), newest first. */
  readonly after?: readonly [number, string] | undefined;
}

export async function listActivities(pool: Pool, q: ActivityQuery): Promise<ActivityRecord[]> {
  const where = ["a.tenant_id = $1"];
  const params: unknown[] = [q.tenantId];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace("?", `$${params.length}`));
  };
  if (q.memberExternalId) add("m.external_id = ?", q.memberExternalId);
  if (q.definitionId) {
    params.push(q.definitionId);
    where.push(`(a.definition_id = $${params.length}::uuid or $${params.length}::text = any(a.applied_definition_ids))`);
  }
  if (q.eventType) add("a.event_type = ?", q.eventType);
  if (q.from !== undefined) add("a.occurred_at >= ?", new Date(q.from));
  if (q.to !== undefined) add("a.occurred_at < ?", new Date(q.to));
  if (q.after) {
    params.push(new Date(q.after[0]), q.after[1]);
    where.push(`(a.occurred_at, a.id) < ($${params.length - 1}, $${params.length})`);
  }
  params.push(q.limit);
  const { rows } = await pool.query<Row>(`${SELECT} where ${where.join(" and ")} order by a.occurred_at desc, a.id desc limit $${params.length}`, params);
  return rows.map(toRecord);
}
