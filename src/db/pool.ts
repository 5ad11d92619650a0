// The `pg` pool Kindling's hot paths and worker use, made to survive a lost database (a restart, a failover, a
// network cut). pg re-emits a connection's loss as an 'error' event on its Client, and an 'error' event nobody
// listens to ends the process. The pool listens on idle clients only; a client checked out between
// `pool.connect()` and `release()` (a transaction, a batch) had no listener, so a PostgreSQL restart under load
// killed the API process. Every client now has one: the loss still fails the query in flight (its caller answers
// or retries), and the pool discards the broken client on release.
import pg from "pg";
import type { Logger } from "../observability/logger.ts";

export function createPool(config: pg.PoolConfig, logger: Logger): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on("connect", (client) => {
    client.on("error", (error) => logger.debug({ error: error.message }, "database connection lost while in use"));
  });
  // An idle client whose connection drops: the pool replaces it.
  pool.on("error", (error) => logger.warn({ error: error.message }, "idle database connection lost"));
  return pool;
}
