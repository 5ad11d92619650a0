// `npm run bench`: Kindling's ingest and read throughput through the full gRPC stack, side by side with pgbench
// running the equivalent hand-written SQL against the same database in the same run, reported as ratios.
//
//   1. embedded PostgreSQL in a temporary directory (durable settings: fsync and synchronous_commit on);
//   2. the API on it (role `api`; Temporal is off the hot path), a tenant, a LIVE daily definition, N members;
//   3. rounds of: RecordActivity over gRPC/HTTP2 at fixed concurrency for a fixed time → requests/s, p50/p95/p99,
//      driven by bench/loadgen (a grpc-go client, built here when a Go toolchain is present: a JavaScript client
//      spends as much CPU per call as the server's transport, on the same two cores) or else from a worker
//      thread (bench/load-worker.ts) so the client does not eat the server's event loop, with
//      how many requests shared a transaction (average batch size); pgbench with one activity's transaction
//      (member upsert, streak row lock + update, activity insert), same client count, same duration;
//      GetMemberStreak the same way, then pgbench with one progress read (member + streak join, rewards); the
//      no-op health check (the transport's own ceiling);
//      every phase (ours and pgbench's) starts from a settled database (settle: VACUUM ANALYZE, CHECKPOINT), and
//      each of ours reports the API process's CPU time per call beside calls/s, and where a call waited instead of
//      running (bench/phase-stats.ts: the cores' idle share, the API thread's event-loop delay, collector pauses);
//   4. all of it at each concurrency level (calls in flight = pgbench clients), one after the other;
//   5. each round's ratios, and their medians per level, printed and written to bench/results/ingest.json. Measuring both
//      sides back to back in every round keeps a ratio from comparing a fast minute with a slow one (the same
//      command varies by ±30 % on a small shared VM).
// Environment knobs: BENCH_SECONDS (per phase, default 10), BENCH_ROUNDS (per level, default 3), BENCH_CONCURRENCY
// (comma-separated levels, default 32,128), BENCH_MEMBERS (default 5000), BENCH_API_PROCESSES (KINDLING_API_PROCESSES for the API, default
// 1), BENCH_CONNECTIONS (HTTP/2 connections the calls are spread over, default 1 for one API process and 4 per
// process for more: each connection is served by one process, placed by the kernel's hash, and requests that
// arrive in one socket read share one transaction, so more connections make smaller batches), BENCH_CLIENT (go:
// bench/loadgen, the default when `go` runs; raw: unary gRPC framed by hand on node:http2 in a worker thread, the
// default without Go; connect: connect-node's transport in a worker thread), BENCH_LOADGEN_THREADS (GOMAXPROCS of
// bench/loadgen, default 1: see bench/go-loadgen.ts; 0: Go's default, one per core),
// BENCH_GRPC_UNARY_PATH (KINDLING_GRPC_UNARY_PATH for the API: false sends every call through connect-node's
// generic pipeline; default true), BENCH_SKIP_PGBENCH (Kindling's side only, nothing written), BENCH_PGBOUNCER (true:
// a second API on the same database through Debian's pgbouncer in transaction mode — its server pool the size of the
// API's pool, prepared statements off, DATABASE_DIRECT_URL for migrations and notices — measured beside the direct
// one in every round, reported as the ratio pooled/direct), BENCH_PREPARED_STATEMENTS (false: the direct API without
// prepared statements too, to tell PgBouncer's cost from theirs; default true), BENCH_HISTORY
// (KINDLING_HISTORY for the API: false stores no window history when recording; default true; compare: a second API
// on the same database with history off, its RecordActivity phase measured beside the first's in every round, in
// alternating order, reported as the API and PostgreSQL CPU per recorded activity with history on ÷ off, written to
// bench/results/history-cost.json — issue 13 asks ≤ 1.10), BENCH_ROLLING (true:
// the definition has rolling windows of at least 1 s, any activity counts, no grace — each member's activity a
// second or more after its last counted one counts a window and finalises it at once, so nearly every recorded
// activity stores a history row, the most history writes per activity there can be; default false: daily windows,
// which never close during a run), BENCH_API_PROFILE (a directory: every Kindling phase is CPU-profiled in the API
// process and written there as <phase>-<concurrency>-<run id>.cpuprofile, with its summary by self time printed; the
// sampling costs CPU, so a profiled run's CPU per call is not one to compare). Beside the API's CPU time per call,
// each phase reports PostgreSQL's (every server process, from /proc; null off Linux).
import { Worker } from "node:worker_threads";
import { rmSync, writeFileSync, mkdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import pgDriver from "pg";
import { runPgbench, settleDatabase, apiKeyTransport, postgresCpuMicros, INGEST_TABLES } from "./pgbench.ts";
import { startPhaseStats, type PhaseStats } from "./phase-stats.ts";
import { median } from "./stats.ts";
import { startCpuProfile, summarise } from "./cpu-profile.ts";
import { buildLoadgen, goVersion, LOADGEN_THREADS, runLoadgen } from "./go-loadgen.ts";
import { createClient, type Client } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { startEmbeddedPostgres, createTemporaryDataRoot } from "../src/infra/embedded-postgres.ts";
import { startPgBouncer, type PgBouncer } from "../test/support/pgbouncer.ts";
import { loadConfig } from "../src/config/config.ts";
import { createLogger } from "../src/observability/logger.ts";
import { startKindling } from "../src/app.ts";
import { batchIngestTotals } from "../src/engine/ingest/batch-ingestor.ts";
import { grpcUnaryTotals } from "../src/api/grpc-unary.ts";
import { progressCacheTotals } from "../src/api/mappers/progress-cache.ts";
import type { LoadJob, LoadResult } from "./load-worker.ts";
import { createOrm } from "../src/db/orm.ts";
import { createTenantWithAdminKey } from "../src/db/repositories/tenant.repository.ts";
import { DefinitionService } from "../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../src/gen/kindling/v1/activity_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../src/gen/kindling/v1/definition_pb.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
// Concurrency levels, each measured on its own (rounds at each level): "32,128" by default. Batching shares one
// transaction among the calls in flight, while pgbench's clients each run their own; how the two compare depends on
// how many calls are in flight, so the report gives every level.
const levels = (process.env.BENCH_CONCURRENCY ?? "32,128").split(",").map((c) => Number(c.trim())).filter((c) => Number.isInteger(c) && c > 0);
const maxConcurrency = Math.max(...levels);
const members = Number(process.env.BENCH_MEMBERS ?? 5000);
const apiProcesses = Number(process.env.BENCH_API_PROCESSES ?? 1);
const viaPgbouncer = process.env.BENCH_PGBOUNCER === "true";
// SO_REUSEPORT places connections by hash, not in turn: with one connection per process two could share one.
const connections = Number(process.env.BENCH_CONNECTIONS ?? (apiProcesses === 1 ? 1 : 4 * apiProcesses));
// The load generator: `go` (bench/loadgen, grpc-go, compiled here) when a Go toolchain is present, else `raw`.
const go = goVersion();
const client: "go" | "raw" | "connect" =
  process.env.BENCH_CLIENT === "connect" || process.env.BENCH_CLIENT === "raw" || process.env.BENCH_CLIENT === "go"
    ? process.env.BENCH_CLIENT
    : go !== null ? "go" : "raw";
const grpcUnaryPath = process.env.BENCH_GRPC_UNARY_PATH !== "false";
const history = process.env.BENCH_HISTORY !== "false";
const historyCompare = process.env.BENCH_HISTORY === "compare";
const rolling = process.env.BENCH_ROLLING === "true";
const profileDir = process.env.BENCH_API_PROFILE || undefined;

type MeasuredLoad = LoadResult & {
  readonly apiCpuMicrosPerCall: number | null;
  readonly dbCpuMicrosPerCall: number | null;
  /** Idle cores, the API thread's event-loop delay, collector pauses and heap allocated per call (bench/phase-stats.ts); null as apiCpuMicrosPerCall. */
  readonly phase: (PhaseStats & { readonly allocatedBytesPerCall: number | null }) | null;
};

interface Round {
  readonly kindling: { recordActivity: MeasuredLoad; getMemberStreak: MeasuredLoad; healthCheck: MeasuredLoad };
  readonly batching: Record<string, number>;
  readonly pgbench: { activityTransactionTps: number; progressReadTps: number } | null;
  readonly ratios: { ingestVsPgbench: number; readsVsPgbench: number } | null;
  /** BENCH_PGBOUNCER: the same phases against the API whose pool goes through PgBouncer. */
  readonly pgbouncer: { recordActivity: MeasuredLoad; getMemberStreak: MeasuredLoad; ingestVsDirect: number; readsVsDirect: number } | null;
  /** BENCH_HISTORY=compare: RecordActivity on the API with history off, and CPU per activity with history on ÷ off. */
  readonly historyOff: { recordActivity: MeasuredLoad; historyRowsPerActivity: number; onFirst: boolean; cost: HistoryCost | null } | null;
}

/** CPU time per recorded activity with window history on ÷ off: the API's, PostgreSQL's, and both together. */
interface HistoryCost { readonly api: number; readonly database: number; readonly total: number }

function historyCost(on: MeasuredLoad, off: MeasuredLoad): HistoryCost | null {
  if (on.apiCpuMicrosPerCall === null || off.apiCpuMicrosPerCall === null || on.dbCpuMicrosPerCall === null || off.dbCpuMicrosPerCall === null) return null;
  return {
    api: ratio(on.apiCpuMicrosPerCall, off.apiCpuMicrosPerCall),
    database: ratio(on.dbCpuMicrosPerCall, off.dbCpuMicrosPerCall),
    total: ratio(on.apiCpuMicrosPerCall + on.dbCpuMicrosPerCall, off.apiCpuMicrosPerCall + off.dbCpuMicrosPerCall),
  };
}

const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;

/** Runs one load phase in the compiled load generator. */
function loadGo(binary: string, job: Omit<LoadJob, "seconds" | "connections" | "client">): Promise<LoadResult> {
  return runLoadgen(binary, {
    addr: new URL(job.apiUrl).host, kind: job.kind, seconds, concurrency: job.concurrency, connections,
    apikey: job.keyId, secret: job.secret, definition: job.definitionId, members: job.members, run: job.run,
  });
}

/** Runs one load phase in a worker thread (bench/load-worker.ts), so the client does not share the server's event loop. */
function load(job: Omit<LoadJob, "seconds" | "connections" | "client">, loadgen?: string): Promise<LoadResult> {
  if (loadgen) return loadGo(loadgen, job);
  const jsClient = client === "connect" ? "connect" : "raw";
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./load-worker.ts", import.meta.url), { workerData: { ...job, seconds, connections, client: jsClient } satisfies LoadJob });
    worker.once("message", (result: LoadResult) => resolve(result));
    worker.once("error", reject);
    worker.once("exit", (code) => (code === 0 ? undefined : reject(new Error(`load worker exited with ${code}`))));
  });
}

/**
 * A load phase, with the CPU time this process spent per answered call: the API's own cost of a call (all its
 * threads, garbage collection included), steadier on a shared VM than calls per second. Only when the load comes
 * from the separate Go process and the API is this one process; null otherwise.
 */
async function measuredLoad(job: Omit<LoadJob, "seconds" | "connections" | "client">, loadgen?: string, postmasterPid?: number): Promise<MeasuredLoad> {
  const stopProfile = profileDir === undefined ? undefined : await startCpuProfile(profileDir);
  const before = process.cpuUsage();
  const dbBefore = postmasterPid === undefined ? null : postgresCpuMicros(postmasterPid);
  const stopStats = startPhaseStats();
  const result = await load(job, loadgen);
  const phase = stopStats();
  const used = process.cpuUsage(before);
  const dbAfter = postmasterPid === undefined ? null : postgresCpuMicros(postmasterPid);
  if (stopProfile) {
    const file = await stopProfile(`${job.kind}-${job.concurrency}-${job.run}`);
    console.log(`CPU profile ${file}:\n${summarise(JSON.parse(readFileSync(file, "utf8")), 25)}`);
  }
  const perCall = loadgen && apiProcesses === 1 && result.requests > 0 ? Math.round((used.user + used.system) / result.requests) : null;
  const dbPerCall = dbBefore !== null && dbAfter !== null && result.requests > 0 ? Math.round((dbAfter - dbBefore) / result.requests) : null;
  const allocatedBytesPerCall = result.requests > 0 ? Math.round(phase.allocatedBytes / result.requests) : null;
  return { ...result, apiCpuMicrosPerCall: perCall, dbCpuMicrosPerCall: dbPerCall, phase: perCall === null ? null : { ...phase, allocatedBytesPerCall } };
}

/** Window history rows stored so far (streak_window). */
async function historyRows(url: string): Promise<number> {
  const c = new pgDriver.Client({ connectionString: url });
  await c.connect();
  try {
    return Number((await c.query<{ n: string }>("select count(*) as n from streak_window")).rows[0]!.n);
  } finally {
    await c.end();
  }
}
const settle = (url: string) => settleDatabase(url, INGEST_TABLES);

/** BENCH_HISTORY=compare: the medians of history on ÷ off per level, printed and written to bench/results/history-cost.json. */
function writeHistoryCost(byLevel: readonly { concurrency: number; results: Round[] }[]): void {
  const levelsOut = byLevel.map(({ concurrency, results }) => {
    const costs = results.map((r) => r.historyOff?.cost).filter((c): c is HistoryCost => c != null);
    const pick = (f: (c: HistoryCost) => number) => (costs.length ? median(costs.map(f)) : null);
    const rows = (f: (r: Round) => number) => median(results.map(f));
    return {
      concurrency,
      median: {
        onVsOff: { api: pick((c) => c.api), database: pick((c) => c.database), total: pick((c) => c.total) },
        historyRowsPerActivity: { on: rows((r) => r.batching.historyRowsPerActivity!), off: rows((r) => r.historyOff!.historyRowsPerActivity) },
        recordActivityPerSecond: { on: rows((r) => r.kindling.recordActivity.perSecond), off: rows((r) => r.historyOff!.recordActivity.perSecond) },
      },
      rounds: results.map((r) => ({
        onFirst: r.historyOff!.onFirst,
        on: { perSecond: r.kindling.recordActivity.perSecond, apiCpuMicrosPerCall: r.kindling.recordActivity.apiCpuMicrosPerCall, dbCpuMicrosPerCall: r.kindling.recordActivity.dbCpuMicrosPerCall, historyRowsPerActivity: r.batching.historyRowsPerActivity },
        off: { perSecond: r.historyOff!.recordActivity.perSecond, apiCpuMicrosPerCall: r.historyOff!.recordActivity.apiCpuMicrosPerCall, dbCpuMicrosPerCall: r.historyOff!.recordActivity.dbCpuMicrosPerCall, historyRowsPerActivity: r.historyOff!.historyRowsPerActivity },
        onVsOff: r.historyOff!.cost,
      })),
    };
  });
  const out = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, node: process.version },
    settings: { seconds, rounds, concurrency: levels, members, client, rolling },
    target: { totalOnVsOff: 1.1 },
    levels: levelsOut,
  };
  mkdirSync(join(import.meta.dirname, "results"), { recursive: true });
  writeFileSync(join(import.meta.dirname, "results", "history-cost.json"), `${JSON.stringify(out, null, 2)}\n`);
  for (const level of levelsOut) {
    const m = level.median;
    console.log(`history on ÷ off at ${level.concurrency} in flight (${rolling ? "rolling 1 s windows" : "daily windows"}; history rows per activity ${m.historyRowsPerActivity.on} vs ${m.historyRowsPerActivity.off}): API CPU ${m.onVsOff.api}×, PostgreSQL CPU ${m.onVsOff.database}×, together ${m.onVsOff.total}× (target ≤ 1.10)`);
  }
  console.log("written to bench/results/history-cost.json");
}

async function main() {
  const root = await createTemporaryDataRoot("kindling-bench-");
  const loadgen = client === "go" ? buildLoadgen(root) : undefined;
  console.log(`load generator: ${client === "go" ? `bench/loadgen (grpc-go, ${go})` : `${client} (JavaScript, worker thread)`}`);
  // Durable settings (fsync, synchronous_commit on); only room for pgbench's clients beside the API's pool.
  const pg = await startEmbeddedPostgres({ dataDir: join(root, "postgres"), port: 0, settings: { max_connections: String(Math.max(100, maxConcurrency + 64 + (viaPgbouncer ? 40 : 0))) } });
  const poolSize = Math.max(8, Math.min(32, Math.ceil(maxConcurrency / apiProcesses)));
  const configEnv = { DATABASE_URL: pg.databaseUrl, PORT: "0", LOG_LEVEL: "warn", RATE_LIMIT_PER_SECOND: "0",
    DATABASE_POOL_SIZE: String(poolSize), KINDLING_API_PROCESSES: String(apiProcesses),
    KINDLING_GRPC_UNARY_PATH: String(grpcUnaryPath), KINDLING_DB_PREPARED_STATEMENTS: process.env.BENCH_PREPARED_STATEMENTS ?? "true",
    KINDLING_HISTORY: String(history) };
  const config = loadConfig(configEnv);
  const postmasterPid = Number(readFileSync(join(root, "postgres", "postmaster.pid"), "utf8").split("\n")[0]);
  const kindling = await startKindling(config, createLogger("warn"), "api");
  let bouncer: PgBouncer | undefined;
  let pooled: Awaited<ReturnType<typeof startKindling>> | undefined;
  if (viaPgbouncer) {
    bouncer = await startPgBouncer(pg.databaseUrl, { poolSize });
    pooled = await startKindling(
      loadConfig({ DATABASE_URL: bouncer.url, DATABASE_DIRECT_URL: pg.databaseUrl, KINDLING_DB_PREPARED_STATEMENTS: "false", PORT: "0", LOG_LEVEL: "warn",
        RATE_LIMIT_PER_SECOND: "0", DATABASE_POOL_SIZE: String(poolSize), KINDLING_GRPC_UNARY_PATH: String(grpcUnaryPath) }),
      createLogger("warn"),
      "api",
    );
    console.log(`PgBouncer ${bouncer.url.replace(/\/\/[^@]*@/, "//")} (transaction mode, ${poolSize} server connections) in front of a second API: ${pooled.apiUrl}`);
  }
  // BENCH_HISTORY=compare: the same API settings on the same database, storing no window history.
  const noHistory = historyCompare
    ? await startKindling(loadConfig({ ...configEnv, KINDLING_HISTORY: "false" }), createLogger("warn"), "api")
    : undefined;
  if (noHistory) console.log(`history off: a second API on the same database, ${noHistory.apiUrl}`);
  const orm = await createOrm(pg.databaseUrl, 2);
  try {
    const tenant = await createTenantWithAdminKey(orm.em.fork(), { id: randomUUID(), name: "bench" });
    const transport = apiKeyTransport(kindling.apiUrl!, tenant);
    const defs = createClient(DefinitionService, transport);
    const { definition } = await defs.createDefinition({
      definition: {
        name: rolling ? "Bench rolling" : "Bench daily",
        eventTypes: ["purchase"],
        window: rolling
          ? { kind: { case: "rolling", value: { minSpacingDuration: { seconds: 1n }, maxGapDuration: { seconds: 3600n } } } }
          : { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
        condition: rolling ? { type: ConditionType.COUNT, min: 1 } : { type: ConditionType.SUM, min: 50 },
        milestones: [{ threshold: 7, reward: { kind: RewardKind.POINTS, points: 100, fulfilmentMode: FulfilmentMode.CLAIM } }],
      },
    });
    const definitionId = definition!.id;
    await defs.publishDefinition({ definitionId });
    const activities: Client<typeof ActivityService> = createClient(ActivityService, transport);

    // Seed every member with one activity so reads find a record.
    const seedStart = performance.now();
    for (let base = 0; base < members; base += 500) {
      await activities.recordActivities({
        omitProgress: true,
        activities: Array.from({ length: Math.min(500, members - base) }, (_, k) => ({
          memberRef: { case: "memberExternalId" as const, value: `m${base + k}` },
          target: { case: "definitionId" as const, value: definitionId },
          occurTime: timestampFromMs(Date.now()),
          value: 10,
          uniqueIdentifier: `seed-${base + k}`,
        })),
      });
    }
    console.log(`seeded ${members} members in ${((performance.now() - seedStart) / 1000).toFixed(1)}s`);

    const vars = { tenant: tenant.tenantId, definition: definitionId, members: String(members) };
    // The same statements one RecordActivity runs for one definition, minus the domain computation in between.
    const ingestSql = `\\set m random(0, :members - 1)
begin;
with created as (insert into member (id, tenant_id, external_id, points_balance, created_at, updated_at)
  values (gen_random_uuid(), :tenant::uuid, 'm' || :m, 0, now(), now()) on conflict (tenant_id, external_id) do nothing returning id, time_zone)
select id, time_zone from created union all select id, time_zone from member where tenant_id = :tenant::uuid and external_id = 'm' || :m limit 1;
select s.id, st.state from member_streak s join member_streak_state st on st.member_streak_id = s.id
  where s.tenant_id = :tenant::uuid and s.definition_id = :definition::uuid
  and s.member_id = (select id from member where tenant_id = :tenant::uuid and external_id = 'm' || :m) for update of s, st;
update member_streak_state set state = state where member_streak_id = (select id from member_streak where tenant_id = :tenant::uuid
  and definition_id = :definition::uuid and member_id = (select id from member where tenant_id = :tenant::uuid and external_id = 'm' || :m));
update member_streak set status = status, current_count = current_count, longest_count = longest_count,
  window_close_at = window_close_at, at_risk_at = at_risk_at, break_at = break_at, last_activity_at = now(), version = version + 1, updated_at = now(),
  break_kind = break_kind, break_window_key = break_window_key
  where tenant_id = :tenant::uuid and definition_id = :definition::uuid and member_id = (select id from member where tenant_id = :tenant::uuid and external_id = 'm' || :m);
insert into activity (id, tenant_id, member_id, definition_id, event_type, applied_definition_ids, occurred_at, value, distinct_key, unique_identifier, platform, metadata, recorded_at)
  values (gen_random_uuid(), :tenant::uuid, (select id from member where tenant_id = :tenant::uuid and external_id = 'm' || :m), null, 'purchase', array[:definition::text],
  now(), 5, null, gen_random_uuid()::text, null, '{}', now());
commit;
`;
    const readSql = `\\set m random(0, :members - 1)
select m.id, s.id, st.state from member m left join member_streak s on s.member_id = m.id and s.tenant_id = m.tenant_id and s.definition_id = :definition::uuid
  left join member_streak_state st on st.member_streak_id = s.id
  where m.tenant_id = :tenant::uuid and m.external_id = 'm' || :m;
select id, state from reward where tenant_id = :tenant::uuid and definition_id = :definition::uuid
  and member_id = (select id from member where tenant_id = :tenant::uuid and external_id = 'm' || :m);
`;

    const skipPgbench = Boolean(process.env.BENCH_SKIP_PGBENCH);
    const job = { apiUrl: kindling.apiUrl!, keyId: tenant.keyId, secret: tenant.secret, definitionId, members };
    const unaryBefore = grpcUnaryTotals();
    const byLevel: { concurrency: number; results: Round[] }[] = [];
    for (const concurrency of levels) {
      const results: Round[] = [];
      byLevel.push({ concurrency, results });
      // Each round measures Kindling and pgbench back to back, so each ratio compares two measurements taken close
      // together on this noisy box; the report gives every round and the median.
      for (let round = 1; round <= rounds; round++) {
        console.log(`— concurrency ${concurrency}, round ${round} of ${rounds}`);
        // BENCH_HISTORY=compare: RecordActivity with history off, before the history-on phase in even rounds and
        // after it in odd ones, so neither side always runs on the warmer (or more bloated) database.
        const onFirst = round % 2 === 1;
        const measureHistoryOff = async () => {
          await settle(pg.databaseUrl);
          console.log(`RecordActivity, history off: ${concurrency} concurrent gRPC calls for ${seconds}s…`);
          const rowsBefore = await historyRows(pg.databaseUrl);
          const off = await measuredLoad({ ...job, apiUrl: noHistory!.apiUrl!, concurrency, run: randomUUID().slice(0, 8), kind: "ingest" }, loadgen, postmasterPid);
          const historyRowsPerActivity = Math.round(((await historyRows(pg.databaseUrl)) - rowsBefore) / Math.max(1, off.requests) * 100) / 100;
          console.log(off, { historyRowsPerActivity });
          return { recordActivity: off, historyRowsPerActivity };
        };
        const offBefore = noHistory && !onFirst ? await measureHistoryOff() : undefined;
        await settle(pg.databaseUrl);
        console.log(`RecordActivity: ${concurrency} concurrent gRPC calls for ${seconds}s…`);
        const batchesBefore = batchIngestTotals();
        const windowsBefore = await historyRows(pg.databaseUrl);
        const ingest = await measuredLoad({ ...job, concurrency, run: randomUUID().slice(0, 8), kind: "ingest" }, loadgen, postmasterPid);
        const batchesAfter = batchIngestTotals();
        const batching = {
          batches: batchesAfter.batches - batchesBefore.batches,
          items: batchesAfter.items - batchesBefore.items,
          averageBatchSize: Math.round(((batchesAfter.items - batchesBefore.items) / Math.max(1, batchesAfter.batches - batchesBefore.batches)) * 100) / 100,
          retries: batchesAfter.retries - batchesBefore.retries,
          conflicts: batchesAfter.conflicts - batchesBefore.conflicts,
          fallbacks: batchesAfter.fallbacks - batchesBefore.fallbacks,
          deadlocks: batchesAfter.deadlocks - batchesBefore.deadlocks,
          // Window history rows the phase stored (streak_window), per recorded activity.
          historyRowsPerActivity: Math.round(((await historyRows(pg.databaseUrl)) - windowsBefore) / Math.max(1, ingest.requests) * 100) / 100,
        };
        console.log(ingest, batching);
        const off = offBefore ?? (noHistory ? await measureHistoryOff() : undefined);
        const historyOff = off ? { ...off, onFirst, cost: historyCost(ingest, off.recordActivity) } : null;
        if (historyOff) console.log(`history on ÷ off, CPU per recorded activity: ${JSON.stringify(historyOff.cost)}`);
        let ingestPooled: MeasuredLoad | undefined;
        if (pooled) {
          await settle(pg.databaseUrl);
          console.log(`RecordActivity through PgBouncer: ${concurrency} concurrent gRPC calls for ${seconds}s…`);
          const pooledBefore = batchIngestTotals();
          ingestPooled = await measuredLoad({ ...job, apiUrl: pooled.apiUrl!, concurrency, run: randomUUID().slice(0, 8), kind: "ingest" }, loadgen);
          const pooledAfter = batchIngestTotals();
          console.log(ingestPooled, {
            batches: pooledAfter.batches - pooledBefore.batches,
            averageBatchSize: Math.round(((pooledAfter.items - pooledBefore.items) / Math.max(1, pooledAfter.batches - pooledBefore.batches)) * 100) / 100,
            retries: pooledAfter.retries - pooledBefore.retries,
            conflicts: pooledAfter.conflicts - pooledBefore.conflicts,
            fallbacks: pooledAfter.fallbacks - pooledBefore.fallbacks,
          });
        }
        if (!skipPgbench) await settle(pg.databaseUrl);
        const pgIngest = skipPgbench ? null : runPgbench(pg.databaseUrl, ingestSql, vars, concurrency, seconds);
        if (pgIngest) console.log(`pgbench, equivalent activity transaction: ${pgIngest.tps} tps, ${pgIngest.latencyMs} ms average`);
        if (pgIngest && process.env.BENCH_DEBUG) console.log(pgIngest.raw);
        await settle(pg.databaseUrl);
        console.log(`GetMemberStreak: ${concurrency} concurrent gRPC calls for ${seconds}s…`);
        const cacheBefore = progressCacheTotals();
        const read = await measuredLoad({ ...job, concurrency, run: randomUUID().slice(0, 8), kind: "read" }, loadgen, postmasterPid);
        const cacheAfter = progressCacheTotals();
        // Answers reused from the progress cache (src/api/mappers/progress-cache.ts) and built afresh in the phase.
        console.log(read, { progressCache: { hits: cacheAfter.hits - cacheBefore.hits, misses: cacheAfter.misses - cacheBefore.misses } });
        let readPooled: MeasuredLoad | undefined;
        if (pooled) {
          await settle(pg.databaseUrl);
          console.log(`GetMemberStreak through PgBouncer: ${concurrency} concurrent gRPC calls for ${seconds}s…`);
          readPooled = await measuredLoad({ ...job, apiUrl: pooled.apiUrl!, concurrency, run: randomUUID().slice(0, 8), kind: "read" }, loadgen);
          console.log(readPooled);
        }
        if (!skipPgbench) await settle(pg.databaseUrl);
        const pgRead = skipPgbench ? null : runPgbench(pg.databaseUrl, readSql, vars, concurrency, seconds);
        if (pgRead) console.log(`pgbench, equivalent progress read: ${pgRead.tps} tps, ${pgRead.latencyMs} ms average`);
        await settle(pg.databaseUrl);
        console.log(`Health/Check (no-op RPC, the transport's own ceiling here): ${concurrency} concurrent gRPC calls for ${seconds}s…`);
        const health = await measuredLoad({ ...job, concurrency, run: randomUUID().slice(0, 8), kind: "health" }, loadgen);
        console.log(health, { heapUsedMb: Math.round(process.memoryUsage().heapUsed / 1e6), rssMb: Math.round(process.memoryUsage().rss / 1e6) });
        results.push({
          kindling: { recordActivity: ingest, getMemberStreak: read, healthCheck: health },
          batching,
          pgbench: pgIngest && pgRead ? { activityTransactionTps: pgIngest.tps, progressReadTps: pgRead.tps } : null,
          ratios: pgIngest && pgRead ? { ingestVsPgbench: ratio(ingest.perSecond, pgIngest.tps), readsVsPgbench: ratio(read.perSecond, pgRead.tps) } : null,
          pgbouncer: ingestPooled && readPooled
            ? { recordActivity: ingestPooled, getMemberStreak: readPooled, ingestVsDirect: ratio(ingestPooled.perSecond, ingest.perSecond), readsVsDirect: ratio(readPooled.perSecond, read.perSecond) }
            : null,
          historyOff,
        });
        const last = results.at(-1)!.pgbouncer;
        if (last) console.log(`through PgBouncer vs direct: ingest ${last.ingestVsDirect}×, reads ${last.readsVsDirect}×`);
      }
    }
    const unaryAfter = grpcUnaryTotals();
    // Calls the first API process answered on the lean unary gRPC path (src/api/grpc-unary.ts) during the rounds.
    const unaryPath = { enabled: grpcUnaryPath, answered: unaryAfter.answered - unaryBefore.answered, replayed: unaryAfter.replayed - unaryBefore.replayed };
    console.log({ unaryPath });
    if (historyCompare) writeHistoryCost(byLevel);
    if (skipPgbench) return;

    const summary = byLevel.map(({ concurrency, results }) => {
      const medianOf = (f: (r: Round) => number) => median(results.map(f));
      return {
        concurrency,
        // Medians over the rounds; every round below.
        median: {
          recordActivityPerSecond: medianOf((r) => r.kindling.recordActivity.perSecond),
          getMemberStreakPerSecond: medianOf((r) => r.kindling.getMemberStreak.perSecond),
          // The same load against the gRPC health check: what the transport (HTTP/2, protobuf, the interceptor
          // chain) alone allows on this box.
          healthCheckPerSecond: medianOf((r) => r.kindling.healthCheck.perSecond),
          // The API process's CPU time per call (µs; null unless the Go load generator drove one API process).
          apiCpuMicrosPerCall: results[0]!.kindling.healthCheck.apiCpuMicrosPerCall === null ? null : {
            recordActivity: medianOf((r) => r.kindling.recordActivity.apiCpuMicrosPerCall!),
            getMemberStreak: medianOf((r) => r.kindling.getMemberStreak.apiCpuMicrosPerCall!),
            healthCheck: medianOf((r) => r.kindling.healthCheck.apiCpuMicrosPerCall!),
          },
          // The Go load generator's own CPU per call (µs; it shares the cores; null with the JavaScript clients).
          loadgenCpuMicrosPerCall: results[0]!.kindling.healthCheck.clientCpuMicrosPerCall === undefined ? null : {
            recordActivity: medianOf((r) => r.kindling.recordActivity.clientCpuMicrosPerCall!),
            getMemberStreak: medianOf((r) => r.kindling.getMemberStreak.clientCpuMicrosPerCall!),
            healthCheck: medianOf((r) => r.kindling.healthCheck.clientCpuMicrosPerCall!),
          },
          // Where a call waited rather than ran (bench/phase-stats.ts; null as apiCpuMicrosPerCall): the machine's idle
          // share, the API thread's mean event-loop delay (ms) and collector pauses (ms per second of phase).
          waiting: results[0]!.kindling.healthCheck.phase === null ? null : Object.fromEntries(
            (["recordActivity", "getMemberStreak", "healthCheck"] as const).map((kind) => [kind, {
              idleShare: medianOf((r) => r.kindling[kind].phase!.idleShare ?? NaN),
              eventLoopDelayMeanMs: medianOf((r) => r.kindling[kind].phase!.eventLoopDelayMs.mean),
              gcPauseMsPerSecond: medianOf((r) => r.kindling[kind].phase!.gc.pauseMsPerSecond),
              allocatedBytesPerCall: medianOf((r) => r.kindling[kind].phase!.allocatedBytesPerCall ?? NaN),
            }]),
          ),
          pgbenchActivityTransactionTps: medianOf((r) => r.pgbench!.activityTransactionTps),
          pgbenchProgressReadTps: medianOf((r) => r.pgbench!.progressReadTps),
        },
        ratios: {
          ingestVsPgbench: medianOf((r) => r.ratios!.ingestVsPgbench),
          readsVsPgbench: medianOf((r) => r.ratios!.readsVsPgbench),
          ...(viaPgbouncer
            ? { pgbouncerIngestVsDirect: medianOf((r) => r.pgbouncer!.ingestVsDirect), pgbouncerReadsVsDirect: medianOf((r) => r.pgbouncer!.readsVsDirect) }
            : {}),
        },
        rounds: results,
      };
    });
    const result = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, node: process.version },
      settings: { seconds, rounds, concurrency: levels, members, apiProcesses, connections, client, loadgenThreads: client === "go" ? LOADGEN_THREADS : null, grpcUnaryPath, pgbouncer: viaPgbouncer, history, rolling },
      targets: { ingestVsPgbench: 1.0, readsVsPgbench: 0.5 },
      // Counted in the first API process only (the others keep their own counters).
      unaryPath,
      levels: summary,
    };
    mkdirSync(join(import.meta.dirname, "results"), { recursive: true });
    writeFileSync(join(import.meta.dirname, "results", "ingest.json"), `${JSON.stringify(result, null, 2)}\n`);
    console.log("");
    for (const level of summary) {
      const each = (f: (r: Round) => number) => level.rounds.map(f).join(" / ");
      console.log(`concurrency ${level.concurrency}:`);
      console.log(`  ingest: ${level.median.recordActivityPerSecond} req/s vs pgbench ${level.median.pgbenchActivityTransactionTps} tps → ${level.ratios.ingestVsPgbench}× (target ≥ 1.0×; rounds ${each((r) => r.ratios!.ingestVsPgbench)})`);
      console.log(`  reads:  ${level.median.getMemberStreakPerSecond} req/s vs pgbench ${level.median.pgbenchProgressReadTps} tps → ${level.ratios.readsVsPgbench}× (target ≥ 0.5×; rounds ${each((r) => r.ratios!.readsVsPgbench)})`);
      console.log(`  no-op health check: ${level.median.healthCheckPerSecond} calls/s`);
      if (viaPgbouncer) {
        console.log(`  through PgBouncer vs direct: ingest ${level.ratios.pgbouncerIngestVsDirect}×, reads ${level.ratios.pgbouncerReadsVsDirect}× (rounds ${each((r) => r.pgbouncer!.ingestVsDirect)} / ${each((r) => r.pgbouncer!.readsVsDirect)})`);
      }
      const cpu = level.median.apiCpuMicrosPerCall;
      if (cpu) console.log(`  API CPU per call: RecordActivity ${cpu.recordActivity} µs, GetMemberStreak ${cpu.getMemberStreak} µs, health check ${cpu.healthCheck} µs`);
      const waiting = level.median.waiting;
      if (waiting) {
        const line = (w: { idleShare: number; eventLoopDelayMeanMs: number; gcPauseMsPerSecond: number }) =>
          `${Math.round(w.idleShare * 100)} % idle, loop delay ${w.eventLoopDelayMeanMs} ms, GC ${w.gcPauseMsPerSecond} ms/s`;
        console.log(`  cores idle / API event-loop delay (mean) / GC pauses: RecordActivity ${line(waiting.recordActivity!)}; GetMemberStreak ${line(waiting.getMemberStreak!)}; health check ${line(waiting.healthCheck!)}`);
      }
      const client = level.median.loadgenCpuMicrosPerCall;
      if (client) console.log(`  load generator CPU per call: RecordActivity ${client.recordActivity} µs, GetMemberStreak ${client.getMemberStreak} µs, health check ${client.healthCheck} µs`);
    }
    console.log("written to bench/results/ingest.json");
  } finally {
    await orm.close();
    await noHistory?.stop();
    await pooled?.stop();
    if (bouncer && process.env.BENCH_DEBUG) console.log(bouncer.log().slice(-4000));
    await bouncer?.stop();
    await kindling.stop();
    await pg.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

// BENCH_DATABASE=citus: the same phases against Kindling on a 3-node Citus cluster and on one PostgreSQL 15
// (bench/citus.ts).
const database = process.env.BENCH_DATABASE ?? "postgres";
if (database === "citus") await (await import("./citus.ts")).benchCitus();
else if (database === "postgres") await main();
else throw new Error(`BENCH_DATABASE must be postgres (default) or citus, got "${database}"`);
