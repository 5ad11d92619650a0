// A real PostgreSQL database (migrated) with one tenant, definitions written as the API writes them, and the
// real activity ingestor, for the orchestration tests: they drive time themselves (a time-skipping Temporal
// server's clock), so recording takes an explicit `now`.
import { randomUUID } from "node:crypto";
import pg from "pg";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { CalendarPeriod, ConditionType, StreakDefinitionSchema } from "../../src/gen/kindling/v1/definition_pb.js";
import { specFromMessage } from "../../src/api/mappers/definition.mapper.ts";
import { createOrm, migrate } from "../../src/db/orm.ts";
import { createTenantWithAdminKey } from "../../src/db/repositories/tenant.repository.ts";
import { createDefinitionCatalog, type CatalogDefinition } from "../../src/engine/definitions/definition-catalog.ts";
import { createActivityIngestor, type RecordActivityResult } from "../../src/engine/ingest/activity-ingestor.ts";
import type { PauseInterval } from "../../src/db/entities/index.ts";
import { createTestDatabase, type TestDatabase } from "./database.ts";

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export interface OrchestrationDb {
  readonly db: TestDatabase;
  readonly pool: pg.Pool;
  readonly tenantId: string;
  /** Inserts a definition in `state` (LIVE by default); returns its id. */
  definition(init: MessageInitShape<typeof StreakDefinitionSchema>, state?: "LIVE" | "PAUSED" | "DRAFT"): Promise<string>;
  catalogDefinition(id: string): Promise<CatalogDefinition>;
  record(member: string, definitionId: string, occurredAt: number, now: number, key?: string, value?: number): Promise<RecordActivityResult>;
  setState(definitionId: string, state: "LIVE" | "PAUSED" | "ARCHIVED", pauses: PauseInterval[]): Promise<void>;
  events(type: string, definitionId?: string): Promise<{ member: string; payload: Record<string, unknown>; occurredAt: number; dedupeKey: string }[]>;
  streak(member: string, definitionId: string): Promise<{ status: string; current_count: number; break_at: Date | null; break_kind: string | null; at_risk_notified_window: string | null }>;
  close(): Promise<void>;
}

/** A definition init with daily UTC windows and COUNT >= 1, overridden by `init` (a plain init object, not a message). */
export function dailyUtc(init: Omit<MessageInitShape<typeof StreakDefinitionSchema>, "$typeName"> = {}): MessageInitShape<typeof StreakDefinitionSchema> {
  return {
    name: "Daily",
    eventTypes: [],
    window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
    condition: { type: ConditionType.COUNT, min: 1 },
    ...init,
  };
}

export async function createOrchestrationDb(label: string): Promise<OrchestrationDb> {
  const db = await createTestDatabase({ label });
  const orm = await createOrm(db.url, 2);
  await migrate(orm);
  const { tenantId } = await createTenantWithAdminKey(orm.em.fork(), { id: randomUUID(), name: label });
  await orm.close();
  const pool = new pg.Pool({ connectionString: db.url, max: 8 });
  const catalog = createDefinitionCatalog(pool, 0);
  let clock = 0;
  const ingestor = createActivityIngestor({ pool, catalog, now: () => clock });

  return {
    db,
    pool,
    tenantId,
    async definition(init, state = "LIVE") {
      const id = randomUUID();
      const message = create(StreakDefinitionSchema, init);
      await pool.query(
        `insert into streak_definition (id, tenant_id, name, description, state, event_types, spec, pauses, version, created_at, updated_at)
         values ($1, $2, $3, '', $4, $5, $6, '[]', 1, now(), now())`,
        [id, tenantId, message.name, state, message.eventTypes, JSON.stringify(specFromMessage(message))],
      );
      return id;
    },
    async catalogDefinition(id) {
      const def = await catalog.get(tenantId, id);
      if (!def) throw new Error(`definition ${id} not found`);
      return def;
    },
    async record(member, definitionId, occurredAt, now, key, value) {
      clock = now;
      return ingestor.record({
        tenantId, memberExternalId: member, target: { definitionId }, occurredAt, value, uniqueIdentifier: key ?? `${member}-${occurredAt}`, metadata: {},
      });
    },
    async setState(definitionId, state, pauses) {
      await pool.query("update streak_definition set state = $2, pauses = $3, version = version + 1 where id = $1", [definitionId, state, JSON.stringify(pauses)]);
    },
    async events(type, definitionId) {
      const { rows } = await pool.query<{ external_id: string; payload: Record<string, unknown>; occurred_at: Date; dedupe_key: string }>(
        `select m.external_id, e.payload, e.occurred_at, e.dedupe_key from streak_event e join member m on m.id = e.member_id
          where e.tenant_id = $1 and e.type = $2 and ($3::uuid is null or e.definition_id = $3) order by e.id`,
        [tenantId, type, definitionId ?? null],
      );
      return rows.map((r) => ({ member: r.external_id, payload: r.payload, occurredAt: r.occurred_at.getTime(), dedupeKey: r.dedupe_key }));
    },
    async streak(member, definitionId) {
      const { rows } = await pool.query(
        `select s.status, s.current_count, s.break_at, s.break_kind, s.at_risk_notified_window from member_streak s join member m on m.id = s.member_id
          where s.tenant_id = $1 and m.external_id = $2 and s.definition_id = $3`,
        [tenantId, member, definitionId],
      );
      if (!rows[0]) throw new Error(`no streak for ${member}`);
      return rows[0] as Awaited<ReturnType<OrchestrationDb["streak"]>>;
    },
    async close() {
      await pool.end();
      await db.drop();
    },
  };
}
