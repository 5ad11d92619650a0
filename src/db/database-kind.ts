// Which database Kindling talks to: plain PostgreSQL or a Citus coordinator (issue 18, docs/scaling.md "Beyond one
// PostgreSQL: Citus"). Migration 0018 distributes the tables when the citus extension is installed; the hot path
// then runs statements that each name one member's shard (createActivityIngestor's `citus`, the batch ingestor's
// per-member groups, the per-member progress reader).
import type { Pool } from "pg";

export type DatabaseKind = "postgres" | "citus";

/** The kind `configured` names, asking the database for `auto`; refuses `citus` on a database without the extension. */
export async function resolveDatabaseKind(pool: Pick<Pool, "query">, configured: "auto" | DatabaseKind): Promise<DatabaseKind> {
  if (configured === "postgres") return "postgres";
  const { rows } = await pool.query<{ citus: boolean }>("select exists (select 1 from pg_extension where extname = 'citus') as citus");
  const citus = rows[0]?.citus === true;
  if (configured === "citus" && !citus) {
    throw new Error("KINDLING_DATABASE_KIND=citus but the database has no citus extension: run `create extension citus` on the coordinator before Kindling migrates it");
  }
  return citus ? "citus" : "postgres";
}
