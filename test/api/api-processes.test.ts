// KINDLING_API_PROCESSES: several API processes share one port through SO_REUSEPORT; a child that dies is
// restarted; stopping the first process stops them all. Each process names its database connections
// `kindling-api:<pid>`, which is how the test sees which processes answered.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { CalendarPeriod, ConditionType } from "../../src/gen/kindling/v1/definition_pb.js";
import { startTestApi, type TestApi } from "../support/api.ts";

let api: TestApi;
let db: pg.Pool;
let definitionId: string;

beforeAll(async () => {
  api = await startTestApi({ label: "api-processes", env: { KINDLING_API_PROCESSES: "2" } });
  db = new pg.Pool({ connectionString: api.databaseUrl, max: 2 });
  const definitions = api.client(DefinitionService);
  const created = await definitions.createDefinition({
    definition: {
      name: "Daily",
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 1 },
    },
  });
  definitionId = created.definition!.id;
  await definitions.publishDefinition({ definitionId });
}, 60_000);

afterAll(async () => {
  await db?.end();
  await api?.close();
});

/** Records one activity per fresh HTTP/2 connection (each connection is one kernel choice of process). */
async function recordOverFreshConnections(n: number, tag: string): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const transport = createGrpcTransport({
        baseUrl: api.url,
        interceptors: [(next) => (req) => (req.header.set("apikey", api.admin.keyId), req.header.set("secretkey", api.admin.secret), next(req))],
      });
      const response = await createClient(ActivityService, transport).recordActivity({
        activity: {
          memberRef: { case: "memberExternalId", value: `member-${tag}-${i}` },
          target: { case: "definitionId", value: definitionId },
          occurTime: timestampFromMs(Date.now()),
          uniqueIdentifier: `${tag}-${i}`,
        },
      });
      expect(response.duplicate).toBe(false);
    }),
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function servingPids(): Promise<Set<number>> {
  const { rows } = await db.query<{ name: string }>(
    "select distinct application_name as name from pg_stat_activity where datname = current_database() and application_name like 'kindling-api:%'",
  );
  return new Set(rows.map((r) => Number(r.name.slice("kindling-api:".length))));
}

describe("several API processes on one port", () => {
  it("both processes answer requests on the shared port", async () => {
    await recordOverFreshConnections(24, "a");
    const pids = await servingPids();
    expect(pids.has(process.pid)).toBe(true);
    expect(pids.size).toBe(2);
    const { rows } = await db.query<{ n: number }>("select count(*)::int as n from activity where unique_identifier like 'a-%'");
    expect(rows[0]!.n).toBe(24);
  });

  it("restarts a child that dies, and keeps answering meanwhile", async () => {
    const [child] = [...(await servingPids())].filter((pid) => pid !== process.pid);
    expect(child).toBeDefined();
    process.kill(child!, "SIGKILL");
    // Once the process is gone the kernel has dropped its socket from the group: every new connection reaches the
    // first process. (A connection queued on the dying socket in the instant before is reset, as with any crash.)
    while (alive(child!)) await new Promise((r) => setTimeout(r, 20));
    await recordOverFreshConnections(8, "b");
    let replacement: number | undefined;
    for (let attempt = 0; attempt < 60 && replacement === undefined; attempt++) {
      await new Promise((r) => setTimeout(r, 250));
      await recordOverFreshConnections(8, `c${attempt}`);
      replacement = [...(await servingPids())].find((pid) => pid !== process.pid && pid !== child);
    }
    expect(replacement).toBeDefined();
  }, 60_000);
});
