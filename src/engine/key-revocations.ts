// API-key revocation across API processes. Each process keeps the keys it has verified in memory (the
// verified-key cache of src/api/interceptors/auth.interceptor.ts), so a call with a known key costs no database
// query. A revocation is therefore announced with a PostgreSQL NOTIFY, as the definition catalog and browser access
// announce their changes: every process LISTENs and drops the key from its cache when the notice arrives
// (milliseconds after the revoking transaction commits), so a revoked key stops working everywhere within a
// second. A notice missed while the listening connection was down is covered by the cache's TTL (a minute).
import type { Pool, PoolClient } from "pg";

export interface KeyRevocations {
  /** Tells every API process (this one included) that the key was revoked. Call after the revocation commits. */
  announce(keyId: string): Promise<void>;
  /** Subscribes to revocations announced by any process; returns a stop. */
  listen(): Promise<() => Promise<void>>;
}

const CHANNEL = "kindling_api_key_revoked";

export function createKeyRevocations(pool: Pool, onRevoked: (keyId: string) => void): KeyRevocations {
  return {
    async announce(keyId) {
      onRevoked(keyId);
      await pool.query("select pg_notify($1, $2)", [CHANNEL, keyId]);
    },
    async listen() {
      const client: PoolClient = await pool.connect();
      // A lost listening connection must not crash the process: the cache's TTL bounds what a missed notice costs.
      client.on("error", () => undefined);
      client.on("notification", (n) => {
        if (n.channel === CHANNEL && n.payload) onRevoked(n.payload);
      });
      await client.query(`listen ${CHANNEL}`);
      return async () => {
        await client.query(`unlisten ${CHANNEL}`).catch(() => undefined);
        client.release();
      };
    },
  };
}
