// Streak definitions, always read and written within one tenant.
import type { EntityManager } from "@mikro-orm/postgresql";
import { StreakDefinition, type DefinitionState, type PauseInterval } from "../entities/index.ts";

export interface DefinitionListQuery {
  readonly tenantId: string;
  readonly states: readonly DefinitionState[];
  readonly eventType?: string | undefined;
  readonly limit: number;
  /** Keyset cursor: (created_at ms, id) of the last row of the previous page. */
  readonly after?: readonly [number, string] | undefined;
}

export function findDefinition(em: EntityManager, tenantId: string, id: string): Promise<StreakDefinition | null> {
  return em.findOne(StreakDefinition, { tenantId, id });
}

export async function listDefinitions(em: EntityManager, q: DefinitionListQuery): Promise<StreakDefinition[]> {
  const where: Record<string, unknown> = { tenantId: q.tenantId };
  if (q.states.length > 0) where["state"] = { $in: q.states };
  if (q.eventType) where["eventTypes"] = { $contains: [q.eventType] };
  if (q.after) {
    const [ms, id] = q.after;
    where["$or"] = [{ createdAt: { $lt: new Date(ms) } }, { createdAt: new Date(ms), id: { $lt: id } }];
  }
  return em.find(StreakDefinition, where, { orderBy: { createdAt: "desc", id: "desc" }, limit: q.limit });
}

/** Closes the open pause interval (on resume) or opens one (on pause). */
export function withPauseChange(pauses: readonly PauseInterval[], at: number, pausing: boolean): PauseInterval[] {
  if (pausing) return [...pauses, { from: at, to: null }];
  return pauses.map((p) => (p.to === null ? { from: p.from, to: at } : p));
}
