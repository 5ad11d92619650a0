// What browsers may do per tenant (issue 12): the origins allowed to call the API with the tenant's credentials
// (CORS), and the key Kindling signs the tenant's member sessions with. Both are read on the request path, so
// both are answered from memory:
//   - origins: every tenant's list is loaded when the process starts listening (a preflight carries no
//     credentials, so it is answered from "is this origin allowed for any tenant"), reloaded for one tenant when
//     any process changes it (a change notice, src/engine/change-notices.ts, as for the definition catalog), in
//     full when notices are heard again after a lost connection, and in full once a minute besides;
//   - session keys: loaded per tenant on first use and kept until a notice says the key changed (rotation) or a
//     TTL passes; while notices cannot be heard, read on every use. A token whose key id is not the cached one
//     reloads the key once (at most every 2 s per tenant), so a key created a moment ago by another process is
//     found before its notice arrives.
import { randomBytes } from "node:crypto";
import type { Pool } from "pg";
import { announce, type ChangeSubscriber } from "../change-notices.ts";
import type { SessionKey } from "../../auth/member-session.ts";

export interface BrowserOrigins {
  readonly origins: readonly string[];
  /** Epoch ms of the last SetBrowserOrigins; null if never. */
  readonly updatedAt: number | null;
}

export interface BrowserAccess {
  /** Whether any tenant allows the origin (preflights). In memory. */
  allowedForAnyTenant(origin: string): boolean;
  /** Whether the tenant allows the origin. In memory. */
  allowedForTenant(tenantId: string, origin: string): boolean;
  origins(tenantId: string): Promise<BrowserOrigins>;
  setOrigins(tenantId: string, origins: readonly string[], at: number): Promise<BrowserOrigins>;
  /** The tenant's current session key, or undefined if it never minted a session. `kid` is the token's key id. */
  sessionKey(tenantId: string, kid: string): Promise<SessionKey | undefined>;
  /** The tenant's session key, created on first use. */
  ensureSessionKey(tenantId: string, at: number): Promise<SessionKey>;
  /** Replaces the tenant's session key; tokens signed with the old one fail on every process once notified. */
  rotateSessionKey(tenantId: string, at: number): Promise<void>;
  /** Loads every tenant's origins and reloads them once a minute; returns a stop. */
  start(): Promise<() => Promise<void>>;
  /** Hears other processes' changes (for listenForChanges). */
  readonly changes: ChangeSubscriber;
}

const CHANNEL = "kindling_browser_access_changed";
const FULL_RELOAD_MS = 60_000;
const KEY_RECHECK_MS = 2_000;

export function createBrowserAccess(pool: Pool, keyTtlMs = 60_000, now: () => number = Date.now): BrowserAccess {
  let byTenant = new Map<string, ReadonlySet<string>>();
  let tenantsByOrigin = new Map<string, number>();
  const keys = new Map<string, Promise<{ key: SessionKey | undefined; loadedAt: number }>>();
  let deaf = false;

  function indexOrigins(map: Map<string, ReadonlySet<string>>): Map<string, number> {
    const counts = new Map<string, number>();
    for (const origins of map.values()) for (const origin of origins) counts.set(origin, (counts.get(origin) ?? 0) + 1);
    return counts;
  }

  function applyTenant(tenantId: string, origins: readonly string[]): void {
    const next = new Map(byTenant);
    if (origins.length === 0) next.delete(tenantId);
    else next.set(tenantId, new Set(origins));
    byTenant = next;
    tenantsByOrigin = indexOrigins(next);
  }

  async function loadAll(): Promise<void> {
    const { rows } = await pool.query<{ tenant_id: string; origins: string[] }>(
      "select tenant_id, origins from tenant_browser_access where cardinality(origins) > 0",
    );
    const next = new Map<string, ReadonlySet<string>>(rows.map((r) => [r.tenant_id, new Set(r.origins)]));
    byTenant = next;
    tenantsByOrigin = indexOrigins(next);
  }

  async function loadTenantOrigins(tenantId: string): Promise<void> {
    const { rows } = await pool.query<{ origins: string[] }>("select origins from tenant_browser_access where tenant_id = $1", [tenantId]);
    applyTenant(tenantId, rows[0]?.origins ?? []);
  }

  async function loadKey(tenantId: string): Promise<{ key: SessionKey | undefined; loadedAt: number }> {
    const { rows } = await pool.query<{ session_key: Buffer | null; session_key_id: string | null }>(
      "select session_key, session_key_id from tenant_browser_access where tenant_id = $1",
      [tenantId],
    );
    const row = rows[0];
    const key = row?.session_key && row.session_key_id ? { id: row.session_key_id, secret: new Uint8Array(row.session_key) } : undefined;
    return { key, loadedAt: now() };
  }

  function cachedKey(tenantId: string) {
    let entry = keys.get(tenantId);
    if (!entry) {
      if (keys.size > 100_000) keys.clear();
      entry = loadKey(tenantId);
      keys.set(tenantId, entry);
      entry.catch(() => keys.delete(tenantId));
    }
    return entry;
  }

  const notify = (tenantId: string) => announce(pool, CHANNEL, tenantId);

  const newKey = () => ({ id: randomBytes(12).toString("base64url"), secret: randomBytes(32) });

  return {
    allowedForAnyTenant(origin) {
      return tenantsByOrigin.has(origin);
    },
    allowedForTenant(tenantId, origin) {
      return byTenant.get(tenantId)?.has(origin) ?? false;
    },

    async origins(tenantId) {
      const { rows } = await pool.query<{ origins: string[]; origins_updated_at: Date | null }>(
        "select origins, origins_updated_at from tenant_browser_access where tenant_id = $1",
        [tenantId],
      );
      return { origins: rows[0]?.origins ?? [], updatedAt: rows[0]?.origins_updated_at?.getTime() ?? null };
    },

    async setOrigins(tenantId, origins, at) {
      const { rows } = await pool.query<{ origins: string[]; origins_updated_at: Date }>(
        `insert into tenant_browser_access (tenant_id, origins, origins_updated_at) values ($1, $2, $3)
         on conflict (tenant_id) do update set origins = excluded.origins, origins_updated_at = excluded.origins_updated_at
         returning origins, origins_updated_at`,
        [tenantId, origins, new Date(at)],
      );
      const row = rows[0]!;
      applyTenant(tenantId, row.origins);
      await notify(tenantId);
      return { origins: row.origins, updatedAt: row.origins_updated_at.getTime() };
    },

    async sessionKey(tenantId, kid) {
      if (deaf) return (await loadKey(tenantId)).key;
      const entry = await cachedKey(tenantId);
      const age = now() - entry.loadedAt;
      if (age < keyTtlMs && (entry.key?.id === kid || age < KEY_RECHECK_MS)) return entry.key;
      keys.delete(tenantId);
      return (await cachedKey(tenantId)).key;
    },

    async ensureSessionKey(tenantId, at) {
      // Minting with a key this process already holds costs nothing; the upsert (which locks the tenant's row) runs
      // only for the tenant's first key, or when the cached one is due for a reload.
      const cached = await cachedKey(tenantId);
      if (cached.key !== undefined && now() - cached.loadedAt < keyTtlMs) return cached.key;
      const candidate = newKey();
      // An existing key is kept (coalesce): concurrent first mints on several processes agree on one key.
      const { rows } = await pool.query<{ session_key: Buffer; session_key_id: string }>(
        `insert into tenant_browser_access (tenant_id, session_key, session_key_id, session_key_rotated_at) values ($1, $2, $3, $4)
         on conflict (tenant_id) do update set
           session_key = coalesce(tenant_browser_access.session_key, excluded.session_key),
           session_key_id = coalesce(tenant_browser_access.session_key_id, excluded.session_key_id),
           session_key_rotated_at = coalesce(tenant_browser_access.session_key_rotated_at, excluded.session_key_rotated_at)
         returning session_key, session_key_id`,
        [tenantId, candidate.secret, candidate.id, new Date(at)],
      );
      const row = rows[0]!;
      const key = { id: row.session_key_id, secret: new Uint8Array(row.session_key) };
      if (key.id === candidate.id) {
        keys.set(tenantId, Promise.resolve({ key, loadedAt: now() }));
        await notify(tenantId);
      }
      return key;
    },

    async rotateSessionKey(tenantId, at) {
      const key = newKey();
      await pool.query(
        `insert into tenant_browser_access (tenant_id, session_key, session_key_id, session_key_rotated_at) values ($1, $2, $3, $4)
         on conflict (tenant_id) do update set session_key = excluded.session_key, session_key_id = excluded.session_key_id,
           session_key_rotated_at = excluded.session_key_rotated_at`,
        [tenantId, key.secret, key.id, new Date(at)],
      );
      keys.set(tenantId, Promise.resolve({ key, loadedAt: now() }));
      await notify(tenantId);
    },

    async start() {
      await loadAll();
      // A missed notice is also repaired by the next full reload.
      const timer = setInterval(() => void loadAll().catch(() => undefined), FULL_RELOAD_MS);
      timer.unref();
      return async () => clearInterval(timer);
    },

    changes: {
      channel: CHANNEL,
      notice(tenantId) {
        keys.delete(tenantId);
        loadTenantOrigins(tenantId).catch(() => undefined);
      },
      deaf() {
        deaf = true;
        keys.clear();
      },
      // Changes made while deaf were not heard: start afresh.
      listening() {
        deaf = false;
        keys.clear();
        loadAll().catch(() => undefined);
      },
    },
  };
}
