// Several API processes on one database (as KINDLING_API_PROCESSES > 1 or replicas behind a load balancer): what
// one changes — a definition's state, a tenant's browser origins — reaches every other's in-memory copy within a
// second through one listening connection per process, also while that connection is lost (the caches distrust
// themselves) and again after it is back. Key revocation across processes is proven in tenant-auth.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type pg from "pg";
import { loadConfig } from "../../src/config/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { startKindling, type Started } from "../../src/app.ts";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { NotAppliedReason } from "../../src/gen/kindling/v1/activity_pb.js";
import { startTestApi, type TestApi } from "../support/api.ts";
import { createLiveDefinition, sqlPool } from "../support/fixtures.ts";

let api: TestApi;
let db: pg.Pool;
let second: Started;

const LISTENERS = "select pid, application_name from pg_stat_activity where datname = current_database() and query like 'listen %' and pid <> pg_backend_pid()";

beforeAll(async () => {
  api = await startTestApi({ label: "change_notices" });
  db = sqlPool(api.databaseUrl);
  second = await startKindling(loadConfig({ DATABASE_URL: api.databaseUrl, PORT: "0", LOG_LEVEL: "silent", RATE_LIMIT_PER_SECOND: "0" }), createLogger("silent"), "api");
});

afterAll(async () => {
  await second?.stop();
  await db?.end();
  await api?.close();
});

function onSecond() {
  const auth = { authorization: `Bearer ${api.admin.keyId}.${api.admin.secret}` };
  return createClient(ActivityService, createConnectTransport({
    baseUrl: second.apiUrl!,
    httpVersion: "1.1",
    interceptors: [(next) => (req) => {
      for (const [k, v] of Object.entries(auth)) req.header.set(k, v);
      return next(req);
    }],
  }));
}

let attempt = 0;
/** How the second process answers an activity for the definition: applied, or the reason it was not. */
async function outcomeOnSecond(definitionId: string): Promise<string> {
  attempt++;
  const answer = await onSecond().recordActivity({
    activity: { memberRef: { case: "memberExternalId", value: `m-${attempt}` }, target: { case: "definitionId", value: definitionId }, uniqueIdentifier: `a-${attempt}` },
  });
  const result = answer.results[0]!;
  return result.applied ? "applied" : NotAppliedReason[result.notAppliedReason];
}

function preflight(base: string, origin: string) {
  return fetch(`${base}/kindling.v1.MemberStreakService/GetMemberStreak`, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
  }).then((r) => r.headers.get("access-control-allow-origin"));
}

async function cutListeners(): Promise<number[]> {
  const pids = (await db.query<{ pid: number }>(LISTENERS)).rows.map((r) => r.pid);
  await db.query("select pg_terminate_backend(pid) from pg_stat_activity where pid = any($1)", [pids]);
  return pids;
}

describe("changes reach every API process", () => {
  it("notices/one_listening_connection_per_process_for_every_channel", async () => {
    const rows = (await db.query<{ pid: number }>(LISTENERS)).rows;
    // Two API instances (the test's and `second`), one connection each (it was one per cache: three each).
    expect(rows.length).toBe(2);
    const { rows: statements } = await db.query<{ query: string }>(`select query from pg_stat_activity where pid = $1`, [rows[0]!.pid]);
    for (const channel of ["kindling_definition_changed", "kindling_browser_access_changed", "kindling_api_key_revoked"]) {
      expect(statements[0]!.query).toContain(`listen ${channel}`);
    }
  });

  it("notices/definition_state_changes_reach_another_process_within_a_second_also_while_its_listener_is_lost", async () => {
    const defs = api.client(DefinitionService);
    const def = await createLiveDefinition(defs, { name: "Shared across processes" });
    expect(await outcomeOnSecond(def.id)).toBe("applied"); // the second process now holds the tenant's definitions
    await defs.pauseDefinition({ definitionId: def.id });
    await expect.poll(() => outcomeOnSecond(def.id), { timeout: 1_000, interval: 20 }).toBe("DEFINITION_PAUSED");

    // Listening connections cut (as by a database restart): no notice reaches anyone, yet a change is seen within a
    // second, because a process that cannot hear caches no definitions.
    const cut = await cutListeners();
    expect(cut.length).toBeGreaterThanOrEqual(2);
    await defs.resumeDefinition({ definitionId: def.id });
    await expect.poll(() => outcomeOnSecond(def.id), { timeout: 1_000, interval: 20 }).toBe("applied");

    // Each process listens again on a new connection, and hears the next change within a second.
    await expect
      .poll(async () => (await db.query<{ pid: number }>(LISTENERS)).rows.filter((r) => !cut.includes(r.pid)).length, { timeout: 10_000, interval: 100 })
      .toBeGreaterThanOrEqual(2);
    await defs.pauseDefinition({ definitionId: def.id });
    await expect.poll(() => outcomeOnSecond(def.id), { timeout: 1_000, interval: 20 }).toBe("DEFINITION_PAUSED");
  });

  it("notices/browser_origins_reach_another_process_within_a_second_and_are_reloaded_after_a_lost_listener", async () => {
    const tenants = api.client(TenantService);
    await tenants.setBrowserOrigins({ origins: ["https://shop-one.example"] });
    await expect.poll(() => preflight(second.apiUrl!, "https://shop-one.example"), { timeout: 1_000, interval: 20 }).toBe("https://shop-one.example");

    // Changed while the second process cannot hear: it reloads every tenant's origins as soon as it listens again
    // (a reconnection a second later), not at the next minute's full reload.
    const cut = await cutListeners();
    await tenants.setBrowserOrigins({ origins: ["https://shop-two.example"] });
    await expect.poll(() => preflight(second.apiUrl!, "https://shop-two.example"), { timeout: 3_000, interval: 20 }).toBe("https://shop-two.example");
    expect(await preflight(second.apiUrl!, "https://shop-one.example")).toBeNull();
    expect((await db.query<{ pid: number }>(LISTENERS)).rows.filter((r) => !cut.includes(r.pid)).length).toBeGreaterThanOrEqual(1);
  });
});
