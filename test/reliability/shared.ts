// Helpers the reliability tests share on top of support.ts: a tenant with an ADMIN key on any database, Connect
// clients for an API URL, and the checks "each streak equals its recompute from stored history".
import { randomUUID } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { createOrm } from "../../src/db/orm.ts";
import { createTenantWithAdminKey } from "../../src/db/repositories/tenant.repository.ts";
import { createDefinitionCatalog } from "../../src/engine/definitions/definition-catalog.ts";
import { recompute, type MemberStreakState } from "../../src/domain/streak-machine.ts";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";

export interface Tenant {
  readonly tenantId: string;
  readonly keyId: string;
  readonly secret: string;
}

export async function createTenant(databaseUrl: string, name = "reliability"): Promise<Tenant> {
  const orm = await createOrm(databaseUrl, 1);
  try {
    return await createTenantWithAdminKey(orm.em.fork(), { id: randomUUID(), name });
  } finally {
    await orm.close();
  }
}

export function transportFor(url: string, tenant: Tenant, protocol: "grpc" | "connect-json" = "grpc", timeoutMs = 15_000): Transport {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("apikey", tenant.keyId);
    req.header.set("secretkey", tenant.secret);
    return next(req);
  };
  const common = { baseUrl: url, interceptors: [auth], defaultTimeoutMs: timeoutMs };
  return protocol === "grpc" ? createGrpcTransport(common) : createConnectTransport({ ...common, httpVersion: "1.1" });
}

export function clientFor<S extends DescService>(service: S, transport: Transport): Client<S> {
  return createClient(service, transport);
}

/** A LIVE daily COUNT ≥ 1 definition with POINTS milestones (CLAIM: no Temporal work needed to hold them). */
export async function dailyDefinition(transport: Transport, name: string, eventType?: string, startTimeMs?: number): Promise<string> {
  const defs = clientFor(DefinitionService, transport);
  const { definition } = await defs.createDefinition({
    definition: {
      name,
      eventTypes: eventType ? [eventType] : [],
      ...(startTimeMs === undefined ? {} : { startTime: timestampFromMs(startTimeMs) }),
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 1 },
      milestones: [
        { threshold: 2, reward: { kind: RewardKind.POINTS, points: 10, fulfilmentMode: FulfilmentMode.CLAIM } },
        { threshold: 4, reward: { kind: RewardKind.POINTS, points: 40, fulfilmentMode: FulfilmentMode.CLAIM } },
      ],
    },
  });
  await defs.publishDefinition({ definitionId: definition!.id });
  return definition!.id;
}

export interface StreakMismatch {
  member: string;
  stored: unknown;
  recomputed: unknown;
}

/** Every member streak of the definition against the domain's recompute from the activities stored for it. */
export async function streaksAgainstRecompute(pool: pg.Pool, tenantId: string, definitionId: string, now: number): Promise<{ checked: number; mismatches: StreakMismatch[] }> {
  const catalog = createDefinitionCatalog(pool, 30_000, () => now);
  const def = await catalog.get(tenantId, definitionId);
  if (!def) throw new Error(`definition ${definitionId} not found`);
  const { rows } = await pool.query<{ external_id: string; member_id: string; state: MemberStreakState }>(
    `select m.external_id, m.id as member_id, st.state
       from member_streak s join member_streak_state st on st.member_streak_id = s.id join member m on m.id = s.member_id
      where s.tenant_id = $1 and s.definition_id = $2`,
    [tenantId, definitionId],
  );
  const history = await pool.query<{ member_id: string; unique_identifier: string; occurred_at: Date; value: number | null }>(
    `select member_id, unique_identifier, occurred_at, value from activity where tenant_id = $1 and $2 = any(applied_definition_ids)`,
    [tenantId, definitionId],
  );
  const byMember = new Map<string, typeof history.rows>();
  for (const row of history.rows) byMember.set(row.member_id, [...(byMember.get(row.member_id) ?? []), row]);
  const mismatches: StreakMismatch[] = [];
  for (const row of rows) {
    const activities = (byMember.get(row.member_id) ?? []).map((a) => ({ id: a.unique_identifier, occurredAt: a.occurred_at.getTime(), value: a.value ?? 0, memberTimezone: row.state.zone }));
    const expected = recompute(def.rules, activities, now, { pausedIntervals: def.pauses });
    const stored = { current: row.state.current, longest: row.state.longest, status: row.state.status, activityCount: row.state.activityCount };
    const recomputed = { current: expected.current, longest: expected.longest, status: expected.status, activityCount: expected.activityCount };
    if (JSON.stringify(stored) !== JSON.stringify(recomputed)) mismatches.push({ member: row.external_id, stored, recomputed });
  }
  return { checked: rows.length, mismatches };
}
