// Members and the admin operations on their streaks: explicit upserts, freeze grants and repairs. Grants and
// repairs lock the member streak row like recording activity does, run the domain operation, and persist the
// transition through the same writer as the ingestor (streak-persistence.ts), so the projected columns, rewards
// for milestones reached and events come out exactly as they would from an activity.
import type { MemberProfile } from "../ingest/activity-ingestor.ts";
import { isNewMemberRace, memberIdFor, ON_MEMBER_KEY } from "../../db/member-id.ts";
import type { Pool, PoolClient } from "pg";
import { advance, grantFreezes, isValidZone, repair, type MemberStreakState } from "../../domain/streak-machine.ts";
import type { CatalogDefinition, DefinitionCatalog } from "../definitions/definition-catalog.ts";
import { EngineError, notFoundError } from "../engine-error.ts";
import { lockExistingMemberStreak, lockMemberStreak, persistTransition } from "../ingest/streak-persistence.ts";
import { inTransaction } from "../transaction.ts";

export interface StoredMember {
  readonly id: string;
  readonly externalId: string;
  readonly firstName: string | null;
  readonly lastName: string | null;
  readonly email: string | null;
  readonly phone: string | null;
  readonly timeZone: string | null;
  readonly locale: string | null;
  readonly pointsBalance: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Profile fields: undefined keeps the stored value, "" clears it. */
export type MemberUpsert = MemberProfile & { readonly externalId: string };

/** A member streak after an admin operation, for the progress view. */
export interface ChangedStreak {
  readonly definition: CatalogDefinition;
  readonly memberId: string;
  readonly memberStreakId: string;
  readonly state: MemberStreakState;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface MemberStore {
  upsert(tenantId: string, input: MemberUpsert): Promise<{ member: StoredMember; created: boolean }>;
  get(tenantId: string, externalId: string): Promise<StoredMember>;
  grantFreezes(tenantId: string, memberExternalId: string, definitionId: string, count: number): Promise<{ granted: number; streak: ChangedStreak }>;
  repair(tenantId: string, memberExternalId: string, definitionId: string): Promise<{ restoredCount: number; streak: ChangedStreak }>;
}

interface MemberRow {
  id: string; external_id: string; first_name: string | null; last_name: string | null; email: string | null; phone: string | null;
  time_zone: string | null; locale: string | null; points_balance: number; created_at: Date; updated_at: Date;
}

const MEMBER_COLUMNS = "id, external_id, first_name, last_name, email, phone, time_zone, locale, points_balance, created_at, updated_at";

const storedMember = (r: MemberRow): StoredMember => ({
  id: r.id, externalId: r.external_id, firstName: r.first_name, lastName: r.last_name, email: r.email, phone: r.phone,
  timeZone: r.time_zone, locale: r.locale, pointsBalance: r.points_balance, createdAt: r.created_at.getTime(), updatedAt: r.updated_at.getTime(),
});

/** Repair refusals of the domain, as the API's reasons (member_service.proto; team_service.proto for teams). */
export const REPAIR_REASONS = {
  REPAIR_DISABLED: "REPAIR_NOT_ALLOWED",
  NOT_BROKEN: "STREAK_NOT_BROKEN",
  ALREADY_REPAIRED: "ALREADY_REPAIRED",
  WINDOW_EXPIRED: "REPAIR_WINDOW_EXPIRED",
} as const;

export function createMemberStore(deps: { pool: Pool; catalog: DefinitionCatalog; now: () => number }): MemberStore {
  const { pool, catalog } = deps;

  async function definition(tenantId: string, definitionId: string): Promise<CatalogDefinition> {
    const def = await catalog.get(tenantId, definitionId);
    if (!def) throw notFoundError("definition", { definition_id: definitionId });
    return def;
  }

  async function memberId(client: PoolClient, tenantId: string, externalId: string): Promise<string> {
    const { rows } = await client.query<{ id: string }>("select id from member where tenant_id = $1 and external_id = $2", [tenantId, externalId]);
    if (!rows[0]) throw notFoundError("member", { member_external_id: externalId });
    return rows[0].id;
  }

  async function timestamps(client: PoolClient, id: string): Promise<{ createdAt: number; updatedAt: number }> {
    const { rows } = await client.query<{ created_at: Date; updated_at: Date }>("select created_at, updated_at from member_streak where id = $1", [id]);
    return { createdAt: rows[0]!.created_at.getTime(), updatedAt: rows[0]!.updated_at.getTime() };
  }

  return {
    async upsert(tenantId, input) {
      if (input.timeZone && !isValidZone(input.timeZone)) {
        throw new EngineError("INVALID_ARGUMENT", "INVALID_TIMEZONE", `unknown time zone "${input.timeZone}"`, { field: "member.time_zone" }, "member.time_zone");
      }
      const fields = [input.firstName, input.lastName, input.email, input.phone, input.timeZone, input.locale];
      const values = fields.map((v) => (v === undefined || v === "" ? null : v));
      const present = fields.map((v) => v !== undefined);
      const column = (name: string, i: number) => `${name} = case when $${10 + i}::boolean then excluded.${name} else member.${name} end`;
      // A concurrent creation of the same new member fails this upsert on the id (isNewMemberRace); once more finds it.
      const upsert = () => pool.query<MemberRow & { created: boolean }>(
        `insert into member (id, tenant_id, external_id, first_name, last_name, email, phone, time_zone, locale, points_balance, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, now(), now())
         ${ON_MEMBER_KEY} do update set
           ${["first_name", "last_name", "email", "phone", "time_zone", "locale"].map(column).join(",\n           ")},
           updated_at = now()
         returning ${MEMBER_COLUMNS}, (xmax = 0) as created`,
        [memberIdFor(tenantId, input.externalId), tenantId, input.externalId, ...values, ...present],
      );
      const { rows } = await upsert().catch((error: unknown) => {
        if (isNewMemberRace(error)) return upsert();
        throw error;
      });
      const row = rows[0]!;
      return { member: storedMember(row), created: row.created };
    },

    async get(tenantId, externalId) {
      const { rows } = await pool.query<MemberRow>(`select ${MEMBER_COLUMNS} from member where tenant_id = $1 and external_id = $2`, [tenantId, externalId]);
      if (!rows[0]) throw notFoundError("member", { member_external_id: externalId });
      return storedMember(rows[0]);
    },

    async grantFreezes(tenantId, memberExternalId, definitionId, count) {
      const def = await definition(tenantId, definitionId);
      if ((def.rules.freezePolicy?.maxHeld ?? 0) <= 0) {
        throw new EngineError("FAILED_PRECONDITION", "FREEZES_DISABLED", "the definition allows no freezes", { definition_id: definitionId });
      }
      return inTransaction(pool, async (client) => {
        const now = deps.now();
        const member = await memberId(client, tenantId, memberExternalId);
        const row = await lockMemberStreak(client, tenantId, member, def);
        const opts = { pausedIntervals: def.pauses };
        const before = advance(def.rules, row.state, now, opts).state.freezesHeld;
        const next = grantFreezes(def.rules, row.state, count, now, opts);
        const owner = { tenantId, memberId: member, memberExternalId, memberStreakId: row.id, activityId: null };
        await persistTransition(client, owner, def, next.state, next.effects, now, next);
        return {
          granted: Math.max(0, next.outcome.freezesHeld - before),
          streak: { definition: def, memberId: member, memberStreakId: row.id, state: next.state, ...(await timestamps(client, row.id)) },
        };
      });
    },

    async repair(tenantId, memberExternalId, definitionId) {
      const def = await definition(tenantId, definitionId);
      return inTransaction(pool, async (client) => {
        const now = deps.now();
        const member = await memberId(client, tenantId, memberExternalId);
        const row = await lockExistingMemberStreak(client, tenantId, member, definitionId);
        if (!row) throw notFoundError("member streak", { member_external_id: memberExternalId, definition_id: definitionId });
        const next = repair(def.rules, row.state, now, { pausedIntervals: def.pauses });
        if (next.outcome.kind === "NOT_REPAIRABLE") {
          // Nothing is written on refusal: the finalisation `repair` did in memory is the sweeps' and readers' job.
          throw new EngineError("FAILED_PRECONDITION", REPAIR_REASONS[next.outcome.reason], `the streak cannot be repaired (${next.outcome.reason.toLowerCase()})`, {
            definition_id: definitionId,
          });
        }
        const owner = { tenantId, memberId: member, memberExternalId, memberStreakId: row.id, activityId: null };
        await persistTransition(client, owner, def, next.state, next.effects, now, next);
        return {
          restoredCount: next.outcome.restoredCount,
          streak: { definition: def, memberId: member, memberStreakId: row.id, state: next.state, ...(await timestamps(client, row.id)) },
        };
      });
    },
  };
}
