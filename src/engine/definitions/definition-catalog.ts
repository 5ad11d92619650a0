// A tenant's definitions, parsed once per version: the proto message (for responses and reward settings) and the
// domain's StreakRules (for the engine). Recording an activity must not re-read and re-parse its definitions,
// so they are cached per tenant and dropped when any process changes one: DefinitionService calls
// `invalidate`, which also notifies other processes through PostgreSQL (`changes`, heard through
// src/engine/change-notices.ts). A TTL bounds staleness; while notices cannot be heard nothing is cached.
import type { Pool } from "pg";
import { announce, type ChangeSubscriber } from "../change-notices.ts";
import { fromJson, type JsonObject } from "@bufbuild/protobuf";
import { StreakDefinitionSchema, type StreakDefinition as DefinitionMessage } from "../../gen/kindling/v1/definition_pb.js";
import type { DefinitionState, PauseInterval } from "../../db/entities/index.ts";
import type { StreakRules } from "../../domain/rules.ts";
import { rulesFromMessage } from "./definition-rules.ts";

export interface CatalogDefinition {
  readonly id: string;
  readonly tenantId: string;
  readonly state: DefinitionState;
  readonly version: number;
  readonly message: DefinitionMessage;
  readonly rules: StreakRules;
  readonly eventTypes: readonly string[];
  readonly startAt: number | null;
  readonly endAt: number | null;
  readonly pauses: readonly PauseInterval[];
}

interface TenantEntry {
  readonly byId: Map<string, CatalogDefinition>;
  readonly byEventType: Map<string, CatalogDefinition[]>;
  readonly loadedAt: number;
}

const CHANNEL = "kindling_definition_changed";

export interface DefinitionCatalog {
  /** Any definition of the tenant, in any state; callers decide what each state allows. */
  get(tenantId: string, id: string): Promise<CatalogDefinition | undefined>;
  byEventType(tenantId: string, eventType: string): Promise<readonly CatalogDefinition[]>;
  /** LIVE definitions, for "not started" views. */
  live(tenantId: string): Promise<readonly CatalogDefinition[]>;
  invalidate(tenantId: string): Promise<void>;
  /** Hears other processes' changes (for listenForChanges). */
  readonly changes: ChangeSubscriber;
}

export function createDefinitionCatalog(pool: Pool, ttlMs = 30_000, now: () => number = Date.now): DefinitionCatalog {
  const tenants = new Map<string, Promise<TenantEntry>>();
  let deaf = false;

  async function load(tenantId: string): Promise<TenantEntry> {
    const { rows } = await pool.query<{
      id: string; state: DefinitionState; version: number; spec: JsonObject; event_types: string[];
      start_at: Date | null; end_at: Date | null; pauses: PauseInterval[];
    }>(
      `select id, state, version, spec, event_types, start_at, end_at, pauses
         from streak_definition where tenant_id = $1`,
      [tenantId],
    );
    const byId = new Map<string, CatalogDefinition>();
    const byEventType = new Map<string, CatalogDefinition[]>();
    for (const r of rows) {
      const message = fromJson(StreakDefinitionSchema, r.spec, { ignoreUnknownFields: true });
      message.id = r.id;
      const def: CatalogDefinition = {
        id: r.id, tenantId, state: r.state, version: r.version, message, rules: rulesFromMessage(message),
        eventTypes: r.event_types, startAt: r.start_at?.getTime() ?? null, endAt: r.end_at?.getTime() ?? null, pauses: r.pauses,
      };
      byId.set(r.id, def);
      // Fan-out by event type reaches definitions that take activity now or may again (paused ones answer
      // "not applied"); drafts and archived ones are not subscribed.
      if (r.state === "LIVE" || r.state === "PAUSED") {
        for (const type of r.event_types) byEventType.set(type, [...(byEventType.get(type) ?? []), def]);
      }
    }
    return { byId, byEventType, loadedAt: now() };
  }

  async function entry(tenantId: string): Promise<TenantEntry> {
    const cached = tenants.get(tenantId);
    if (cached) {
      const value = await cached;
      if (now() - value.loadedAt < ttlMs) return value;
    }
    const loading = load(tenantId);
    // While changes cannot be heard, nothing is cached: every call reads the definitions.
    if (deaf) return loading;
    tenants.set(tenantId, loading);
    loading.catch(() => tenants.delete(tenantId));
    return loading;
  }

  return {
    async get(tenantId, id) {
      return (await entry(tenantId)).byId.get(id);
    },
    async byEventType(tenantId, eventType) {
      return (await entry(tenantId)).byEventType.get(eventType) ?? [];
    },
    async live(tenantId) {
      return [...(await entry(tenantId)).byId.values()].filter((d) => d.state === "LIVE");
    },
    async invalidate(tenantId) {
      tenants.delete(tenantId);
      await announce(pool, CHANNEL, tenantId);
    },
    changes: {
      channel: CHANNEL,
      notice: (tenantId) => void tenants.delete(tenantId),
      deaf: () => {
        deaf = true;
        tenants.clear();
      },
      // Changes made while deaf were not heard: start afresh.
      listening: () => {
        deaf = false;
        tenants.clear();
      },
    },
  };
}
