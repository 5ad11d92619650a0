// `BENCH_DATABASE=citus npm run bench` (issue 18): Kindling's ingest and read rates on a 3-node Citus cluster (a
// coordinator and two workers, Citus 13.2.2 on PostgreSQL 15, ../shared/tools/citus/cluster.sh) beside the same
// phases on one PostgreSQL 15 in the same run (a database without the citus extension on the coordinator's server),
// with each node's CPU per call and the rows each worker holds. All nodes, the API and the load generator share
// this machine's cores: it cannot show scale-out by throughput, only what a call costs each node.
//
// Knobs: BENCH_SECONDS (per phase, default 10), BENCH_ROUNDS (default 3), BENCH_CONCURRENCY (calls in flight,
// default 32), BENCH_MEMBERS (default 5000). Writes bench/results/citus.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import pgDriver from "pg";
import { createClient } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { apiKeyTransport, INGEST_TABLES, postgresCpuMicros, settleDatabase } from "./pgbench.ts";
import { median } from "./stats.ts";
import { buildLoadgen, goVersion, LOADGEN_THREADS, runLoadgen } from "./go-loadgen.ts";
import type { LoadResult } from "./load-worker.ts";
import { startCitusCluster } from "../test/support/citus.ts";
import { loadConfig } from "../src/config/config.ts";
import { createLogger } from "../src/observability/logger.ts";
import { startKindling } from "../src/app.ts";
import { createOrm } from "../src/db/orm.ts";
import { createTenantWithAdminKey } from "../src/db/repositories/tenant.repository.ts";
import { DefinitionService } from "../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../src/gen/kindling/v1/activity_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../src/gen/kindling/v1/definition_pb.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
const members = Number(process.env.BENCH_MEMBERS ?? 5000);

interface Target {
  readonly name: "citus" | "postgres15";
  readonly url: string;
  readonly apiUrl: string;
  readonly keyId: string;
  readonly secret: string;
  readonly definitionId: string;
  stop(): Promise<void>;
}

interface Phase extends LoadResult {
  /** CPU µs per answered call of each node's PostgreSQL (the coordinator also serves the one-PostgreSQL database). */
  readonly nodeCpuMicrosPerCall: Record<string, number | null>;
}

const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : 0);

async function startTarget(name: Target["name"], url: string, kind: "citus" | "postgres"): Promise<Target> {
  const config = loadConfig({ DATABASE_URL: url, PORT: "0", LOG_LEVEL: "warn", RATE_LIMIT_PER_SECOND: "0", DATABASE_POOL_SIZE: "32", KINDLING_DATABASE_KIND: kind });
  const kindling = await startKindling(config, createLogger("warn"), "api");
  const orm = await createOrm(url, 2);
  try {
    const tenant = await createTenantWithAdminKey(orm.em.fork(), { id: randomUUID(), name: `bench ${name}` });
    const transport = apiKeyTransport(kindling.apiUrl!, tenant);
    const defs = createClient(DefinitionService, transport);
    const { definition } = await defs.createDefinition({
      definition: {
        name: "Bench daily", eventTypes: ["purchase"],
        window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
        condition: { type: ConditionType.SUM, min: 50 },
        milestones: [{ threshold: 7, reward: { kind: RewardKind.POINTS, points: 100, fulfilmentMode: FulfilmentMode.CLAIM } }],
      },
    });
    const definitionId = definition!.id;
    await defs.publishDefinition({ definitionId });
    const activities = createClient(ActivityService, transport);
    const started = performance.now();
    for (let base = 0; base < members; base += 500) {
      await activities.recordActivities({
        omitProgress: true,
        activities: Array.from({ length: Math.min(500, members - base) }, (_, k) => ({
          memberRef: { case: "memberExternalId" as const, value: `m${base + k}` }, target: { case: "definitionId" as const, value: definitionId },
          occurTime: timestampFromMs(Date.now()), value: 10, uniqueIdentifier: `seed-${base + k}`,
        })),
      });
    }
    console.log(`${name}: seeded ${members} members in ${((performance.now() - started) / 1000).toFixed(1)}s`);
    return { name, url, apiUrl: kindling.apiUrl!, keyId: tenant.keyId, secret: tenant.secret, definitionId, stop: () => kindling.stop() };
  } finally {
    await orm.close();
  }
}

/** Rows of `table` per worker port, counted on its shards. */
async function rowsPerWorker(url: string, table: string): Promise<Record<string, number>> {
  const c = new pgDriver.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ nodeport: number; n: string }>(
      `select s.nodeport, sum(r.result::bigint)::text as n from run_command_on_shards($1, 'select count(*) from %s') r
         join citus_shards s on s.shardid = r.shardid group by s.nodeport order by 1`,
      [table],
    );
    return Object.fromEntries(rows.map((r) => [String(r.nodeport), Number(r.n)]));
  } finally {
    await c.end();
  }
}

export async function benchCitus(): Promise<void> {
  const go = goVersion();
  if (go === null) throw new Error("BENCH_DATABASE=citus drives the API with the compiled load generator: install Go");
  const work = mkdtempSync(join(tmpdir(), "kindling-bench-citus-"));
  const loadgen = buildLoadgen(work);
  const cluster = await startCitusCluster(2);
  const targets: Target[] = [];
  try {
    // One PostgreSQL 15: a database of the coordinator's server without the citus extension.
    const admin = new pgDriver.Client({ connectionString: cluster.url });
    await admin.connect();
    await admin.query("create database single");
    await admin.end();
    const singleUrl = new URL(cluster.url);
    singleUrl.pathname = "/single";
    targets.push(await startTarget("citus", cluster.url, "citus"));
    targets.push(await startTarget("postgres15", singleUrl.toString(), "postgres"));
    const nodes: Record<string, number> = {
      coordinator: cluster.postmasterPid(cluster.coordinatorPort),
      ...Object.fromEntries(cluster.workerPorts.map((p, i) => [`worker${i + 1}`, cluster.postmasterPid(p)])),
    };

    const phase = async (t: Target, kind: "ingest" | "read"): Promise<Phase> => {
      await settleDatabase(t.url, INGEST_TABLES);
      const before = Object.fromEntries(Object.entries(nodes).map(([n, pid]) => [n, postgresCpuMicros(pid)]));
      const result = await runLoadgen(loadgen, {
        addr: new URL(t.apiUrl).host, kind, seconds, concurrency, connections: 1, apikey: t.keyId, secret: t.secret,
        definition: t.definitionId, members, run: randomUUID().slice(0, 8),
      });
      const cpu = Object.fromEntries(Object.entries(nodes).map(([n, pid]) => {
        const a = before[n];
        const b = postgresCpuMicros(pid);
        return [n, a === null || a === undefined || b === null || result.requests === 0 ? null : Math.round((b - a) / result.requests)];
      }));
      console.log(`${t.name} ${kind}: ${result.perSecond}/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, errors ${result.errors}; node CPU µs/call`, cpu);
      return { ...result, nodeCpuMicrosPerCall: cpu };
    };

    const byRound: Record<string, { ingest: Phase; read: Phase }>[] = [];
    for (let round = 1; round <= rounds; round++) {
      console.log(`— round ${round} of ${rounds}, ${concurrency} calls in flight, ${seconds}s a phase`);
      const r: Record<string, { ingest: Phase; read: Phase }> = {};
      for (const t of targets) r[t.name] = { ingest: await phase(t, "ingest"), read: await phase(t, "read") };
      byRound.push(r);
    }
    const med = (name: string, kind: "ingest" | "read") => median(byRound.map((r) => r[name]![kind].perSecond));
    const medCpu = (name: string, kind: "ingest" | "read", node: string) => {
      const values = byRound.map((r) => r[name]![kind].nodeCpuMicrosPerCall[node]).filter((v): v is number => typeof v === "number");
      return values.length === 0 ? null : median(values);
    };
    const summary = Object.fromEntries(targets.map((t) => [t.name, {
      recordActivityPerSecond: med(t.name, "ingest"),
      getMemberStreakPerSecond: med(t.name, "read"),
      nodeCpuMicrosPerCall: Object.fromEntries(Object.keys(nodes).map((n) => [n, { recordActivity: medCpu(t.name, "ingest", n), getMemberStreak: medCpu(t.name, "read", n) }])),
    }]));
    const rows = Object.fromEntries(await Promise.all(["member", "member_streak", "activity"].map(async (t) => [t, await rowsPerWorker(cluster.url, t)] as const)));
    const result = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, node: process.version, go },
      settings: { seconds, rounds, concurrency, members, loadgenThreads: LOADGEN_THREADS, cluster: "coordinator + 2 workers, Citus 13.2.2, PostgreSQL 15, one machine" },
      median: summary,
      ratios: {
        ingestCitusVsPostgres15: ratio(summary.citus!.recordActivityPerSecond, summary.postgres15!.recordActivityPerSecond),
        readsCitusVsPostgres15: ratio(summary.citus!.getMemberStreakPerSecond, summary.postgres15!.getMemberStreakPerSecond),
      },
      rowsPerWorkerPort: rows,
      rounds: byRound,
    };
    mkdirSync(join(import.meta.dirname, "results"), { recursive: true });
    writeFileSync(join(import.meta.dirname, "results", "citus.json"), `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify({ median: summary, ratios: result.ratios, rowsPerWorkerPort: rows }, null, 2));
    console.log("written to bench/results/citus.json");
  } finally {
    for (const t of targets) await t.stop().catch(() => undefined);
    await cluster.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
