// Migrations are hand-committed SQL; entities are the ORM's view of the same tables. This keeps them from drifting:
// after applying every migration to an empty database, the ORM finds nothing to change.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOrm, migrate, type Orm } from "../../src/db/orm.ts";
import { migrations } from "../../src/db/migrations/index.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";

let db: TestDatabase;
let orm: Orm;
beforeAll(async () => {
  db = await createTestDatabase({ label: "schema" });
  orm = await createOrm(db.url, 2);
});
afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

describe("schema", () => {
  it("migrations/apply_all_in_order_then_nothing_is_pending", async () => {
    const applied = await migrate(orm);
    expect(applied).toEqual(migrations.map((m) => m.name));
    expect(await migrate(orm)).toEqual([]);
  });

  it("migrations/match_the_entities_exactly", async () => {
    const diff = await orm.schema.getUpdateSchemaSQL({ wrap: false });
    expect(diff.trim()).toBe("");
  });
});
