import { defineEntity, p } from "@mikro-orm/core";

/** Every outbox message kind and its payload (written by src/engine/delivery/outbox.ts and outbox.repository.ts). */
export interface OutboxPayloads {
  /** A reward was created and needs its lifecycle workflow (fulfilment, claim deadline, expiry). */
  "reward.lifecycle": { rewardId: string; tenantId: string; memberId: string; definitionId: string };
  /** The member claimed a CLAIM-mode reward (state already CLAIMED in PostgreSQL); the workflow is told. */
  "reward.claimed": { rewardId: string; tenantId: string };
  /** The tenant PATCHed fulfilment fields of an EXTERNAL reward (coupon code, issue/expiry time). */
  "reward.fulfilled": { rewardId: string; tenantId: string };
  /** A FAILED reward was retried through the API; `attempt` makes the new workflow run's id unique. */
  "reward.retry": { rewardId: string; tenantId: string; memberId: string; definitionId: string; attempt: number };
  /**
   * The member of the reward was erased (EraseMember): its workflow runs (the first and each retry's, attempt 0 to
   * `attempts`) are cancelled and their histories deleted, since their labels name the member.
   */
  "reward.cancel": { tenantId: string; rewardId: string; attempts: number };
  /** A definition changed state (published, paused, resumed, archived) or rules; its sweeper follows. */
  "definition.changed": { tenantId: string; definitionId: string; state: string; version: number };
}

export type OutboxKind = keyof OutboxPayloads;

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
