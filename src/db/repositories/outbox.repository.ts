// Outbox rows written through the ORM, inside the caller's unit of work, so they commit or roll back with the
// change that needs them (the pg-level twin for the hot path is src/engine/delivery/outbox.ts).
import type { EntityManager } from "@mikro-orm/postgresql";
import { OutboxMessage, type OutboxPayloads, type StreakDefinition } from "../entities/index.ts";

/**
 * Tells orchestration that a definition changed state or rules: its sweeper is started, re-planned, paused or
 * stopped by the relay. Keyed by version, so every change is relayed once and in order.
 */
export function enqueueDefinitionChanged(em: EntityManager, row: Pick<StreakDefinition, "id" | "tenantId" | "state" | "version">): void {
  const payload: OutboxPayloads["definition.changed"] = { tenantId: row.tenantId, definitionId: row.id, state: row.state, version: row.version };
  em.create(OutboxMessage, {
    tenantId: row.tenantId,
    kind: "definition.changed",
    dedupeKey: `definition:${row.id}:v${row.version}`,
    payload,
    attempts: 0,
  });
}
