import { defineEntity, p } from "@mikro-orm/core";

/**
 * Work for Temporal, written in the same transaction as the state change that needs it and relayed afterwards
 * (PRODUCT §5 "No lost work"). The relay starts workflows with ids derived from `dedupeKey`, so a relay that
 * crashes after starting but before marking the row only finds the workflow already started on retry.
 */
const OutboxMessageSchema = defineEntity({
  name: "OutboxMessage",
  tableName: "outbox_message",
  indexes: [{ name: "outbox_pending", properties: ["relayedAt", "id"] }],
  uniques: [{ properties: ["dedupeKey"] }],
  properties: {
    id: p.bigint("string").primary().autoincrement(),
    tenantId: p.uuid(),
    kind: p.string().length(64),
    dedupeKey: p.string().length(256),
    payload: p.json<Record<string, unknown>>(),
    createdAt: p.datetime().onCreate(() => new Date()),
    relayedAt: p.datetime().nullable(),
    attempts: p.integer().default(0),
    lastError: p.text().nullable(),
    /** After a failed relay: not retried before this instant (exponential back-off). */
    nextAttemptAt: p.datetime().nullable(),
  },
});

export class OutboxMessage extends OutboxMessageSchema.class {}
OutboxMessageSchema.setClass(OutboxMessage);
export { OutboxMessageSchema };
