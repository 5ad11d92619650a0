// API-key revocation across API processes. Each process keeps the keys it has verified in memory (the
// verified-key cache of src/api/interceptors/auth.interceptor.ts), so a call with a known key costs no database
// query. A revocation is therefore announced on a change channel (src/engine/change-notices.ts), as definition
// and browser-access changes are: every process drops the key from its cache when the notice arrives
// (milliseconds after the revoking transaction commits), so a revoked key stops working everywhere within a
// second.
//
// While a process cannot hear notices (its listening connection is down), it is told to stop trusting what it
// remembers (`deaf`): the cache is emptied and bypassed, every call verifies its key against the database, until
// notices arrive again (`listening`).
import type { Pool } from "pg";
import { announce, type ChangeSubscriber } from "../change-notices.ts";

export interface KeyRevocations {
  /** Tells every API process (this one included) that the key was revoked. Call after the revocation commits. */
  announce(keyId: string): Promise<void>;
  /** Hears revocations announced by any process (for listenForChanges). */
  readonly changes: ChangeSubscriber;
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

export function createKeyRevocations(pool: Pool, listener: RevocationListener): KeyRevocations {
  return {
    async announce(keyId) {
      listener.revoked(keyId);
      await announce(pool, CHANNEL, keyId);
    },
    changes: {
      channel: CHANNEL,
      notice: (keyId) => listener.revoked(keyId),
      deaf: () => listener.deaf(),
      listening: () => listener.listening(),
    },
  };
}
