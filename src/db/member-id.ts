// A member's id is derived from who the member is to its tenant: a UUIDv5 (RFC 9562 §5.5) of the external id in
// the tenant's id as namespace. Every writer that creates a member uses it, so the same (tenant, external id)
// always names the same row: on Citus the member table is distributed by id and its (tenant_id, external_id) key
// holds only through the id (migration 0018). Members created before this keep their random ids; on plain
// PostgreSQL the (tenant_id, external_id) key finds them as before.
import { hash } from "node:crypto";

// Each tenant id as its 16 bytes, decoded once: every recorded activity names its member's id.
const namespaces = new Map<string, Buffer>();
const NAMESPACES = 10_000;

export function memberIdFor(tenantId: string, externalId: string): string {
  let namespace = namespaces.get(tenantId);
  if (namespace === undefined) {
    namespace = Buffer.from(tenantId.replace(/-/g, ""), "hex");
    if (namespace.length !== 16) throw new Error(`memberIdFor: tenant id ${tenantId} is not a UUID`);
    if (namespaces.size >= NAMESPACES) namespaces.clear();
    namespaces.set(tenantId, namespace);
  }
  const name = Buffer.from(externalId, "utf8");
  // One-shot: no Hash object per call.
  const digest = hash("sha1", Buffer.concat([namespace, name], 16 + name.length), "buffer");
  digest[6] = (digest[6]! & 0x0f) | 0x50;
  digest[8] = (digest[8]! & 0x3f) | 0x80;
  const h = digest.toString("hex", 0, 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * The member key as an upsert that updates names it: (tenant_id, external_id) on PostgreSQL, (id, tenant_id,
 * external_id) on Citus. Two writers creating one new member at once insert the same derived id, and the primary key
 * is not this conflict target: the later insert can fail on it (isNewMemberRace), so such writers run again.
 */
export const ON_MEMBER_KEY = "on conflict on constraint member_tenant_id_external_id_unique";

/**
 * Insert-if-absent for a member: every unique key of `member` (its id and its external key) is a conflict target,
 * so a concurrent creation of the same member makes this insert do nothing instead of failing on the id. (A unique
 * index added to `member` later would be a target too: its conflicts would pass silently here.)
 */
export const IF_MEMBER_ABSENT = "on conflict do nothing";

/**
 * A unique violation on member's primary key: another transaction created the same new member (same derived id)
 * while an upsert targeting ON_MEMBER_KEY ran. The failed transaction stored nothing; run again, it finds the member.
 * PostgreSQL names the constraint in the error's field; a Citus coordinator relays a worker's error without that
 * field, so its message (`… unique constraint "member_pkey_102008"`, the shard's suffix) is read instead.
 */
export function isNewMemberRace(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, constraint, message } = error as { code?: unknown; constraint?: unknown; message?: unknown };
  if (code !== "23505") return false;
  if (typeof constraint === "string") return /^member_pkey(_\d+)?$/.test(constraint);
  return typeof message === "string" && /unique constraint "member_pkey(_\d+)?"/.test(message);
}
