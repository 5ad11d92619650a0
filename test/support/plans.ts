// EXPLAIN of the statements the API prepares, for the plan tests (test/db/*-plans.test.ts): each is PREPAREd as the
// API prepares it and explained under the generic and the custom plan, since PostgreSQL may use either.
import type pg from "pg";
import { sqlLiteral } from "../../src/engine/ingest/sql-literal.ts";

/** The plans of one prepared statement for these arguments, generic and custom, as EXPLAIN prints them. */
export async function preparedPlans(pool: pg.Pool, text: string, types: readonly string[], args: readonly unknown[]): Promise<string[]> {
  const client = await pool.connect();
  try {
    await client.query(`prepare checked(${types.join(", ")}) as ${text}`);
    const out: string[] = [];
    for (const mode of ["force_generic_plan", "force_custom_plan"]) {
      await client.query(`set plan_cache_mode = ${mode}`);
      const { rows } = await client.query<{ "QUERY PLAN": string }>(`explain execute checked(${args.map(sqlLiteral).join(", ")})`);
      out.push(`${mode}:\n${rows.map((r) => r["QUERY PLAN"]).join("\n")}`);
    }
    return out;
  } finally {
    await client.query("deallocate all; reset plan_cache_mode").catch(() => undefined);
    client.release();
  }
}

/**
 * A plan without the scans of week partitions the statistics say are empty (an ANALYZE of the partitioned table
 * also analyzes the weeks created ahead): PostgreSQL plans such a partition as a sequential scan of nothing
 * (cost 0.00..0.01 at most), which is no scan of the table's rows. Every other scan of a partition stays, so a
 * partition with rows in it that is scanned still fails the plan checks.
 */
export function withoutEmptyPartitionScans(plan: string): string {
  const lines = plan.split("\n");
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/Seq Scan on \w+_(legacy|default|p\d{8}) \w+\s+\(cost=0\.00\.\.0\.0[01] rows=1 /.test(line)) {
      // Its Filter line goes with it.
      if (/^\s*Filter:/.test(lines[i + 1] ?? "")) i++;
      continue;
    }
    out.push(line);
  }
  return out.join("\n");
}
