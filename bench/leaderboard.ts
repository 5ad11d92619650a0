// `npm run bench:leaderboard`: leaderboard reads at 1,000,000 member streaks (PRODUCT §7, issue 13), through the
// full gRPC stack, side by side with pgbench running the plain indexed SQL against the same database in the same
// run, reported as ratios (calls/s ÷ pgbench transactions/s; issue 13 asks ≥ 0.5). Concurrent top-100 reads share
// the API's statements (src/engine/history/leaderboard.ts), so the top phase also reports reads per statement and
// statements per second.
//
//   1. embedded PostgreSQL in a temporary directory (durable settings), the API on it (role `api`), a tenant and
//      a LIVE daily definition;
//   2. N members and N member streaks bulk-loaded with generate_series: counts drawn from an exponential
//      distribution (mean 10, so large tie groups), reached-at moments spread over 30 days, every window open,
//      1 % opted out, display names set; then VACUUM ANALYZE and CHECKPOINT;
//   3. rounds of, at each concurrency level: GetLeaderboard (top 100, current count) over gRPC (bench/loadgen, the
//      compiled grpc-go client, when Go runs here; else a lean client on node:http2 in a worker thread) for BENCH_SECONDS, then pgbench with the plain `SELECT … ORDER BY current_count DESC, … LIMIT 100`
//      joined to member for the names, then pgbench with the API's own top-100 statement (the plain one's rows,
//      less those a passed deadline broke: its share of a call); GetLeaderboardRank (a random member, 5 neighbours a side), then pgbench
//      with the plain rank (the member's row, then count(*) of the rows ahead of it). Every phase starts
//      from a settled database;
//      Last, GetLeaderboardSettings (a one-row read) for the same time: the rate the RPC stack alone allows here,
//      the ceiling of any ratio against a sub-millisecond SQL statement;
//   4. per round ratios and their medians, printed and written to bench/results/leaderboard.json.
// Knobs: LEADERBOARD_MEMBERS (default 1000000), BENCH_SECONDS (default 10), BENCH_ROUNDS (default 3),
// BENCH_CONCURRENCY (default "8"), BENCH_CLIENT (raw: the worker-thread client even where Go runs),
// BENCH_API_PROFILE (a directory: the first round's API load phases are CPU-profiled there, <kind>-c<n>.cpuprofile,
// and summarised by self time; the sampler costs CPU, so compare CPU per call from unprofiled runs only).
//
// The rank's cost grows with the member's rank on both sides (the rows ahead are counted through the index), so
// random members make its absolute rate low; the ratio compares like with like.
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { runPgbench, settleDatabase, apiKeyTransport } from "./pgbench.ts";
import { median } from "./stats.ts";
import { buildLoadgen, goVersion, LOADGEN_THREADS, runLoadgen } from "./go-loadgen.ts";
import type { LoadResult } from "./load-worker.ts";
import { startCpuProfile, summarise } from "./cpu-profile.ts";
import pgDriver from "pg";
import http2 from "node:http2";
import { create, fromBinary, toBinary, type DescMessage, type DescMethodUnary, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { LeaderboardMetric, LeaderboardService } from "../src/gen/kindling/v1/leaderboard_service_pb.js";
import { createTemporaryDataRoot } from "../src/infra/embedded-postgres.ts";
import { leaderboardTopTotals } from "../src/engine/history/leaderboard.ts";

interface LoadJob {
  /** `floor`: GetLeaderboardSettings, a one-row read: what the RPC stack alone allows on this machine. */
  readonly kind: "top" | "rank" | "floor";
  readonly apiUrl: string;
  readonly keyId: string;
  readonly secret: string;
  readonly definitionId: string;
  readonly members: number;
  readonly seconds: number;
  readonly concurrency: number;
}


/**
 * A lean unary gRPC call on one HTTP/2 session: the request framed by hand (5-byte header), the response's
 * grpc-status checked and its message decoded. A framework client in the worker spends about as much CPU per call
 * as the server's transport, on the same two cores (see bench/load-worker.ts).
 */
function unaryCall<I extends DescMessage, O extends DescMessage>(session: http2.ClientHttp2Session, job: LoadJob, method: DescMethodUnary<I, O>) {
  const path = `/${method.parent.typeName}/${method.name}`;
  return (input: MessageInitShape<I>): Promise<MessageShape<O>> =>
    new Promise((resolve, reject) => {
      const payload = toBinary(method.input, create(method.input, input));
      const frame = Buffer.alloc(5 + payload.length);
      frame.writeUInt32BE(payload.length, 1);
      frame.set(payload, 5);
      const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc+proto", te: "trailers", apikey: job.keyId, secretkey: job.secret });
      const chunks: Buffer[] = [];
      let status = "";
      const take = (h: http2.IncomingHttpHeaders) => {
        if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
      };
      stream.on("response", take);
      stream.on("trailers", take);
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", reject);
      stream.on("end", () => {
        const body = Buffer.concat(chunks);
        if (status !== "0" || body.length < 5) return reject(new Error(`grpc-status ${status}`));
        resolve(fromBinary(method.output, body.subarray(5, 5 + body.readUInt32BE(1))));
      });
      stream.end(frame);
    });
}

/** The worker thread: `concurrency` calls in flight for `seconds` (a client on the server's thread would take its CPU). */
async function runLoad(job: LoadJob): Promise<LoadResult> {
  const session = http2.connect(job.apiUrl).on("error", (error: Error) => console.error("http2 session failed:", error.message));
  const top = unaryCall(session, job, LeaderboardService.method.getLeaderboard);
  const rank = unaryCall(session, job, LeaderboardService.method.getLeaderboardRank);
  const settings = unaryCall(session, job, LeaderboardService.method.getLeaderboardSettings);
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + job.seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          if (job.kind === "floor") {
            await settings({});
          } else if (job.kind === "top") {
            const { entries } = await top({ definitionId: job.definitionId, metric: LeaderboardMetric.CURRENT_COUNT, limit: 100 });
            if (entries.length !== 100) throw new Error(`top 100 returned ${entries.length}`);
          } else {
            const member = `m${1 + Math.floor(Math.random() * job.members)}`;
            await rank({ definitionId: job.definitionId, metric: LeaderboardMetric.CURRENT_COUNT, memberExternalId: member, neighbours: 5 });
          }
          latencies.push(performance.now() - t0);
        } catch (error) {
          if (++errors <= 3) console.error("request failed:", (error as Error).message);
        }
      }
    }),
  );
  session.close();
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (p: number) => (latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!);
  const r2 = (n: number) => Math.round(n * 100) / 100;
  return { requests: latencies.length, errors, perSecond: r2(latencies.length / elapsed), p50Ms: r2(at(50)), p95Ms: r2(at(95)), p99Ms: r2(at(99)) };
}

/** The kinds of bench/loadgen that make the same calls as `runLoad`. */
const GO_KINDS: Record<LoadJob["kind"], string> = { top: "leaderboard-top", rank: "leaderboard-rank", floor: "leaderboard-settings" };

/**
 * One load phase: in the compiled load generator when `loadgen` is given (a separate process), else in a worker
 * thread; either way with the CPU time this process (the API's) spent per answered call.
 */
async function load(job: LoadJob, loadgen: string | undefined, profileDir?: string): Promise<LoadResult & { apiCpuMicrosPerCall: number | null }> {
  const stopProfile = profileDir ? await startCpuProfile(profileDir) : undefined;
  const before = process.cpuUsage();
  const result = loadgen
    ? await runLoadgen(loadgen, {
        addr: new URL(job.apiUrl).host, kind: GO_KINDS[job.kind], seconds: job.seconds, concurrency: job.concurrency,
        apikey: job.keyId, secret: job.secret, definition: job.definitionId, members: job.members, limit: 100,
      })
    : await loadInWorker(job);
  const used = process.cpuUsage(before);
  if (stopProfile) {
    const name = `${job.kind}-c${job.concurrency}`;
    const file = await stopProfile(name);
    process.stdout.write(`[leaderboard] CPU profile ${file}:\n${summarise(JSON.parse(readFileSync(file, "utf8")), 25)}\n`);
  }
  // In a worker thread the client's CPU is this process's too: then there is no API-only figure.
  return { ...result, apiCpuMicrosPerCall: loadgen && result.requests > 0 ? Math.round((used.user + used.system) / result.requests) : null };
}

function loadInWorker(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: job });
    worker.once("message", (result: LoadResult) => resolve(result));
    worker.once("error", reject);
    worker.once("exit", (code) => (code === 0 ? undefined : reject(new Error(`load worker exited with ${code}`))));
  });
}



async function main(): Promise<void> {
  const { startEmbeddedPostgres } = await import("../src/infra/embedded-postgres.ts");
  const { loadConfig } = await import("../src/config/config.ts");
  const { createLogger } = await import("../src/observability/logger.ts");
  const { startKindling } = await import("../src/app.ts");
  const { createOrm } = await import("../src/db/orm.ts");
  const { createTenantWithAdminKey } = await import("../src/db/repositories/tenant.repository.ts");
  const { DefinitionService } = await import("../src/gen/kindling/v1/definition_service_pb.js");
  const { CalendarPeriod, ConditionType } = await import("../src/gen/kindling/v1/definition_pb.js");

  const members = Number(process.env.LEADERBOARD_MEMBERS ?? 1_000_000);
  const seconds = Number(process.env.BENCH_SECONDS ?? 10);
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
  const profileDir = process.env.BENCH_API_PROFILE || undefined;
  const levels = (process.env.BENCH_CONCURRENCY ?? "8").split(",").map((c) => Number(c.trim())).filter((c) => Number.isInteger(c) && c > 0);
  const log = (message: string) => process.stdout.write(`[leaderboard] ${message}\n`);

  const root = await createTemporaryDataRoot("kindling-leaderboard-");
  // The load generator: bench/loadgen (grpc-go) when a Go toolchain runs here, unless BENCH_CLIENT=raw; else a lean
  // JavaScript client in a worker thread, which spends several times the CPU per call on the same two cores.
  const go = process.env.BENCH_CLIENT === "raw" ? null : goVersion();
  const loadgen = go !== null ? buildLoadgen(root) : undefined;
  const client = go !== null ? `bench/loadgen (grpc-go, ${go})` : "raw (JavaScript, worker thread)";
  log(`load generator: ${client}`);
  const pg = await startEmbeddedPostgres({ dataDir: join(root, "postgres"), port: 0, settings: { max_wal_size: "4GB", shared_buffers: "512MB", max_connections: "100" } });
  const config = loadConfig({ DATABASE_URL: pg.databaseUrl, PORT: "0", LOG_LEVEL: "warn", RATE_LIMIT_PER_SECOND: "0", DATABASE_POOL_SIZE: "16" });
  const kindling = await startKindling(config, createLogger("warn"), "api");
  const orm = await createOrm(pg.databaseUrl, 2);
  const pool = new pgDriver.Pool({ connectionString: pg.databaseUrl, max: 2 });
  try {
    const tenant = await createTenantWithAdminKey(orm.em.fork(), { id: randomUUID(), name: "leaderboard bench" });
    const transport = apiKeyTransport(kindling.apiUrl!, tenant);
    const defs = createClient(DefinitionService, transport);
    const { definition } = await defs.createDefinition({
      definition: {
        name: "Leaderboard bench",
        window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
        condition: { type: ConditionType.COUNT, min: 1 },
      },
    });
    const definitionId = definition!.id;
    await defs.publishDefinition({ definitionId });

    const loadStart = performance.now();
    await pool.query(
      `insert into member (id, tenant_id, external_id, display_name, leaderboard_opt_out, created_at, updated_at)
       select gen_random_uuid(), $1, 'm' || i, 'Player ' || i, i % 100 = 0, now(), now() from generate_series(1, $2) i`,
      [tenant.tenantId, members],
    );
    await pool.query(
      `insert into member_streak (id, tenant_id, member_id, definition_id, status, current_count, longest_count, count_reached_at, longest_reached_at,
                                  window_close_at, break_at, break_kind, leaderboard_opt_out, version, created_at, updated_at)
       select gen_random_uuid(), m.tenant_id, m.id, $2, 'IN_PROGRESS', m.n, m.n + (random() * 5)::int,
              now() - random() * interval '30 days', now() - random() * interval '60 days',
              date_trunc('day', now()) + interval '2 days', date_trunc('day', now()) + interval '2 days', 'BREAK', m.leaderboard_opt_out, 1, now(), now()
         -- A subquery in FROM draws per row (an uncorrelated LATERAL would be evaluated once, for every row).
         from (select m.*, 1 + floor(-ln(1 - random()) * 10)::int as n from member m where m.tenant_id = $1) m`,
      [tenant.tenantId, definitionId],
    );
    log(`bulk-loaded ${members} members and member streaks in ${((performance.now() - loadStart) / 1000).toFixed(1)}s`);
    await settleDatabase(pg.databaseUrl, ["member", "member_streak"]);

    const vars = { tenant: tenant.tenantId, definition: definitionId, members: String(members) };
    // The columns an entry shows (the API's statement reads the same ones).
    const topSql = `select s.current_count, s.count_reached_at, m.external_id, m.display_name
  from member_streak s join member m on m.id = s.member_id
 where s.tenant_id = :tenant::uuid and s.definition_id = :definition::uuid and s.current_count > 0 and not s.leaderboard_opt_out
 order by s.current_count desc, s.count_reached_at, s.id limit 100;
`;
    // The API's own top-100 statement (src/engine/history/leaderboard.ts: the same index range and rows),
    // its parameters written in: the statement's share of a call, apart from the API's.
    const { topSql: apiTopSqlOf } = await import("../src/engine/history/leaderboard.ts");
    const apiTopSql = `${apiTopSqlOf("CURRENT_COUNT", 100, false)
      .replaceAll("$1", ":tenant::uuid").replaceAll("$2", ":definition::uuid").replaceAll("$3", "now()")};\n`;
    // The plain rank: the member's row, then the rows ahead of it (a higher count; the same count reached earlier).
    const rankSql = `\\set m random(1, :members)
select (select count(*) from member_streak s where s.tenant_id = :tenant::uuid and s.definition_id = :definition::uuid
          and s.current_count > 0 and not s.leaderboard_opt_out and s.current_count > me.current_count)
     + (select count(*) from member_streak s where s.tenant_id = :tenant::uuid and s.definition_id = :definition::uuid
          and s.current_count > 0 and not s.leaderboard_opt_out and s.current_count = me.current_count
          and (s.count_reached_at, s.id) < (me.count_reached_at, me.id)) + 1 as rank
  from member m join member_streak me on me.member_id = m.id and me.tenant_id = m.tenant_id and me.definition_id = :definition::uuid
 where m.tenant_id = :tenant::uuid and m.external_id = 'm' || :m;
`;
    const job = { apiUrl: kindling.apiUrl!, keyId: tenant.keyId, secret: tenant.secret, definitionId, members, seconds };
    type Measured = LoadResult & { apiCpuMicrosPerCall: number | null };
    type Round = { concurrency: number; floor: Measured; top: { api: Measured; readsPerStatement: number; statementsPerSecond: number; statementMs: number; pgbench: { tps: number; latencyMs: number }; apiStatement: { tps: number; latencyMs: number }; ratio: number }; rank: { api: Measured; pgbench: { tps: number; latencyMs: number }; ratio: number } };
    const results: Round[] = [];
    for (const concurrency of levels) {
      for (let round = 1; round <= rounds; round++) {
        await settleDatabase(pg.databaseUrl, ["member", "member_streak"]);
        const profile = round === 1 ? profileDir : undefined;
        const topBefore = leaderboardTopTotals();
        const apiTop = await load({ ...job, kind: "top", concurrency }, loadgen, profile);
        const topAfter = leaderboardTopTotals();
        // Concurrent reads of one board share a statement (src/engine/history/leaderboard.ts): reads per statement.
        const readsPerStatement = Math.round(((topAfter.calls - topBefore.calls) / Math.max(1, topAfter.statements - topBefore.statements)) * 100) / 100;
        // How long the API waited for one board statement (its rows included), on average.
        const statementMs = Math.round(((topAfter.statementMillis - topBefore.statementMillis) / Math.max(1, topAfter.statements - topBefore.statements)) * 1000) / 1000;
        // Statements the API ran for those reads, per second of the phase, against pgbench's (each read costs a share of one).
        const statementsPerSecond = Math.round(((topAfter.statements - topBefore.statements) / (apiTop.requests / Math.max(1e-9, apiTop.perSecond))) * 100) / 100;
        await settleDatabase(pg.databaseUrl, ["member", "member_streak"]);
        const pgTop = runPgbench(pg.databaseUrl, topSql, vars, concurrency, seconds);
        await settleDatabase(pg.databaseUrl, ["member", "member_streak"]);
        const pgApiTop = runPgbench(pg.databaseUrl, apiTopSql, vars, concurrency, seconds);
        await settleDatabase(pg.databaseUrl, ["member", "member_streak"]);
        const apiRank = await load({ ...job, kind: "rank", concurrency }, loadgen, profile);
        await settleDatabase(pg.databaseUrl, ["member", "member_streak"]);
        const floor = await load({ ...job, kind: "floor", concurrency }, loadgen, profile);
        await settleDatabase(pg.databaseUrl, ["member", "member_streak"]);
        const pgRank = runPgbench(pg.databaseUrl, rankSql, vars, concurrency, seconds);
        const r2 = (n: number) => Math.round(n * 100) / 100;
        const r: Round = {
          concurrency,
          floor,
          top: { api: apiTop, readsPerStatement, statementsPerSecond, statementMs, pgbench: pgTop, apiStatement: { tps: pgApiTop.tps, latencyMs: pgApiTop.latencyMs }, ratio: r2(apiTop.perSecond / pgTop.tps) },
          rank: { api: apiRank, pgbench: pgRank, ratio: r2(apiRank.perSecond / pgRank.tps) },
        };
        results.push(r);
        log(`c=${concurrency} round ${round}: top-100 ${apiTop.perSecond}/s (p50 ${apiTop.p50Ms} ms, errors ${apiTop.errors}, ${readsPerStatement} reads a statement of ${statementMs} ms) vs pgbench ${pgTop.tps.toFixed(1)} tps → ${r.top.ratio} (the API's statement in pgbench: ${pgApiTop.tps.toFixed(1)} tps); ` +
          `rank ${apiRank.perSecond}/s (p50 ${apiRank.p50Ms} ms, errors ${apiRank.errors}) vs pgbench ${pgRank.tps.toFixed(1)} tps → ${r.rank.ratio}; ` +
          `one-row RPC floor ${floor.perSecond}/s`);
      }
    }
    const summary = levels.map((concurrency) => {
      const at = results.filter((r) => r.concurrency === concurrency);
      return {
        concurrency,
        topRatio: median(at.map((r) => r.top.ratio)),
        rankRatio: median(at.map((r) => r.rank.ratio)),
        topPerSecond: median(at.map((r) => r.top.api.perSecond)),
        topApiStatementTps: median(at.map((r) => r.top.apiStatement.tps)),
        topReadsPerStatement: median(at.map((r) => r.top.readsPerStatement)),
        topStatementsPerSecond: median(at.map((r) => r.top.statementsPerSecond)),
        topStatementMs: median(at.map((r) => r.top.statementMs)),
        loadgenCpuMicrosPerCall: at[0]!.top.api.clientCpuMicrosPerCall === undefined ? null : {
          top: median(at.map((r) => r.top.api.clientCpuMicrosPerCall!)),
          rank: median(at.map((r) => r.rank.api.clientCpuMicrosPerCall!)),
          oneRow: median(at.map((r) => r.floor.clientCpuMicrosPerCall!)),
        },
        rankPerSecond: median(at.map((r) => r.rank.api.perSecond)),
        oneRowRpcPerSecond: median(at.map((r) => r.floor.perSecond)),
        // The API's CPU per answered call (null with the worker-thread client, whose CPU is the same process's).
        apiCpuMicrosPerCall: at[0]!.top.api.apiCpuMicrosPerCall === null ? null : {
          top: median(at.map((r) => r.top.api.apiCpuMicrosPerCall!)),
          rank: median(at.map((r) => r.rank.api.apiCpuMicrosPerCall!)),
          oneRow: median(at.map((r) => r.floor.apiCpuMicrosPerCall!)),
        },
      };
    });
    for (const s of summary) {
      log(`median at ${s.concurrency} in flight: top-100 ratio ${s.topRatio} (${s.topPerSecond}/s, ${s.topReadsPerStatement} reads a statement, ${s.topStatementsPerSecond} statements/s of ${s.topStatementMs} ms; the API's statement in pgbench ${s.topApiStatementTps} tps), rank ratio ${s.rankRatio} (${s.rankPerSecond}/s), one-row RPC ${s.oneRowRpcPerSecond}/s` +
        (s.apiCpuMicrosPerCall ? `; API CPU per call: top ${s.apiCpuMicrosPerCall.top} µs, rank ${s.apiCpuMicrosPerCall.rank} µs, one-row ${s.apiCpuMicrosPerCall.oneRow} µs` : ""));
    }
    mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
    writeFileSync(
      new URL("./results/leaderboard.json", import.meta.url),
      `${JSON.stringify({ when: new Date().toISOString(), machine: { cpus: cpus().length, memoryGb: Math.round(totalmem() / 2 ** 30) }, client, loadgenThreads: go !== null ? LOADGEN_THREADS : null, members, seconds, rounds, summary, rounds_detail: results }, null, 2)}\n`,
    );
  } finally {
    await pool.end();
    await orm.close();
    await kindling.stop();
    await pg.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

// Last, so every declaration above is initialised: the worker thread runs the load, the main thread the benchmark.
if (!isMainThread) {
  parentPort!.postMessage(await runLoad(workerData as LoadJob));
} else {
  await main();
}
