// A lost database connection is not a crash. PostgreSQL restarts and network cuts end every connection an API
// process holds, including the ones that LISTEN for other processes' changes; such a loss once killed the API
// process (an 'error' event on the definition listener's connection had no handler: found by the PostgreSQL kill
// of postgres-kill.test.ts). Here the listeners' connections are cut by pg_terminate_backend, which is cheap
// enough for every `npm test`.
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { startKindling, type Started } from "../../src/app.ts";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { NotAppliedReason } from "../../src/gen/kindling/v1/activity_pb.js";
import { startTestApi, type TestApi } from "../support/api.ts";
import { dailyDefinition, transportFor } from "./shared.ts";

let api: TestApi;
let db: pg.Pool;

beforeAll(async () => {
  api = await startTestApi({ label: "connection_loss" });
  db = new pg.Pool({ connectionString: api.databaseUrl, max: 2 });
});
afterAll(async () => {
  await db?.end();
  await api?.close();
});

describe("reliability: lost listening connections", () => {
  it("reliability/definition_listener_connection_lost_neither_crashes_nor_leaves_a_stale_definition", async () => {
    const config = loadConfig({ DATABASE_URL: api.databaseUrl, PORT: "0", LOG_LEVEL: "silent", RATE_LIMIT_PER_SECOND: "0" });
    const listeners = "select pid from pg_stat_activity where datname = current_database() and query like '%listen kindling_definition_changed%' and pid <> pg_backend_pid()";
    let second: Started | undefined;
    try {
      second = await startKindling(config, createLogger("silent"), "api");
      const admin = { tenantId: api.admin.tenantId, keyId: api.admin.keyId, secret: api.admin.secret };
      const definitionId = await dailyDefinition(transportFor(api.url, admin, "connect-json"), "Listener loss");
      const onSecond = createClient(ActivityService, createConnectTransport({
        baseUrl: second.apiUrl!,
        httpVersion: "1.1",
        interceptors: [(next) => (req) => {
          req.header.set("apikey", admin.keyId);
          req.header.set("secretkey", admin.secret);
          return next(req);
        }],
      }));
      let n = 0;
      const applied = async () => {
        const { results } = await onSecond.recordActivity({
          activity: { memberRef: { case: "memberExternalId", value: "m" }, target: { case: "definitionId", value: definitionId }, occurTime: timestampFromMs(Date.now()), uniqueIdentifier: `u-${n++}` },
        });
        return results[0]!.applied || results[0]!.notAppliedReason !== NotAppliedReason.DEFINITION_PAUSED;
      };
      expect(await applied()).toBe(true); // the second process has the LIVE definition cached
      const definitions = api.client(DefinitionService);

      const before = (await db.query<{ pid: number }>(listeners)).rows.map((r) => r.pid);
      expect(before.length).toBeGreaterThanOrEqual(2);
      await db.query("select pg_terminate_backend(pid) from pg_stat_activity where pid = any($1)", [before]);
      // Deaf: a pause announced now reaches nobody, yet the second process must not go on with its cached copy.
      await definitions.pauseDefinition({ definitionId });
      await expect.poll(applied, { timeout: 1_000, interval: 50 }).toBe(false);

      // Both processes listen again on new connections, and a change is heard there (well inside the 30 s TTL).
      await expect
        .poll(async () => (await db.query<{ pid: number }>(listeners)).rows.filter((r) => !before.includes(r.pid)).length, { timeout: 10_000, interval: 100 })
        .toBeGreaterThanOrEqual(2);
      expect(await applied()).toBe(false); // cached again, as PAUSED
      await definitions.resumeDefinition({ definitionId });
      await expect.poll(applied, { timeout: 1_000, interval: 50 }).toBe(true);
    } finally {
      await second?.stop();
    }
  });

  it("reliability/database_connection_lost_inside_a_transaction_neither_crashes_nor_loses_the_call", async () => {
    // Found with the PostgreSQL kill: a connection lost while checked out of the pool (inside a recording
    // transaction) killed the process, since pg's 'error' event on it had no listener (src/db/pool.ts).
    const config = loadConfig({ DATABASE_URL: api.databaseUrl, PORT: "0", LOG_LEVEL: "silent", RATE_LIMIT_PER_SECOND: "0" });
    let second: Started | undefined;
    const locker = await db.connect();
    try {
      second = await startKindling(config, createLogger("silent"), "api");
      const admin = { tenantId: api.admin.tenantId, keyId: api.admin.keyId, secret: api.admin.secret };
      const definitionId = await dailyDefinition(transportFor(api.url, admin, "connect-json"), "Cut mid-transaction");
      const activities = createClient(ActivityService, createConnectTransport({
        baseUrl: second.apiUrl!,
        httpVersion: "1.1",
        interceptors: [(next) => (req) => {
          req.header.set("apikey", admin.keyId);
          req.header.set("secretkey", admin.secret);
          return next(req);
        }],
      }));
      const record = (uniqueIdentifier: string) =>
        activities.recordActivity({
          activity: { memberRef: { case: "memberExternalId", value: "cut" }, target: { case: "definitionId", value: definitionId }, occurTime: timestampFromMs(Date.now()), uniqueIdentifier },
        });
      await record("cut-0");
      // Hold the member's streak row, so the next recording waits inside its transaction; then cut that connection.
      await locker.query("begin");
      await locker.query("select 1 from member_streak where tenant_id = $1 and definition_id = $2 for update", [admin.tenantId, definitionId]);
      const pending = record("cut-1");
      const waiting = "select pid from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and application_name like 'kindling-api:%'";
      await expect.poll(async () => (await db.query(waiting)).rowCount, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);
      await db.query(`select pg_terminate_backend(pid) from (${waiting}) w`);
      // Let the lost connection's events play out before the row is free again.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await locker.query("rollback");

      // The call is answered (the batch ran again on a sound connection), once, and the process lives on.
      const answered = await pending;
      expect(answered.activity?.uniqueIdentifier).toBe("cut-1");
      expect((await record("cut-1")).duplicate).toBe(true);
      const { rows } = await db.query<{ n: number }>("select count(*)::int as n from activity where tenant_id = $1 and unique_identifier = 'cut-1'", [admin.tenantId]);
      expect(rows[0]!.n).toBe(1);
    } finally {
      locker.release();
      await second?.stop();
    }
  });
});
