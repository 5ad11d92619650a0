// KINDLING_API_PROCESSES: several API processes share one port through SO_REUSEPORT; a child that dies is
// restarted; stopping the first process stops them all. Each process names its database connections
// `kindling-api:<pid>`, which is how the test sees which processes answered.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { CalendarPeriod, ConditionType } from "../../src/gen/kindling/v1/definition_pb.js";
import { startTestApi, type TestApi } from "../support/api.ts";

const exec = promisify(execFile);
let api: TestApi;
let apiClosed = false;
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
  if (!apiClosed) {
    await db?.end();
    await api?.close();
  }
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

  it("a child drains when its first process dies, even without a signal", async () => {
    // A real first process (`main.ts api`), SIGKILLed: nothing can stop its children, so they must notice.
    const first = spawn(process.execPath, [fileURLToPath(new URL("../../src/main.ts", import.meta.url)), "api"], {
      env: { ...process.env, DATABASE_URL: api.databaseUrl, PORT: "0", LOG_LEVEL: "silent", KINDLING_API_PROCESSES: "2", RATE_LIMIT_PER_SECOND: "0" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      let out = "";
      first.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
      while (!/API \(gRPC, gRPC-Web, Connect\): (\S+)/.test(out)) {
        if (first.exitCode !== null) throw new Error(`first process exited: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // Its child is the process whose parent is `first`.
      const { stdout } = await exec("ps", ["-o", "pid=", "--ppid", String(first.pid)]);
      const children = stdout.split("\n").map((l) => Number(l.trim())).filter((pid) => pid > 0);
      expect(children).toHaveLength(1);
      first.kill("SIGKILL");
      for (let i = 0; i < 100 && alive(children[0]!); i++) await new Promise((r) => setTimeout(r, 100));
      expect(alive(children[0]!)).toBe(false);
    } finally {
      if (first.exitCode === null) first.kill("SIGKILL");
    }
  }, 60_000);

  it("stopping the first process stops every child", async () => {
    const children = [...(await servingPids())].filter((pid) => pid !== process.pid && alive(pid));
    expect(children.length).toBeGreaterThan(0);
    apiClosed = true;
    await db.end(); // before close() drops the test database under it
    await api.close();
    for (const pid of children) expect(alive(pid)).toBe(false);
  }, 60_000);
});
