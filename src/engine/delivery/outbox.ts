// The outbox: work for Temporal written in the same transaction as the state change that needs it, relayed to
// Temporal afterwards (PRODUCT §5 "No lost work"). Every message kind and its payload is declared with the
// outbox_message entity (src/db/entities/outbox-message.entity.ts), so the ORM-side writer shares them; the
// relay (worker side) turns each into a workflow start or signal with an id derived from the dedupe key, so a
// message relayed twice after a crash has the effect of relaying it once.
import type { PoolClient } from "pg";
import type { OutboxKind, OutboxPayloads } from "../../db/entities/index.ts";

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
