// Retention and partitions (issue 15, item 1) against a real PostgreSQL: migration 0016 keeps every row of the old
// tables, the idempotency keys hold across week partitions (and through a row's move out of the default
// partition), retention drops whole weeks only behind every tenant's retention, deletes rows of a tenant with a
// shorter one, and never removes an activity a member's state still needs.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { StreakDefinitionSchema } from "../../src/gen/kindling/v1/definition_pb.js";
import { specFromMessage } from "../../src/api/mappers/definition.mapper.ts";
import { createOrm, migrate } from "../../src/db/orm.ts";
import { createDefinitionCatalog } from "../../src/engine/definitions/definition-catalog.ts";
import { createActivityIngestor } from "../../src/engine/ingest/activity-ingestor.ts";
import { createBatchIngestor } from "../../src/engine/ingest/batch-ingestor.ts";
import { applyRetention, ensurePartitions, listPartitions, PAGE_DELIVERIES_DELETE_SQL, setTenantRetention, weekStart } from "../../src/engine/retention/retention.ts";
import { retentionFloor } from "../../src/engine/delivery/event-stream.ts";
import { citusMemberRowsSql, MEMBER_DATA, memberRowsSql } from "../../src/engine/data-rights/coverage.ts";
import { importActivities } from "../../src/engine/import/activity-import.ts";
import { EngineError } from "../../src/engine/engine-error.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";
import { dailyUtc, DAY } from "../support/orchestration.ts";

const WEEK = 7 * DAY;

describe("migration 0016", () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await createTestDatabase({ label: "retention_migration" });
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it("retention/migration_keeps_every_row_and_the_idempotency_keys", async () => {
    const orm = await createOrm(db.url, 2);
    try {
      await orm.migrator.up({ to: "0014_team_streaks" });
      const tenant = randomUUID();
      const member = randomUUID();
      await pool.query("insert into tenant (id, name, created_at, updated_at) values ($1, 'old', now(), now())", [tenant]);
      await pool.query("insert into member (id, tenant_id, external_id, created_at, updated_at) values ($1, $2, 'ann', now(), now())", [member, tenant]);
      // Rows under the old schema: stored long ago, last week and now.
      for (const [uid, at] of [["a-2024", "2024-03-01T10:00:00Z"], ["a-last-week", new Date(Date.now() - WEEK).toISOString()], ["a-now", new Date().toISOString()]] as const) {
        await pool.query(
          `insert into activity (id, tenant_id, member_id, definition_id, applied_definition_ids, occurred_at, value, unique_identifier, metadata, recorded_at, imported)
           values ($1, $2, $3, null, '{}', $4, 2.5, $5, '{"k":"v"}', $4, $6)`,
          [randomUUID(), tenant, member, at, uid, uid === "a-2024"],
        );
        await pool.query(
          `insert into streak_event (tenant_id, type, member_id, definition_id, dedupe_key, payload, occurred_at, created_at)
           values ($1, 'streak.incremented', $2, null, $3, '{"n":1}', $4, $4)`,
          [tenant, member, `dedupe-${uid}`, at],
        );
      }
      const snapshot = async () => ({
        activities: (await pool.query("select to_jsonb(a) as row from activity a order by id")).rows.map((r: { row: unknown }) => r.row),
        events: (await pool.query("select to_jsonb(e) as row from streak_event e order by id")).rows.map((r: { row: unknown }) => r.row),
      });
      const before = await snapshot();
      const lastId = BigInt((await pool.query<{ id: string }>("select max(id)::text as id from streak_event")).rows[0]!.id);

      expect(await migrate(orm)).toContain("0016_retention_partitions");

      expect(await snapshot()).toEqual(before);
      const kinds = await pool.query<{ relname: string; relkind: string }>("select relname, relkind from pg_class where relname in ('activity', 'streak_event') order by relname");
      expect(kinds.rows).toEqual([{ relname: "activity", relkind: "p" }, { relname: "streak_event", relkind: "p" }]);
      // The 2024 row sits in the legacy partition; the weeks from now on exist.
      const where = await pool.query<{ part: string }>("select tableoid::regclass::text as part from activity where unique_identifier = 'a-2024'");
      expect(where.rows[0]!.part).toBe("activity_legacy");
      const weeks = (await listPartitions(pool)).filter((p) => p.table === "activity" && p.from !== null).map((p) => p.from);
      expect(weeks).toEqual([0, 1, 2, 3, 4].map((w) => weekStart(Date.now()) + w * WEEK));

      // Every stored key is still a duplicate, for activities and for events; the stream positions go on.
      const again = await pool.query(
        `insert into activity (id, tenant_id, member_id, applied_definition_ids, occurred_at, unique_identifier, metadata, recorded_at)
         values ($1, $2, $3, '{}', now(), 'a-2024', '{}', now()) returning id`,
        [randomUUID(), tenant, member],
      );
      expect(again.rows).toEqual([]);
      const event = await pool.query<{ id: string }>(
        `insert into streak_event (tenant_id, type, member_id, dedupe_key, payload, occurred_at, created_at)
         select $1, 'streak.incremented', $2, k, '{}', now(), now() from unnest(array['dedupe-a-now', 'dedupe-new']) k returning id::text`,
        [tenant, member],
      );
      expect(event.rows.length).toBe(1);
      expect(BigInt(event.rows[0]!.id)).toBeGreaterThan(lastId);
      const keys = await pool.query("select unique_identifier from activity_key order by unique_identifier");
      expect(keys.rows.map((r: { unique_identifier: string }) => r.unique_identifier)).toEqual(["a-2024", "a-last-week", "a-now"]);
    } finally {
      await orm.close();
    }
  });
});

describe("retention", () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let tenantA: string;
  let tenantB: string;
  let clock = 0;
  const t0 = weekStart(Date.now()) + DAY + 12 * 3_600_000; // Tuesday noon of this week (a partition from the migration).

  beforeAll(async () => {
    db = await createTestDatabase({ label: "retention" });
    const orm = await createOrm(db.url, 2);
    await migrate(orm);
    await orm.close();
    pool = new pg.Pool({ connectionString: db.url, max: 6 });
    tenantA = randomUUID();
    tenantB = randomUUID();
    for (const [id, name] of [[tenantA, "a"], [tenantB, "b"]]) await pool.query("insert into tenant (id, name, created_at, updated_at) values ($1, $2, now(), now())", [id, name]);
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  const catalog = () => createDefinitionCatalog(pool, 0);
  async function definition(tenantId: string, init: MessageInitShape<typeof StreakDefinitionSchema>): Promise<string> {
    const id = randomUUID();
    const message = create(StreakDefinitionSchema, init);
    await pool.query(
      `insert into streak_definition (id, tenant_id, name, description, state, event_types, spec, pauses, version, created_at, updated_at)
       values ($1, $2, $3, '', 'LIVE', $4, $5, '[]', 1, now(), now())`,
      [id, tenantId, message.name, message.eventTypes, JSON.stringify(specFromMessage(message))],
    );
    return id;
  }
  const single = () => createActivityIngestor({ pool, catalog: catalog(), now: () => clock });
  async function record(tenantId: string, member: string, definitionId: string, at: number, key: string) {
    clock = at;
    return single().record({ tenantId, memberExternalId: member, target: { definitionId }, occurredAt: at, uniqueIdentifier: key, metadata: {} });
  }
  const partOf = async (key: string) =>
    (await pool.query<{ part: string }>("select tableoid::regclass::text as part from activity where unique_identifier = $1", [key])).rows.map((r) => r.part);

  it("idempotency/a_key_is_a_duplicate_across_week_partitions_and_after_moving_out_of_the_default", async () => {
    const def = await definition(tenantA, dailyUtc({ name: "Idempotent" }));
    const first = await record(tenantA, "ida", def, t0, "id-1");
    expect(first.duplicate).toBe(false);
    // Two weeks later, one at a time and batched: the key is found in the earlier week's partition.
    const later = await record(tenantA, "ida", def, t0 + 2 * WEEK, "id-1");
    expect(later).toMatchObject({ duplicate: true, activity: { id: first.activity.id } });
    clock = t0 + 3 * WEEK;
    const batch = createBatchIngestor({ pool, catalog: catalog(), now: () => clock });
    const [batched] = await batch.recordMany([{ tenantId: tenantA, memberExternalId: "ida", target: { definitionId: def }, occurredAt: clock, uniqueIdentifier: "id-1", metadata: {} }]);
    expect(batched).toMatchObject({ ok: true, value: { duplicate: true, activity: { id: first.activity.id } } });
    expect(await partOf("id-1")).toEqual([`activity_p${new Date(weekStart(t0)).toISOString().slice(0, 10).replaceAll("-", "")}`]);

    // Ten weeks ahead no week exists yet: the row waits in the default partition, and moves into its week when
    // the week is created, keeping its key.
    const ahead = t0 + 10 * WEEK;
    const stored = await record(tenantA, "ida", def, ahead, "id-2");
    expect(await partOf("id-2")).toEqual(["activity_default"]);
    await ensurePartitions(pool, ahead, 0);
    expect(await partOf("id-2")).toEqual([`activity_p${new Date(weekStart(ahead)).toISOString().slice(0, 10).replaceAll("-", "")}`]);
    expect(await record(tenantA, "ida", def, ahead + DAY, "id-2")).toMatchObject({ duplicate: true, activity: { id: stored.activity.id } });
    const [again] = await batch.recordMany([{ tenantId: tenantA, memberExternalId: "ida", target: { definitionId: def }, occurredAt: ahead, uniqueIdentifier: "id-2", metadata: {} }]);
    expect(again).toMatchObject({ ok: true, value: { duplicate: true } });
    expect((await pool.query("select count(*)::int as n from activity where unique_identifier in ('id-1', 'id-2')")).rows[0]).toEqual({ n: 2 });
  });

  it("retention/a_tenant_override_shorter_than_the_default_deletes_its_rows_only", async () => {
    const defA = await definition(tenantA, dailyUtc({ name: "Short" }));
    const defB = await definition(tenantB, dailyUtc({ name: "Long" }));
    // Each member checks in on day 0 and again on day 3: day 0's window is final after day 3's write.
    for (const [tenant, def, who] of [[tenantA, defA, "sa"], [tenantB, defB, "sb"]] as const) {
      await record(tenant, who, def, t0, `${who}-0`);
      await record(tenant, who, def, t0 + 3 * DAY, `${who}-3`);
    }
    await setTenantRetention(pool, tenantA, 7);
    // Day 0 + 14: tenant A keeps 7 days, B the default 30. No partition is older than 30 days: row deletes only.
    // Events are kept by created_at, the database's own clock (today, in t0's real week), so A's cutoff (day 0 + 7,
    // next week's Tuesday noon) must lie after the end of this real week: with day 0 + 12 it was Sunday noon, and the
    // test failed on Sunday afternoons.
    const pass = await applyRetention(pool, t0 + 14 * DAY, { defaultDays: 30 });
    expect(pass.droppedPartitions).toEqual([]);
    expect(await partOf("sa-0")).toEqual([]);
    expect(await partOf("sb-0")).not.toEqual([]);
    // Day 3's activity is in the open tail of A's state (its window was never finalised in the stored state): kept.
    expect(await partOf("sa-3")).not.toEqual([]);
    const keys = await pool.query<{ unique_identifier: string }>("select unique_identifier from activity_key where unique_identifier like 's_-%' order by 1");
    expect(keys.rows.map((r) => r.unique_identifier)).toEqual(["sa-3", "sb-0", "sb-3"]);
    // A's events went with a raised floor; B's are all there and B's floor is untouched.
    const events = await pool.query<{ tenant_id: string; n: number }>("select tenant_id, count(*)::int as n from streak_event where tenant_id = any($1::uuid[]) group by 1", [[tenantA, tenantB]]);
    expect(events.rows.find((r) => r.tenant_id === tenantA)).toBeUndefined();
    expect(events.rows.find((r) => r.tenant_id === tenantB)?.n).toBeGreaterThan(0);
    expect(await retentionFloor(pool, tenantA)).toBeGreaterThan(0n);
    expect(await retentionFloor(pool, tenantB)).toBe(0n);
    // A key whose activity retention removed is no longer a duplicate: the promise is "while retained".
    expect((await record(tenantA, "sa", defA, t0 + 14 * DAY, "sa-0")).duplicate).toBe(false);
  });

  it("retention/an_activity_a_members_state_still_needs_survives_its_partition", async () => {
    await setTenantRetention(pool, tenantA, null);
    const def = await definition(tenantB, dailyUtc({ name: "Tail" }));
    // "idle" checked in once and nothing has finalised that window in the stored state since; "busy" checked in on
    // day 0 and day 3, which finalised day 0.
    await record(tenantB, "idle", def, t0, "idle-0");
    await record(tenantB, "busy", def, t0, "busy-0");
    await record(tenantB, "busy", def, t0 + 3 * DAY, "busy-3");
    // Day 0 + 60 with every tenant at 30 days: this week's partition is older than every retention and is dropped.
    const now = t0 + 60 * DAY;
    const pass = await applyRetention(pool, now, { defaultDays: 30 });
    const week = `activity_p${new Date(weekStart(t0)).toISOString().slice(0, 10).replaceAll("-", "")}`;
    expect(pass.droppedPartitions).toContain(week);
    expect((await listPartitions(pool)).map((p) => p.name)).not.toContain(week);
    // The activities still in an open tail were kept (now in the default partition) with their keys; busy-0 is gone.
    expect(await partOf("idle-0")).toEqual(["activity_default"]);
    expect(await partOf("busy-3")).toEqual(["activity_default"]);
    expect(await partOf("busy-0")).toEqual([]);
    expect((await record(tenantB, "idle", def, now, "idle-0")).duplicate).toBe(true);
    expect((await record(tenantB, "busy", def, now, "busy-0")).duplicate).toBe(false);
    // The dropped week's events are gone for every tenant: the floor for all tenants is raised.
    expect(await retentionFloor(pool, tenantB)).toBeGreaterThan(0n);
  });

  it("import/refused_when_retention_removed_part_of_the_history", async () => {
    // After the previous test: "busy" lost busy-0 to retention (its state counts 2 applied, 1 is kept); "idle" lost nothing.
    const def = (await pool.query<{ id: string }>("select id from streak_definition where name = 'Tail'")).rows[0]!.id;
    const now = t0 + 61 * DAY;
    const imports = (member: string, key: string) =>
      importActivities({ pool, catalog: catalog(), now: () => now }, {
        tenantId: tenantB, milestonePolicy: "NONE", emitEvents: false,
        activities: [{ tenantId: tenantB, memberExternalId: member, target: { definitionId: def }, occurredAt: t0 + 2 * DAY, uniqueIdentifier: key, metadata: {} }],
      });
    const count = async () => (await pool.query("select count(*)::int as n from activity where tenant_id = $1", [tenantB])).rows[0] as { n: number };
    const before = await count();
    const refused = await imports("busy", "busy-import").then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(EngineError);
    expect(refused).toMatchObject({ kind: "FAILED_PRECONDITION", reason: "HISTORY_EXPIRED", metadata: { member_external_id: "busy" } });
    expect(await count()).toEqual(before);
    expect((await imports("idle", "idle-import")).imported).toBe(1);
  });

  it("retention/a_page_s_webhook_deliveries_are_found_by_their_events_not_by_the_tenant_s_history", async () => {
    // A tenant with a long delivery history (two subscriptions, 20,000 events each delivered): the statements that
    // delete a page's or a member's deliveries probe the (tenant, event) index (migration 0019) instead of reading
    // every delivery of the tenant.
    await pool.query(
      `insert into webhook_delivery (id, tenant_id, subscription_id, event_id, status, attempts, created_at, updated_at)
       select gen_random_uuid(), $1, s.id, e, 'SUCCEEDED', 1, now(), now()
         from generate_series(1, 20000) e cross join (values (gen_random_uuid()), (gen_random_uuid())) s(id)`,
      [tenantB],
    );
    await pool.query("analyze webhook_delivery");
    const client = await pool.connect();
    try {
      const plan = async (sql: string, args: readonly unknown[]) =>
        (await client.query<{ "QUERY PLAN": string }>(`explain ${sql}`, [...args])).rows.map((r) => r["QUERY PLAN"]).join("\n");
      // The statements as retention and erasure run them (a plain member's condition and the Citus one).
      const deliveries = MEMBER_DATA.find((t) => t.table === "webhook_delivery")!;
      const eventIds = ["5", "17", "4242"];
      const citus = citusMemberRowsSql(deliveries, "delete from", [tenantB, randomUUID(), [], eventIds]);
      const page = await plan(PAGE_DELIVERIES_DELETE_SQL, [[tenantB], eventIds]);
      const member = await plan(citus.text, citus.values);
      const plainMember = await plan(memberRowsSql(deliveries, "delete from"), [tenantB, randomUUID(), "someone"]);
      for (const p of [page, member, plainMember]) {
        expect(p).toMatch(/webhook_delivery_event/);
        expect(p).not.toMatch(/Seq Scan|webhook_delivery_tenant_id_subscription_id_index/);
      }
    } finally {
      client.release();
      await pool.query("delete from webhook_delivery where tenant_id = $1", [tenantB]);
    }
  });
});
