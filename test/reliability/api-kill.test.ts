// Issue 17, item 4: an API process SIGKILLed while clients send RecordActivities batches, then started again on
// the same port. Every client call ends in a success or an error; a batch whose call failed may have been partly
// stored (its items are recorded in shared transactions), but never an item half-applied: every stored activity
// is in its member's streak (streak = recompute from stored history). Retrying each failed batch with the same
// unique_identifiers converges: each item stored exactly once, the retried items answered as duplicates.
// Sizes: RELIABILITY_API_BATCHES (reduced 60; full 400) of 100 items, 8 clients.
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";
import { clientFor, createTenant, dailyDefinition, streaksAgainstRecompute, transportFor, type Tenant } from "./shared.ts";
import { codeOf, RETRYABLE, size, sleep, startKindlingChild, writeFigures, type KindlingChild } from "./support.ts";

const BATCHES = size("RELIABILITY_API_BATCHES", 60, 400);
const ITEMS = 100;
const CLIENTS = 8;
const DAY = 86_400_000;

let database: TestDatabase;
let api: KindlingChild;
let tenant: Tenant;
const started: KindlingChild[] = [];

beforeAll(async () => {
  database = await createTestDatabase({ label: "api_kill" });
  api = await startKindlingChild("api", { databaseUrl: database.url });
  started.push(api);
  tenant = await createTenant(database.url);
});
afterAll(async () => {
  for (const child of started) await child.kill();
  await database?.drop();
});

describe("reliability: API process killed mid-batch", () => {
  it("reliability/api_sigkill_mid_batch_leaves_no_item_half_applied_and_retries_converge", async () => {
    const url = api.url!;
    const transport = transportFor(url, tenant, "grpc", 30_000);
    const definitionId = await dailyDefinition(transport, "Batch kill");
    const activities = clientFor(ActivityService, transport);
    const now = Date.now();
    // Batch b, item i: member (b * 7 + i) % 500, dated over the last days in batch order, so batches touch shared
    // members and streaks grow.
    const batchItems = (b: number) =>
      Array.from({ length: ITEMS }, (_, i) => ({
        memberRef: { case: "memberExternalId" as const, value: `member-${(b * 7 + i) % 500}` },
        target: { case: "definitionId" as const, value: definitionId },
        occurTime: timestampFromMs(now - Math.max(0, 5 - Math.floor((b / BATCHES) * 6)) * DAY - (ITEMS - i) * 10),
        uniqueIdentifier: `batch-${b}-item-${i}`,
      }));

    let next = 0;
    let acknowledged = 0;
    let killed = false;
    const failedCalls: Array<{ batch: number; code: string }> = [];
    const failedBatches = new Set<number>();
    let duplicatesOnRetry = 0;
    let retriedBatches = 0;
    const client = async () => {
      for (;;) {
        const b = next++;
        if (b >= BATCHES) return;
        for (let attempt = 0; ; attempt++) {
          try {
            const { results } = await activities.recordActivities({ activities: batchItems(b), omitProgress: true });
            expect(results).toHaveLength(ITEMS);
            const errors = results.filter((r) => r.error !== undefined);
            if (errors.length > 0) throw new Error(`batch ${b}: item errors ${JSON.stringify(errors[0]!.error)}`);
            if (attempt > 0) {
              retriedBatches++;
              duplicatesOnRetry += results.filter((r) => r.duplicate).length;
            }
            acknowledged++;
            break;
          } catch (error) {
            const code = codeOf(error);
            failedCalls.push({ batch: b, code: Code[code] });
            failedBatches.add(b);
            if (!RETRYABLE.has(code)) throw error;
            await sleep(Math.min(1_000, 100 * 2 ** Math.min(attempt, 4)));
          }
        }
      }
    };

    let storedAtKill: Map<number, number> | undefined;
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    const storedPerBatch = async () => {
      const { rows } = await pool.query<{ b: number; n: number }>(
        "select split_part(unique_identifier, '-', 2)::int as b, count(*)::int as n from activity where tenant_id = $1 group by 1",
        [tenant.tenantId],
      );
      return new Map(rows.map((r) => [r.b, r.n]));
    };
    let downMs = 0;
    const chaos = async () => {
      while (acknowledged < BATCHES * 0.4) await sleep(5);
      const at = Date.now();
      await api.kill();
      killed = true;
      storedAtKill = await storedPerBatch();
      const port = Number(new URL(url).port);
      const again = await startKindlingChild("api", { databaseUrl: database.url, port });
      started.push(again);
      downMs = Date.now() - at;
    };

    try {
      await Promise.all([...Array.from({ length: CLIENTS }, client), chaos()]);
      const stored = await storedPerBatch();
      const { rows: dupes } = await pool.query<{ n: number }>(
        "select count(*)::int as n from (select unique_identifier from activity where tenant_id = $1 group by 1 having count(*) > 1) d",
        [tenant.tenantId],
      );
      const partlyStoredAtKill = [...failedBatches].filter((b) => {
        const n = storedAtKill?.get(b) ?? 0;
        return n > 0 && n < ITEMS;
      });
      const streaks = await streaksAgainstRecompute(pool, tenant.tenantId, definitionId, Date.now());

      await writeFigures("4-api-kill", {
        batches: BATCHES,
        itemsPerBatch: ITEMS,
        clients: CLIENTS,
        restartMs: downMs,
        failedCalls: failedCalls.length,
        failedCallCodes: failedCalls.reduce<Record<string, number>>((m, f) => ({ ...m, [f.code]: (m[f.code] ?? 0) + 1 }), {}),
        batchesWithAFailedCall: failedBatches.size,
        failedBatchesPartlyStoredAtKill: partlyStoredAtKill.length,
        retriedBatches,
        duplicatesOnRetry,
        storedActivities: [...stored.values()].reduce((a, b) => a + b, 0),
        duplicateActivities: dupes[0]!.n,
        streaksChecked: streaks.checked,
        streakMismatches: streaks.mismatches.length,
      });

      expect(killed).toBe(true);
      expect(failedBatches.size).toBeGreaterThan(0);
      expect(acknowledged).toBe(BATCHES);
      for (let b = 0; b < BATCHES; b++) expect(stored.get(b), `batch ${b}`).toBe(ITEMS);
      expect(dupes[0]!.n).toBe(0);
      expect(streaks.mismatches).toEqual([]);
      expect(streaks.checked).toBe(500);
    } finally {
      await pool.end();
    }
  });
});
