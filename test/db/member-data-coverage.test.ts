// Erasure and export cover every table that holds member data: a table with a column naming a member (its id, its
// external id, one of its streaks, rewards or events) must have a line in the coverage map
// (src/engine/data-rights/coverage.ts) or say in NO_MEMBER_DATA why it holds nothing about any one member. A new
// table — say a streak_window history keyed by member_id — fails `coverage/every_table_with_member_columns_is_covered`
// until its line is added; the map's conditions are checked against the real schema.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { createOrm, migrate, type Orm } from "../../src/db/orm.ts";
import { MEMBER_DATA, NO_MEMBER_DATA, memberRowsSql } from "../../src/engine/data-rights/coverage.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";

/** Column names that point at a member or at something only one member has. */
const MEMBER_COLUMN = /member|external_id|user_id|reward_id|event_id|streak_id/;

let db: TestDatabase;
let orm: Orm;
let pool: pg.Pool;
beforeAll(async () => {
  db = await createTestDatabase({ label: "member_data_coverage" });
  orm = await createOrm(db.url, 2);
  await migrate(orm);
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
});
afterAll(async () => {
  await pool?.end();
  await orm?.close();
  await db?.drop();
});

/** Tables with a member column and no coverage line, with the columns that gave them away. */
async function uncovered(client: Pick<pg.Pool, "query">): Promise<Record<string, string[]>> {
  const { rows } = await client.query<{ table_name: string; column_name: string }>(
    `select c.table_name, c.column_name from information_schema.columns c
       join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name and t.table_type = 'BASE TABLE'
      where c.table_schema = 'public'
        -- A partition (activity_p20261130 …) holds its parent's rows, which the parent's line covers.
        and not exists (select 1 from pg_class p where p.oid = format('%I.%I', c.table_schema, c.table_name)::regclass and p.relispartition)
      order by c.table_name, c.ordinal_position`,
  );
  const covered = new Set([...MEMBER_DATA.map((t) => t.table), ...Object.keys(NO_MEMBER_DATA)]);
  const found: Record<string, string[]> = {};
  for (const { table_name, column_name } of rows) {
    if (MEMBER_COLUMN.test(column_name) && !covered.has(table_name)) (found[table_name] ??= []).push(column_name);
  }
  return found;
}

describe("member data coverage", () => {
  it("coverage/every_table_with_member_columns_is_covered", async () => {
    expect(await uncovered(pool), "tables holding member data without a line in src/engine/data-rights/coverage.ts").toEqual({});
  });

  it("coverage/a_new_member_table_without_a_line_fails", async () => {
    // A table a later change might add (a member's notes); rolled back, so the schema stays as migrated.
    const client = await pool.connect();
    try {
      await client.query("begin");
      await client.query("create table member_note (id uuid primary key, tenant_id uuid not null, member_id uuid not null, note text not null)");
      expect(await uncovered(client)).toEqual({ member_note: ["member_id"] });
    } finally {
      await client.query("rollback");
      client.release();
    }
  });

  it("coverage/every_line_names_a_table_and_runs", async () => {
    const { rows } = await pool.query<{ table_name: string }>("select table_name from information_schema.tables where table_schema = 'public'");
    const tables = new Set(rows.map((r) => r.table_name));
    for (const name of [...MEMBER_DATA.map((t) => t.table), ...Object.keys(NO_MEMBER_DATA)]) expect(tables, name).toContain(name);
    // Each condition, as export and erasure run it (erasure inside a rolled back transaction).
    const params = ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002", "someone"];
    for (const entry of MEMBER_DATA) {
      await pool.query(memberRowsSql(entry, "select row_to_json(t)::text from", entry.order ? ` order by ${entry.order}` : ""), params);
      const client = await pool.connect();
      try {
        await client.query("begin");
        await client.query(memberRowsSql(entry, "delete from"), params);
        await client.query(memberRowsSql(entry, "delete from"), [params[0], params[1], null]);
      } finally {
        await client.query("rollback");
        client.release();
      }
    }
  });
});
