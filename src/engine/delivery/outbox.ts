// The outbox: work for Temporal written in the same transaction as the state change that needs it, relayed to
// Temporal afterwards (PRODUCT §5 "No lost work"). Every message kind and its payload is declared here; the
// relay (worker side) turns each into a workflow start or signal with an id derived from the dedupe key, so a
// message relayed twice after a crash has the effect of relaying it once.
import type { PoolClient } from "pg";

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

export const OUTBOX_KINDS: readonly OutboxKind[] = ["reward.lifecycle", "reward.claimed", "reward.fulfilled", "reward.retry", "reward.cancel", "definition.changed"];

/** Queries run on the caller's transaction; `dedupeKey` is unique, so enqueueing the same thing twice is a no-op. */
export async function enqueueOutbox<K extends OutboxKind>(
  client: Pick<PoolClient, "query">,
  tenantId: string,
  kind: K,
  dedupeKey: string,
  payload: OutboxPayloads[K],
): Promise<void> {
  await client.query(
    `insert into outbox_message (tenant_id, kind, dedupe_key, payload, created_at, attempts)
     values ($1, $2, $3, $4, now(), 0) on conflict (dedupe_key) do nothing`,
    [tenantId, kind, dedupeKey, JSON.stringify(payload)],
  );
}
