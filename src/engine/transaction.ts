// One PostgreSQL transaction on a pooled connection: commit when `work` resolves, roll back when it throws.
import type { Pool, PoolClient } from "pg";

export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("begin");
    const result = await work(client);
    await client.query("commit");
    return result;
  } catch (error) {
    await client.query("rollback").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * SQLSTATEs of a transaction PostgreSQL rolled back whole so that another could go on: a deadlock's victim
 * (40P01) and a serialization failure (40001). Nothing of it is stored, so running it again is safe.
 */
const ROLLED_BACK_FOR_ANOTHER = new Set(["40P01", "40001"]);

/** A database error's SQLSTATE (pg's `code`); undefined for anything else. */
export const sqlState = (error: unknown): string | undefined => {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
};

export const isRolledBackForAnother = (error: unknown): boolean => ROLLED_BACK_FOR_ANOTHER.has(sqlState(error) ?? "");

/**
 * `inTransaction`, run again when PostgreSQL rolled it back for another transaction (isRolledBackForAnother) or
 * `alsoRetry` says the failure left nothing behind; at most `attempts` runs in all, the last failure thrown.
 */
export async function inRetriedTransaction<T>(
  pool: Pool,
  work: (client: PoolClient) => Promise<T>,
  options: { readonly attempts: number; readonly alsoRetry?: (error: unknown) => boolean },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await inTransaction(pool, work);
    } catch (error) {
      const retried = isRolledBackForAnother(error) || (options.alsoRetry?.(error) ?? false);
      if (attempt >= options.attempts || !retried) throw error;
    }
  }
}
