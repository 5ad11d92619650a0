// How PostgreSQL plans the hot path's batch statements once tables hold thousands of rows: every lookup must stay
// an index probe per key. Planned the other way (a hash join over a sequential scan of a whole table), a batch of
// a dozen activities reads every member or every streak row of the definition: correct answers, but time that
// grows with the table (measured in bench/ at 5,000 members: half of the batch write's time). The statements are
// checked as the API runs them, as prepared statements, under both a generic and a custom plan, on a table whose
// statistics are fresh (ANALYZE) and, before that, as a bulk load leaves them; and each keeps its generic plan on a
// connection instead of being planned again at every execution.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { BATCH_STATEMENTS } from "../../src/engine/ingest/batch-sql.ts";
import { createBatchProgressReader, PROGRESS_READ_SQL } from "../../src/engine/reads/batch-progress-reader.ts";
import { createBatchIngestor } from "../../src/engine/ingest/batch-ingestor.ts";
import { createDefinitionCatalog } from "../../src/engine/definitions/definition-catalog.ts";
import { startTestApi, type TestApi } from "../support/api.ts";
import { preparedPlans, withoutEmptyPartitionScans } from "../support/plans.ts";

const MEMBERS = 3000;
// activity's week partitions (activity_p20261130, activity_legacy, activity_default) and its key table count as activity.
const SCANNED_TABLES = /Seq Scan on (member|member_streak|member_streak_state|activity(_key|_legacy|_default|_p\d{8})?|reward)\b/;

let api: TestApi;
let pool: pg.Pool;
let tenantId: string;
let definitionId: string;
beforeAll(async () => {
  api = await startTestApi({ label: "batch_plans" });
  pool = new pg.Pool({ connectionString: api.databaseUrl, max: 2 });
  const defs = api.client(DefinitionService, api.admin);
  const { definition } = await defs.createDefinition({
    definition: {
      name: "Plans",
      eventTypes: ["plan.event"],
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 1 },
      // Every seeded member earns a reward with its first activity, so `reward` holds thousands of rows too.
      milestones: [{ threshold: 1, reward: { kind: RewardKind.POINTS, points: 10, fulfilmentMode: FulfilmentMode.CLAIM } }],
    },
  });
  definitionId = definition!.id;
  await defs.publishDefinition({ definitionId });
  const activities = api.client(ActivityService, api.admin);
  for (let base = 0; base < MEMBERS; base += 500) {
    await activities.recordActivities({
      omitProgress: true,
      activities: Array.from({ length: 500 }, (_, k) => ({
        memberRef: { case: "memberExternalId" as const, value: `p${base + k}` },
        target: { case: "definitionId" as const, value: definitionId },
        occurTime: timestampFromMs(Date.now()),
        uniqueIdentifier: `seed-${base + k}`,
      })),
    });
  }
  const { rows } = await pool.query<{ tenant_id: string }>("select distinct tenant_id from member_streak where definition_id = $1", [definitionId]);
  tenantId = rows[0]!.tenant_id;
}, 180_000);
afterAll(async () => {
  await pool?.end();
  await api?.close();
});

/** The plans of one prepared statement, generic and custom (test/support/plans.ts). */
const plans = (text: string, types: readonly string[], args: readonly unknown[]) => preparedPlans(pool, text, types, args);

/** Twelve stored members with their streak rows: what one batch at 32 calls in flight touches. */
async function batchKeys() {
  const { rows } = await pool.query<{ member_id: string; external_id: string; streak_id: string }>(
    `select m.id as member_id, m.external_id, s.id as streak_id from member m join member_streak s on s.member_id = m.id
      where m.tenant_id = $1 and s.definition_id = $2 order by m.external_id limit 12`,
    [tenantId, definitionId],
  );
  expect(rows).toHaveLength(12);
  return rows;
}

async function plansOfEveryStatement(): Promise<Record<string, string[]>> {
  const keys = await batchKeys();
  const tenants = keys.map(() => tenantId);
  const externals = keys.map((k) => k.external_id);
  const definitions = keys.map(() => definitionId);
  // The batch write's records carry times as epoch milliseconds (memberStreakRecords, writeBatch).
  const now = Date.now();
  const streaks = JSON.stringify(keys.map((k) => ({ id: k.streak_id, saves: 1, state: {}, status: "ACTIVE", current_count: 1, longest_count: 1, updated_at: now })));
  const activities = JSON.stringify(keys.map((k, n) => ({
    id: crypto.randomUUID(), tenant_id: tenantId, member_id: k.member_id, definition_id: definitionId, event_type: null, applied_definition_ids: [definitionId],
    occurred_at: now, value: null, distinct_key: null, unique_identifier: `plan-${n}`, platform: null, metadata: {}, recorded_at: now, n,
  })));
  const pairs = JSON.stringify(keys.map((k) => ({ tenant_id: tenantId, member_id: k.member_id, definition_id: definitionId })));
  return {
    createMembers: await plans(BATCH_STATEMENTS.createMembers.text, BATCH_STATEMENTS.createMembers.types, [tenants, externals, keys.map((k) => k.member_id)]),
    classify: await plans(BATCH_STATEMENTS.classify.text, BATCH_STATEMENTS.classify.types, [tenants, externals, keys.map((_, n) => `plan-${n}`)]),
    prelock: await plans(BATCH_STATEMENTS.prelock.text, BATCH_STATEMENTS.prelock.types, [tenants, externals, definitions]),
    write: await plans(BATCH_STATEMENTS.write.text, BATCH_STATEMENTS.write.types, [streaks, activities, "[]", "[]", "[]", pairs, keys.length, "[]"]),
    progressRead: await plans(PROGRESS_READ_SQL, ["uuid[]", "text[]", "uuid[]", "text[]"], [tenants, externals, definitions, keys.map(() => null)]),
    readMembers: await plans(BATCH_STATEMENTS.readMembers.text, BATCH_STATEMENTS.readMembers.types, [tenants, externals]),
    lockMembers: await plans(BATCH_STATEMENTS.lockMembers.text, BATCH_STATEMENTS.lockMembers.types, [tenants, externals]),
    lockStreaks: await plans(BATCH_STATEMENTS.lockStreaks.text, BATCH_STATEMENTS.lockStreaks.types, [tenants, keys.map((k) => k.member_id), definitions]),
  };
}

describe("batch statement plans", () => {
  it("plans/batch_statements_probe_indexes_after_a_bulk_load_and_after_analyze", async () => {
    for (const phase of ["after the bulk load", "after analyze"]) {
      if (phase === "after analyze") await pool.query("analyze member, member_streak, member_streak_state, activity, activity_key, reward");
      const byStatement = await plansOfEveryStatement();
      expect(Object.keys(byStatement)).toHaveLength(8);
      for (const [statement, planned] of Object.entries(byStatement)) {
        for (const plan of planned) expect(withoutEmptyPartitionScans(plan), `${statement}, ${phase}`).not.toMatch(SCANNED_TABLES);
      }
    }
    // The tables really are large enough for the planner to prefer a scan where one is open to it.
    const { rows } = await pool.query<{ streaks: string; rewards: string }>(
      "select (select count(*) from member_streak where definition_id = $1) as streaks, (select count(*) from reward where definition_id = $1) as rewards",
      [definitionId],
    );
    expect(rows[0]).toEqual({ streaks: String(MEMBERS), rewards: String(MEMBERS) });
  });

  it("plans/batch_statements_and_the_progress_read_keep_a_generic_plan_on_their_connection", async () => {
    // PostgreSQL plans a prepared statement's first five executions for their values and then keeps its generic
    // plan only if that costs no more. A statement over bare array parameters never qualified (a custom plan knows
    // the batch has one element), so every batch and every read was planned again, at more server CPU than it
    // took to run (arrayParameter, src/engine/ingest/batch-message.ts). Each connection's statements are counted.
    const solo = new pg.Pool({ connectionString: api.databaseUrl, max: 1 });
    try {
      const catalog = createDefinitionCatalog(solo);
      const reader = createBatchProgressReader(solo, catalog, { maxInFlight: 1 });
      const batcher = createBatchIngestor({ pool: solo, catalog, now: () => Date.now(), options: { maxBatch: 4, maxInFlight: 1 } });
      for (let i = 0; i < 12; i++) {
        // A batch of one, then of three: the arrays' lengths vary as the load's do.
        const size = i % 2 === 0 ? 1 : 3;
        await Promise.all(Array.from({ length: size }, (_, k) => batcher.record({
          tenantId, memberExternalId: `p${i * 3 + k}`, target: { definitionId }, occurredAt: Date.now(), value: 1, uniqueIdentifier: `generic-${i}-${k}`, metadata: {},
        })));
        const read = await reader.read(tenantId, `p${i}`, definitionId);
        expect(read.streaks).toHaveLength(1);
      }
      const { rows } = await solo.query<{ name: string; generic_plans: string; custom_plans: string }>(
        "select name, generic_plans, custom_plans from pg_prepared_statements where name like 'kindling_%' order by name",
      );
      // createMembers, classify, prelock and write; the progress read.
      expect(rows.filter((r) => r.name.startsWith("kindling_batch_"))).toHaveLength(4);
      expect(rows.filter((r) => r.name.startsWith("kindling_read_"))).toHaveLength(1);
      for (const r of rows) expect({ name: r.name, generic: Number(r.generic_plans), custom: Number(r.custom_plans) }).toEqual({ name: r.name, generic: 7, custom: 5 });
    } finally {
      await solo.end();
    }
  });
});
