import { defineEntity, p } from "@mikro-orm/core";

/** A tenant's own retention of activities and events, overriding KINDLING_RETENTION_DAYS (migration 0016; src/engine/retention/retention.ts). */
const TenantRetentionSchema = defineEntity({
  name: "TenantRetention",
  tableName: "tenant_retention",
  properties: {
    tenantId: p.uuid().primary(),
    retentionDays: p.integer(),
    updatedAt: p.datetime(),
  },
});

export class TenantRetention extends TenantRetentionSchema.class {}
TenantRetentionSchema.setClass(TenantRetention);
export { TenantRetentionSchema };

/**
 * The highest streak_event id retention removed, per tenant (the nil UUID: for every tenant, a dropped partition).
 * A WatchEvents / ListEvents cursor below it is CURSOR_EXPIRED.
 */
const EventRetentionFloorSchema = defineEntity({
  name: "EventRetentionFloor",
  tableName: "event_retention_floor",
  properties: {
    tenantId: p.uuid().primary(),
    deletedThrough: p.bigint("string"),
    updatedAt: p.datetime(),
  },
});

export class EventRetentionFloor extends EventRetentionFloorSchema.class {}
EventRetentionFloorSchema.setClass(EventRetentionFloor);
export { EventRetentionFloorSchema };
