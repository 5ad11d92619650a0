import { defineEntity, p } from "@mikro-orm/core";
import { ACTIVITY_KEY_TRIGGER } from "../migrations/0016-retention-partitions.migration.ts";

/** A stored activity as the engine and the API see it (times in epoch milliseconds). */
export interface ActivityRecord {
  readonly id: string;
  readonly memberId: string;
  readonly memberExternalId: string;
  readonly definitionId: string | null;
  readonly eventType: string | null;
  readonly appliedDefinitionIds: readonly string[];
  readonly occurredAt: number;
  readonly value: number | null;
  readonly distinctKey: string | null;
  readonly uniqueIdentifier: string;
  readonly metadata: Record<string, string>;
  readonly platform: string | null;
  readonly recordedAt: number;
  /** Brought in by ImportActivities rather than recorded live. */
  readonly imported: boolean;
}

/** activity's columns; activity_retention_hold has the same. */
const activityProperties = () => ({
  id: p.uuid().primary(),
  tenantId: p.uuid(),
  memberId: p.uuid(),
  /** Set when the activity names one definition; null when it fans out by event type. */
  definitionId: p.uuid().nullable(),
  eventType: p.string().length(128).nullable(),
  /** Definitions that counted it (fan-out result), fixed when it was recorded. */
  appliedDefinitionIds: p.array().default([]),
  occurredAt: p.datetime(),
  /** Null when the activity carried no value (COUNT streaks); SUM streaks require one. */
  value: p.double().nullable(),
  distinctKey: p.string().length(256).nullable(),
  uniqueIdentifier: p.string().length(256),
  platform: p.string().length(64).nullable(),
  metadata: p.json<Record<string, string>>().default("{}"),
  recordedAt: p.datetime().primary().onCreate(() => new Date()),
  /** Brought in by ImportActivities (history from another system), not recorded live (migration 0012). */
  imported: p.boolean().default(false),
});

/**
 * Immutable streak log: never updated; deleted only by retention and erasure. Range-partitioned by week of
 * recorded_at (migration 0016, partitions managed by src/engine/retention/retention.ts, not by the ORM), so the primary key
 * carries recorded_at and the idempotency key lives in activity_key.
 */
const ActivitySchema = defineEntity({
  name: "Activity",
  tableName: "activity",
  indexes: [{ properties: ["tenantId", "memberId", "occurredAt"] }],
  // The idempotency key's trigger (migration 0016), declared so the schema diff knows it.
  triggers: [{ name: "activity_key", timing: "before", events: ["insert"], expression: ACTIVITY_KEY_TRIGGER }],
  properties: activityProperties(),
});

export class Activity extends ActivitySchema.class {}
ActivitySchema.setClass(Activity);
export { ActivitySchema };

/**
 * The activity idempotency key (tenant, member, unique_identifier), one row per stored activity: written by the
 * activity table's BEFORE INSERT trigger, which skips an activity whose key is stored (migration 0016). Deleted
 * with its activity (retention, erasure).
 */
const ActivityKeySchema = defineEntity({
  name: "ActivityKey",
  tableName: "activity_key",
  properties: {
    tenantId: p.uuid().primary(),
    memberId: p.uuid().primary(),
    uniqueIdentifier: p.string().length(256).primary(),
    activityId: p.uuid(),
    recordedAt: p.datetime(),
  },
});

export class ActivityKey extends ActivityKeySchema.class {}
ActivityKeySchema.setClass(ActivityKey);
export { ActivityKeySchema };

/**
 * Activities of a week partition being dropped that a member's state still needs, between retention's two steps
 * (src/engine/retention/retention.ts); empty otherwise. The same columns as activity.
 */
const ActivityRetentionHoldSchema = defineEntity({
  name: "ActivityRetentionHold",
  tableName: "activity_retention_hold",
  properties: activityProperties(),
});

export class ActivityRetentionHold extends ActivityRetentionHoldSchema.class {}
ActivityRetentionHoldSchema.setClass(ActivityRetentionHold);
export { ActivityRetentionHoldSchema };
