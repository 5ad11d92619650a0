// How an API process hears that another one changed something it keeps in memory — a definition (the catalog), a
// tenant's browser origins or session key (browser access), a revoked API key (the verified-key cache): a
// PostgreSQL NOTIFY on the channel of that cache, sent after the change commits, arrives on every process within
// milliseconds. One connection per process LISTENs on every channel.
//
// A notice cannot reach a process whose listening connection is down (a database restart, a network cut), so each
// subscriber is told when that happens (`deaf`: distrust what you remember, e.g. shorten or bypass the cache) and
// when notices arrive again (`listening`: anything may have changed meanwhile, e.g. reload). The connection is
// re-established every second until it listens again.
import type { Pool, PoolClient } from "pg";

export interface ChangeSubscriber {
  /** The NOTIFY channel (a lower-case identifier). */
  readonly channel: string;
  /** A notice on the channel, with the payload it was sent with. */
  notice(payload: string): void;
  /** Notices may be missed from now on. */
  deaf(): void;
  /** Notices arrive again, after `deaf` (not when listening first starts: nothing can have been missed then). */
  listening(): void;
}

const CHANNEL_NAME = /^[a-z_][a-z0-9_]*$/;
const RECONNECT_MS = 1_000;

/** Sends a notice on a channel to every process (this one included), once the surrounding transaction commits. */
export async function announce(pool: Pick<Pool, "query">, channel: string, payload: string): Promise<void> {
  await pool.query("select pg_notify($1, $2)", [channel, payload]);
}

/**
 * Listens on every subscriber's channel on one connection, re-subscribing after a lost connection. The first
 * subscription's failure fails the call; later ones are retried every second. Returns a stop.
 */
export async function listenForChanges(pool: Pool, subscribers: readonly ChangeSubscriber[]): Promise<() => Promise<void>> {
  const byChannel = new Map<string, ChangeSubscriber[]>();
  for (const s of subscribers) {
    if (!CHANNEL_NAME.test(s.channel)) throw new Error(`not a channel name: ${s.channel}`);
    byChannel.set(s.channel, [...(byChannel.get(s.channel) ?? []), s]);
  }
  const statement = [...byChannel.keys()].map((channel) => `listen ${channel}`).join("; ");
  let stopped = false;
  let client: PoolClient | undefined;
  let retry: NodeJS.Timeout | undefined;
  let wasLost = false;

  const again = () => {
    if (!stopped) retry = setTimeout(() => void subscribe(false).catch(() => undefined), RECONNECT_MS);
  };
  const lost = (failed: PoolClient) => {
    if (client !== failed) return;
    client = undefined;
    wasLost = true;
    for (const s of subscribers) s.deaf();
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
        if (n.payload === undefined) return;
        for (const s of byChannel.get(n.channel) ?? []) s.notice(n.payload);
      });
      // A lost listening connection must not crash the process; it is replaced (`lost` ignores a connection that is
      // not, or no longer, the one listening).
      listening.on("error", () => lost(listening));
      listening.on("end", () => lost(listening));
      await listening.query(statement);
      if (stopped) {
        listening.release(true);
        return;
      }
      client = listening;
      if (wasLost) for (const s of subscribers) s.listening();
      wasLost = false;
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
    // Closed rather than returned to the pool, so its handlers and subscriptions go with it.
    current?.release(true);
  };
}
