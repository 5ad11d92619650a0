// `npm run bench:import`: ImportActivities through the full gRPC stack against PostgreSQL loading the same rows on
// its own, in the same run, reported as ratios.
//
//   1. embedded PostgreSQL in a temporary directory (durable settings), the API on it, a tenant and a LIVE daily
//      definition with milestones at 7, 30 and 100;
//   2. Kindling: BENCH_IMPORT_ACTIVITIES historical check-ins (one a day, ending yesterday) spread evenly over
//      BENCH_IMPORT_MEMBERS members, imported in requests of 1000 (a member's history in consecutive requests, as
//      an export from another vendor would come), BENCH_IMPORT_CONCURRENCY requests in flight → activities/s. Each
//      request also recomputes every member streak it reaches from the member's whole history;
//   3. PostgreSQL alone, from a settled database: `COPY` of the same rows (psql \copy of a CSV) into a table like
//      `activity` (same columns, same indexes), and pgbench inserting the same shape of rows, 1000 per transaction
//      (one statement), at the same concurrency for BENCH_SECONDS;
//   4. the ratios, printed and written to bench/results/import.json.
// Environment knobs: BENCH_IMPORT_ACTIVITIES (default 100000; the full size is 1000000),
// BENCH_IMPORT_MEMBERS (default 1000; full size 10000), BENCH_IMPORT_CONCURRENCY (default 4), BENCH_IMPORT_POLICY
// (NONE, RECORD or GRANT; default RECORD), BENCH_SECONDS (pgbench, default 10).
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync, mkdirSync, createWriteStream } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import pgDriver from "pg";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { runPgbench, settleDatabase } from "./pgbench.ts";
import { startEmbeddedPostgres, createTemporaryDataRoot } from "../src/infra/embedded-postgres.ts";
import { loadConfig } from "../src/config/config.ts";
import { createLogger } from "../src/observability/logger.ts";
import { startKindling } from "../src/app.ts";
import { createOrm } from "../src/db/orm.ts";
import { createTenantWithAdminKey } from "../src/db/repositories/tenant.repository.ts";
import { DefinitionService } from "../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService, ImportMilestonePolicy } from "../src/gen/kindling/v1/activity_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../src/gen/kindling/v1/definition_pb.js";

const total = Number(process.env.BENCH_IMPORT_ACTIVITIES ?? 100_000);
const members = Number(process.env.BENCH_IMPORT_MEMBERS ?? 1_000);
const concurrency = Math.max(1, Number(process.env.BENCH_IMPORT_CONCURRENCY ?? 4));
const policyName = (process.env.BENCH_IMPORT_POLICY ?? "RECORD") as "NONE" | "RECORD" | "GRANT";
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const BATCH = 1000;
const DAY = 86_400_000;

const perMember = Math.ceil(total / members);
const midnight = Math.floor(Date.now() / DAY) * DAY;
/** The n-th activity: member n / perMember, one check-in a day ending yesterday. */
function activity(n: number) {
  const m = Math.floor(n / perMember);
  const day = perMember - (n % perMember);
  return { member: `member-${m}`, memberUuid: `00000000-0000-4000-8000-${String(m).padStart(12, "0")}`, at: midnight - day * DAY + 3_600_000, key: `import-${m}-${day}` };
}

const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;

async function main() {
  const root = await createTemporaryDataRoot("kindling-bench-import-");
  const pg = await startEmbeddedPostgres({ dataDir: join(root, "postgres"), port: 0, settings: { max_connections: "100" } });
  const config = loadConfig({ DATABASE_URL: pg.databaseUrl, PORT: "0", LOG_LEVEL: "warn", RATE_LIMIT_PER_SECOND: "0", DATABASE_POOL_SIZE: String(Math.max(8, concurrency * 2)) });
  const kindling = await startKindling(config, createLogger("warn"), "api");
  const orm = await createOrm(pg.databaseUrl, 2);
  const sql = new pgDriver.Client({ connectionString: pg.databaseUrl });
  await sql.connect();
  try {
    const tenant = await createTenantWithAdminKey(orm.em.fork(), { id: randomUUID(), name: "bench" });
    const transport = createGrpcTransport({
      baseUrl: kindling.apiUrl!,
      interceptors: [(next) => (req) => (req.header.set("apikey", tenant.keyId), req.header.set("secretkey", tenant.secret), next(req))],
    });
    const defs = createClient(DefinitionService, transport);
    const { definition } = await defs.createDefinition({
      definition: {
        name: "Bench daily check-in",
        window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
        condition: { type: ConditionType.COUNT, min: 1 },
        milestones: [7, 30, 100].map((threshold) => ({ threshold, reward: { kind: RewardKind.POINTS, points: threshold, fulfilmentMode: FulfilmentMode.CLAIM } })),
      },
    });
    const definitionId = definition!.id;
    await defs.publishDefinition({ definitionId });
    const activities = createClient(ActivityService, transport);
    const policy = { NONE: ImportMilestonePolicy.NONE, RECORD: ImportMilestonePolicy.RECORD, GRANT: ImportMilestonePolicy.GRANT }[policyName];

    // Kindling.
    console.log(`importing ${total} activities for ${members} members (${perMember} days each), ${concurrency} requests in flight, policy ${policyName}`);
    let next = 0;
    let imported = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (;;) {
          const from = next;
          if (from >= total) return;
          next += BATCH;
          const items = [];
          for (let n = from; n < Math.min(total, from + BATCH); n++) {
            const a = activity(n);
            items.push({ memberRef: { case: "memberExternalId" as const, value: a.member }, target: { case: "definitionId" as const, value: definitionId }, occurTime: timestampFromMs(a.at), uniqueIdentifier: a.key });
          }
          const res = await activities.importActivities({ activities: items, milestonePolicy: policy });
          imported += res.importedCount;
        }
      }),
    );
    const importSeconds = (performance.now() - started) / 1000;
    const importRate = Math.round(imported / importSeconds);
    if (imported !== total) throw new Error(`imported ${imported} of ${total}`);
    const check = await sql.query<{ n: number; longest: number }>("select count(*)::int as n, max(longest_count)::int as longest from member_streak where definition_id = $1", [definitionId]);
    console.log(`  Kindling: ${importRate} activities/s (${importSeconds.toFixed(1)} s; ${check.rows[0]!.n} member streaks, longest ${check.rows[0]!.longest})`);

    // PostgreSQL alone: the same rows into a table like activity.
    await sql.query("create table bench_copy (like activity including all)");
    await sql.query("create table bench_insert (like activity including all)");
    const csv = join(root, "activities.csv");
    const out = createWriteStream(csv);
    for (let n = 0; n < total; n++) {
      const a = activity(n);
      const line = `${randomUUID()},${tenant.tenantId},${a.memberUuid},${definitionId},{${definitionId}},${new Date(a.at).toISOString()},${a.key},{},${new Date().toISOString()},t\n`;
      if (!out.write(line)) await once(out, "drain");
    }
    out.end();
    await once(out, "finish");
    await settleDatabase(pg.databaseUrl, ["activity", "bench_copy", "bench_insert"]);
    const u = new URL(pg.databaseUrl);
    const copyStarted = performance.now();
    const copy = spawnSync(
      "psql",
      ["-h", u.hostname, "-p", u.port, "-U", decodeURIComponent(u.username), "-d", u.pathname.slice(1), "-v", "ON_ERROR_STOP=1", "-c",
        `\\copy bench_copy (id, tenant_id, member_id, definition_id, applied_definition_ids, occurred_at, unique_identifier, metadata, recorded_at, imported) from '${csv}' with (format csv)`],
      { env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password) }, encoding: "utf8" },
    );
    const copySeconds = (performance.now() - copyStarted) / 1000;
    if (copy.status !== 0) throw new Error(`psql \\copy failed: ${copy.stderr}`);
    const copyRate = Math.round(total / copySeconds);
    console.log(`  COPY: ${copyRate} rows/s (${copySeconds.toFixed(1)} s)`);

    await settleDatabase(pg.databaseUrl, ["bench_copy", "bench_insert"]);
    const insertSql = `\\set m random(0, ${members - 1})
insert into bench_insert (id, tenant_id, member_id, definition_id, applied_definition_ids, occurred_at, unique_identifier, metadata, recorded_at, imported)
select gen_random_uuid(), :tenant::uuid, ('00000000-0000-4000-8000-' || lpad(:m::text, 12, '0'))::uuid, :def::uuid, array[:def::text],
       now() - make_interval(days => g), 'pgbench-' || :client_id || '-' || :m || '-' || g || '-' || random(), '{}'::jsonb, now(), true
  from generate_series(1, ${BATCH}) g;
`;
    const pgb = runPgbench(pg.databaseUrl, insertSql, { tenant: tenant.tenantId, def: definitionId }, concurrency, seconds);
    const insertRate = Math.round(pgb.tps * BATCH);
    console.log(`  pgbench insert (${BATCH} rows a transaction, ${concurrency} clients): ${insertRate} rows/s`);

    const result = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, node: process.version },
      settings: { activities: total, members, perMember, concurrency, policy: policyName, batch: BATCH, pgbenchSeconds: seconds },
      kindling: { activitiesPerSecond: importRate, seconds: Math.round(importSeconds * 10) / 10 },
      postgres: { copyRowsPerSecond: copyRate, pgbenchInsertRowsPerSecond: insertRate },
      ratios: { importVsCopy: ratio(importRate, copyRate), importVsPgbenchInsert: ratio(importRate, insertRate) },
    };
    mkdirSync(join(import.meta.dirname, "results"), { recursive: true });
    writeFileSync(join(import.meta.dirname, "results", "import.json"), `${JSON.stringify(result, null, 2)}\n`);
    console.log(`ratios: import vs COPY ${result.ratios.importVsCopy}×, import vs pgbench insert ${result.ratios.importVsPgbenchInsert}×`);
    console.log("written to bench/results/import.json");
  } finally {
    await sql.end();
    await orm.close();
    await kindling.stop();
    await pg.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
