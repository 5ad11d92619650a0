import { defineEntity, p } from "@mikro-orm/core";
import { STREAK_EVENT_DEFINITION_TIME_INDEX } from "../migrations/0011-definition-stats.migration.ts";
import { STREAK_EVENT_KEY_TRIGGER } from "../migrations/0016-retention-partitions.migration.ts";

export type StreakEventType =
  | "streak.incremented"
  | "streak.broken"
  | "streak.milestone_reached"
  | "streak.at_risk"
  | "streak.completed"
  | "streak.freeze_used"
  | "streak.repaired"
  | "reward.issued"
  | "reward.claimed"
  | "reward.expired"
  | "reward.failed";

/**
 * Persisted event; the bigserial id is the stream cursor for WatchEvents and webhook delivery. Range-partitioned by
 * week of created_at (migration 0016), so the primary key carries created_at and the dedupe key lives in
 * streak_event_key.
 */
const StreakEventSchema = defineEntity({
  name: "StreakEvent",
  tableName: "streak_event",
  // The dedupe key's trigger (migration 0016), declared so the schema diff knows it.
  triggers: [{ name: "streak_event_key", timing: "before", events: ["insert"], expression: STREAK_EVENT_KEY_TRIGGER }],
  indexes: [
    { properties: ["tenantId", "id"] },
    { properties: ["tenantId", "memberId", "id"] },
    // A definition's events by time, aggregated per day by the stats snapshot (migration 0011).
    { name: "streak_event_definition_time", expression: STREAK_EVENT_DEFINITION_TIME_INDEX },
    { properties: ["publicId"] },
  ],
  properties: {
    id: p.bigint("string").primary().autoincrement(),
    /**
     * The event's id in the API (Event.id, Kindling-Event-Id); filled by the database for every writer, time-ordered
     * so its index grows at one edge (migration 0020).
     */
    publicId: p.uuid().defaultRaw("kindling_time_ordered_uuid()"),
    tenantId: p.uuid(),
    type: p.string().length(32).$type<StreakEventType>(),
    memberId: p.uuid().nullable(),
    definitionId: p.uuid().nullable(),
    /**
     * Makes emitting idempotent: a re-run sweep or activity emits the same key and inserts nothing (the key is
     * kept in streak_event_key, written by the table's BEFORE INSERT trigger).
     */
    dedupeKey: p.string().length(256),
    payload: p.json<Record<string, unknown>>(),
    occurredAt: p.datetime(),
    createdAt: p.datetime().primary().onCreate(() => new Date()),
  },
});

export class StreakEvent extends StreakEventSchema.class {}
StreakEventSchema.setClass(StreakEvent);
export { StreakEventSchema };

/** An event's dedupe key, as long as the event is kept (migration 0016). */
const StreakEventKeySchema = defineEntity({
  name: "StreakEventKey",
  tableName: "streak_event_key",
  properties: {
    tenantId: p.uuid().primary(),
    dedupeKey: p.string().length(256).primary(),
    eventId: p.bigint("string"),
    /** The event's member (the nil UUID for none): the key's shard on Citus (migration 0018). */
    memberId: p.uuid(),
  },
});

export class StreakEventKey extends StreakEventKeySchema.class {}
StreakEventKeySchema.setClass(StreakEventKey);
export { StreakEventKeySchema };
