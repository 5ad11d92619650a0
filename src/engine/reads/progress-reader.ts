// Progress reads in at most two queries: the member's streak rows (joined to the member by external id), then
// the member's rewards. Definitions come from the catalog cache. Nothing here writes: a streak whose window has
// passed is reported broken from the stored state and `now` alone, before any sweep has finalised it.
import type { Pool } from "pg";
import { memberIdFor } from "../../db/member-id.ts";
import type { MemberStreakState } from "../../domain/streak-machine.ts";
import type { CatalogDefinition, DefinitionCatalog } from "../definitions/definition-catalog.ts";

export interface StreakRow {
  readonly id: string;
  readonly memberId: string;
  readonly definitionId: string;
  readonly state: MemberStreakState;
  /** The state's JSON text as read: the same text is the same state (src/api/mappers/progress-cache.ts). */
  readonly stateText: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/**
 * A streak row read with its state as JSON text (`state::text`); the state is parsed when first asked for, so a read
 * whose answer is already cached for that very text never parses it.
 */
export function streakRow(id: string, memberId: string, definitionId: string, stateText: string, createdAt: number, updatedAt: number): StreakRow {
  let state: MemberStreakState | undefined;
  return {
    id, memberId, definitionId, stateText, createdAt, updatedAt,
    get state() {
      return (state ??= JSON.parse(stateText) as MemberStreakState);
    },
  };
}

export interface RewardRow {
  readonly id: string;
  readonly definitionId: string;
  readonly threshold: number;
  readonly kind: string;
  readonly points: number;
  readonly value: string;
  readonly state: string;
  readonly claimDeadlineAt: number | null;
}

export interface RewardFactsByDefinition {
  unclaimed: RewardRow[];
  total: number;
}

/** A reward row as the fact queries select it. */
export interface RewardFactRow {
  id: string; definition_id: string; threshold: number; kind: string; points: number; value: string; state: string; claim_deadline_at: Date | null;
}

/**
 * Folds one reward into a member-definition's facts: every reward counts towards "total rewards earned" except
 * failed and expired ones; AVAILABLE ones are the unclaimed milestones. The one place this rule lives.
 */
export function addRewardFact(facts: Map<string, RewardFactsByDefinition>, key: string, r: RewardFactRow): void {
  const f = facts.get(key) ?? { unclaimed: [], total: 0 };
  if (r.state !== "FAILED" && r.state !== "EXPIRED") f.total += 1;
  if (r.state === "AVAILABLE") {
    f.unclaimed.push({ id: r.id, definitionId: r.definition_id, threshold: r.threshold, kind: r.kind, points: r.points, value: r.value, state: r.state, claimDeadlineAt: r.claim_deadline_at?.getTime() ?? null });
  }
  facts.set(key, f);
}

export interface MemberProgressRows {
  readonly memberId: string | null;
  readonly streaks: readonly { row: StreakRow; definition: CatalogDefinition }[];
  readonly rewards: (definitionId: string) => RewardFactsByDefinition;
}

export interface ProgressReader {
  /** Streak rows of one member, optionally of one definition, with reward facts. */
  read(tenantId: string, memberExternalId: string, definitionId?: string): Promise<MemberProgressRows>;
  rewardFacts(tenantId: string, memberId: string, definitionIds: readonly string[]): Promise<(definitionId: string) => RewardFactsByDefinition>;
}

/** `citus`: the database is a Citus coordinator; a read then names the member's shard by its derived id (member-id.ts). */
export function createProgressReader(pool: Pool, catalog: DefinitionCatalog, options: { readonly citus?: boolean } = {}): ProgressReader {
  const citus = options.citus ?? false;
  async function rewardFacts(tenantId: string, memberId: string, definitionIds: readonly string[]) {
    const byDefinition = new Map<string, RewardFactsByDefinition>();
    if (definitionIds.length > 0) {
      const { rows } = await pool.query<RewardFactRow>(
        `select id, definition_id, threshold, kind, points, value, state, claim_deadline_at
           from reward where tenant_id = $1 and member_id = $2 and definition_id = any($3::uuid[]) order by threshold, created_at`,
        [tenantId, memberId, definitionIds],
      );
      for (const r of rows) addRewardFact(byDefinition, r.definition_id, r);
    }
    return (definitionId: string) => byDefinition.get(definitionId) ?? { unclaimed: [], total: 0 };
  }

  return {
    rewardFacts,
    async read(tenantId, memberExternalId, definitionId) {
      const { rows } = await pool.query<{ member_id: string; id: string | null; definition_id: string | null; state: string | null; created_at: Date | null; updated_at: Date | null }>(
        `select m.id as member_id, s.id, s.definition_id, st.state::text as state, s.created_at, s.updated_at
           from member m left join member_streak s on s.member_id = m.id and s.tenant_id = m.tenant_id ${definitionId ? "and s.definition_id = $3" : ""}
           left join member_streak_state st on st.member_id = s.member_id and st.member_streak_id = s.id
          where m.tenant_id = $1 and m.external_id = $2${citus ? ` and m.id = $${definitionId ? 4 : 3}` : ""}`,
        [tenantId, memberExternalId, ...(definitionId ? [definitionId] : []), ...(citus ? [memberIdFor(tenantId, memberExternalId)] : [])],
      );
      const memberId = rows[0]?.member_id ?? null;
      const streaks: { row: StreakRow; definition: CatalogDefinition }[] = [];
      for (const r of rows) {
        if (r.id === null || r.definition_id === null || r.state === null) continue;
        const definition = await catalog.get(tenantId, r.definition_id);
        if (!definition) continue;
        streaks.push({ row: streakRow(r.id, r.member_id, r.definition_id, r.state, r.created_at!.getTime(), r.updated_at!.getTime()), definition });
      }
      const facts = memberId && streaks.length > 0 ? await rewardFacts(tenantId, memberId, streaks.map((s) => s.definition.id)) : () => ({ unclaimed: [], total: 0 });
      return { memberId, streaks, rewards: facts };
    },
  };
}
