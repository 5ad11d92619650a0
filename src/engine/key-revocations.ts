// API-key revocation across API processes. Each process keeps the keys it has verified in memory (the
// verified-key cache of src/api/interceptors/auth.interceptor.ts), so a call with a known key costs no database
// query. A revocation is therefore announced with a PostgreSQL NOTIFY, as the definition catalog and browser access
// announce their changes: every process LISTENs and drops the key from its cache when the notice arrives
// (milliseconds after the revoking transaction commits), so a revoked key stops working everywhere within a
// second.
//
// A notice cannot reach a process whose listening connection is down (a database restart, a network cut), so
// while it is down the process is told (`onDeaf`) to stop trusting what it remembers: the cache is emptied and
// bypassed, every call verifies its key against the database, until the connection is back and listening
// (`onListening`). It is re-established every second until it is.
import type { Pool, PoolClient } from "pg";

export interface KeyRevocations {
  /** Tells every API process (this one included) that the key was revoked. Call after the revocation commits. */
  announce(keyId: string): Promise<void>;
  /** Subscribes to revocations announced by any process, re-subscribing after a lost connection; returns a stop. */
  listen(): Promise<() => Promise<void>>;
}

export interface RevocationListener {
  /** A key was revoked (here or on another process). */
  revoked(keyId: string): void;
  /** Notices may be missed from now on: forget every verified key and remember none. */
  deaf(): void;
  /** Notices arrive again. */
  listening(): void;
}

const CHANNEL = "kindling_api_key_revoked";
const RECONNECT_MS = 1_000;

export function createKeyRevocations(pool: Pool, listener: RevocationListener): KeyRevocations {
  return {
    async announce(keyId) {
      listener.revoked(keyId);
      await pool.query("select pg_notify($1, $2)", [CHANNEL, keyId]);
    },

    async listen() {
      let stopped = false;
      let client: PoolClient | undefined;
      let retry: NodeJS.Timeout | undefined;

      const again = () => {
        if (!stopped) retry = setTimeout(() => void subscribe(false).catch(() => undefined), RECONNECT_MS);
      };
      const lost = (failed: PoolClient) => {
        if (client !== failed) return;
        client = undefined;
        listener.deaf();
        failed.release(true);
        again();
      };

      // The first subscription's failure fails the start; later ones are retried until one succeeds.
      async function subscribe(initial: boolean): Promise<void> {
        retry = undefined;
        let connection: PoolClient | undefined;
        try {
          connection = await pool.connect();
          const listening = connection;
          listening.on("notification", (n) => {
            if (n.channel === CHANNEL && n.payload) listener.revoked(n.payload);
          });
          // A lost listening connection must not crash the process; it is replaced (`lost` ignores a connection
          // that is not, or no longer, the one listening).
          listening.on("error", () => lost(listening));
          listening.on("end", () => lost(listening));
          await listening.query(`listen ${CHANNEL}`);
          if (stopped) {
            listening.release(true);
            return;
          }
          client = listening;
          listener.listening();
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
        // Closed rather than returned to the pool, so its handlers and subscription go with it.
        current?.release(true);
      };
    },
  };
}
