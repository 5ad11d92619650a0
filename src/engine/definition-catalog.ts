// A tenant's definitions, parsed once per version: the proto message (for responses and reward settings) and the
// domain's StreakRules (for the engine). Recording an activity must not re-read and re-parse its definitions,
// so they are cached per tenant and dropped when any process changes one: DefinitionService calls
// `invalidate`, which also NOTIFYs other processes through PostgreSQL (see `listen`). A TTL bounds staleness
// if a notification is ever missed; while the listening connection is down nothing is cached at all.
import type { Pool, PoolClient } from "pg";
import { fromJson, type JsonObject } from "@bufbuild/protobuf";
import { StreakDefinitionSchema, type StreakDefinition as DefinitionMessage } from "../gen/kindling/v1/definition_pb.js";
import type { DefinitionState, PauseInterval } from "../db/entities/index.ts";
import type { StreakRules } from "../domain/rules.ts";
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
const RECONNECT_MS = 1_000;

export interface DefinitionCatalog {
  /** Any definition of the tenant, in any state; callers decide what each state allows. */
  get(tenantId: string, id: string): Promise<CatalogDefinition | undefined>;
  byEventType(tenantId: string, eventType: string): Promise<readonly CatalogDefinition[]>;
  /** LIVE definitions, for "not started" views. */
  live(tenantId: string): Promise<readonly CatalogDefinition[]>;
  invalidate(tenantId: string): Promise<void>;
  /** Subscribes to other processes' changes; returns an unsubscribe. */
  listen(): Promise<() => Promise<void>>;
}

export function createDefinitionCatalog(pool: Pool, ttlMs = 30_000, now: () => number = Date.now): DefinitionCatalog {
  const tenants = new Map<string, Promise<TenantEntry>>();
  // True while a listening connection was lost and not yet replaced: changes may go unheard, so nothing is cached.
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
      await pool.query("select pg_notify($1, $2)", [CHANNEL, tenantId]);
    },
    async listen() {
      let stopped = false;
      let client: PoolClient | undefined;
      let retry: NodeJS.Timeout | undefined;
      const again = () => {
        if (!stopped) retry = setTimeout(() => void subscribe(false).catch(() => undefined), RECONNECT_MS);
      };
      // A lost listening connection (a database restart, a network cut) must not crash the process. Notices sent
      // while it is down are missed, so nothing is cached until it listens again, and it is replaced every second.
      const lost = (failed: PoolClient) => {
        if (client !== failed) return;
        client = undefined;
        deaf = true;
        tenants.clear();
        failed.release(true);
        again();
      };
      async function subscribe(initial: boolean): Promise<void> {
        retry = undefined;
        let connection: PoolClient | undefined;
        try {
          connection = await pool.connect();
          const listening = connection;
          listening.on("notification", (n) => {
            if (n.channel === CHANNEL && n.payload) tenants.delete(n.payload);
          });
          listening.on("error", () => lost(listening));
          listening.on("end", () => lost(listening));
          await listening.query(`listen ${CHANNEL}`);
          if (stopped) {
            listening.release(true);
            return;
          }
          client = listening;
          // What was loaded while deaf may predate a change whose notice was missed.
          if (deaf) tenants.clear();
          deaf = false;
        } catch (error) {
          connection?.release(true);
          if (!initial) again();
          throw error;
        }
      }
      await subscribe(true);
      return async () => {
        stopped = true;
        if (retry) clearTimeout(retry);
        const current = client;
        client = undefined;
        if (current) {
          await current.query(`unlisten ${CHANNEL}`).catch(() => undefined);
          // Closed rather than returned to the pool, so its handlers and subscription go with it.
          current.release(true);
        }
      };
    },
  };
}
