import { defineEntity, p } from "@mikro-orm/core";

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

/** Immutable streak log: never updated or deleted (PRODUCT §2). */
const ActivitySchema = defineEntity({
  name: "Activity",
  tableName: "activity",
  uniques: [{ name: "activity_idempotency_key", properties: ["tenantId", "memberId", "uniqueIdentifier"] }],
  indexes: [{ properties: ["tenantId", "memberId", "occurredAt"] }],
  properties: {
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
    recordedAt: p.datetime().onCreate(() => new Date()),
    /** Brought in by ImportActivities (history from another system), not recorded live (migration 0012). */
    imported: p.boolean().default(false),
  },
});

export class Activity extends ActivitySchema.class {}
ActivitySchema.setClass(Activity);
export { ActivitySchema };
