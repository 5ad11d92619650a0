// `node bench/retention-insert.ts`: what migration 0016 (week partitions, idempotency keys in key tables written
// by insert triggers) costs the recording path's statements, against the schema before it (0014). A cheap
// micro-run, not the full `npm run bench`: one embedded PostgreSQL, two databases (one migrated to 0014, one to
// the end), and the same work on each, alternated in rounds so drift hits both alike:
// - write: a transaction inserting RETENTION_BATCH activities and one event each, as the batched write does
//   (jsonb_to_recordset; 0014 with `on conflict … do nothing` , 0016 through the key triggers);
// - lookup: the duplicate check of RETENTION_BATCH stored keys, as the batch's classify statement does it (0014:
//   the activity's unique index; 0016: activity_key, then the activity by its primary key in one partition).
// Reports µs of wall time per activity (one client, synchronous_commit off so the commit's fsync does not drown the
// statement cost), median of the rounds, and PostgreSQL's own time for a lookup (EXPLAIN ANALYZE, median of 200). Written to bench/results/retention-insert.json.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { median } from "./stats.ts";
import { createTemporaryDataRoot, startEmbeddedPostgres } from "../src/infra/embedded-postgres.ts";
import { createOrm, migrate } from "../src/db/orm.ts";

const BATCH = Number(process.env.RETENTION_BATCH ?? 16);
const ROUNDS = Number(process.env.RETENTION_ROUNDS ?? 8);
const PER_ROUND = Number(process.env.RETENTION_TRANSACTIONS ?? 300);

interface Side {
  readonly name: "0014" | "0016";
  readonly pool: pg.Pool;
  readonly tenant: string;
  readonly members: string[];
  readonly keys: { member: string; uid: string }[];
}


async function prepare(adminUrl: string, name: Side["name"]): Promise<Side> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const database = `retention_${name}`;
  await admin.query(`create database ${database}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  const orm = await createOrm(url.toString(), 2);
  if (name === "0014") await orm.migrator.up({ to: "0014_team_streaks" });
  else await migrate(orm);
  await orm.close();
  const pool = new pg.Pool({ connectionString: url.toString(), max: 1 });
  // The server stops before the pool at the end of a run; an idle connection's error then is expected.
  pool.on("error", () => undefined);
  pool.on("connect", (c) => void c.query("set synchronous_commit = off"));
  const tenant = randomUUID();
  await pool.query("insert into tenant (id, name, created_at, updated_at) values ($1, 'bench', now(), now())", [tenant]);
  const members = Array.from({ length: 1000 }, () => randomUUID());
  await pool.query(
    "insert into member (id, tenant_id, external_id, created_at, updated_at) select m, $1, m::text, now(), now() from unnest($2::uuid[]) m",
    [tenant, members],
  );
  return { name, pool, tenant, members, keys: [] };
}

async function writeRound(side: Side, round: number): Promise<number> {
  const conflict = side.name === "0014";
  const started = performance.now();
  for (let t = 0; t < PER_ROUND; t++) {
    const rows = Array.from({ length: BATCH }, (_, n) => {
      const member = side.members[(t * BATCH + n) % side.members.length]!;
      const uid = `r${round}-t${t}-n${n}`;
      side.keys.push({ member, uid });
      return { id: randomUUID(), tenant_id: side.tenant, member_id: member, unique_identifier: uid, n };
    });
    const json = JSON.stringify(rows);
    await side.pool.query(
      `with a as (
         insert into activity (id, tenant_id, member_id, applied_definition_ids, occurred_at, value, unique_identifier, metadata, recorded_at)
         select x.id, x.tenant_id, x.member_id, '{}', now(), 1, x.unique_identifier, '{}', now()
           from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, member_id uuid, unique_identifier varchar, n bigint)
          order by n
         ${conflict ? "on conflict on constraint activity_idempotency_key do nothing" : ""}
         returning id
       ), e as (
         insert into streak_event (tenant_id, type, member_id, dedupe_key, payload, occurred_at, created_at)
         select x.tenant_id, 'streak.incremented', x.member_id, x.id::text || ':inc', '{"n":1}', now(), now()
           from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, member_id uuid, unique_identifier varchar, n bigint)
          order by n
         ${conflict ? "on conflict on constraint streak_event_dedupe do nothing" : ""}
       )
       select count(*) from a`,
      [json],
    );
  }
  return ((performance.now() - started) * 1000) / (PER_ROUND * BATCH);
}

const lookupSql = (side: Side) =>
  side.name === "0014"
      ? `select a.id from unnest($1::uuid[], $2::text[]) as k(member_id, uid)
           cross join lateral (select a.id from activity a where a.tenant_id = $3 and a.member_id = k.member_id and a.unique_identifier = k.uid offset 0) a`
      : `select a.id from unnest($1::uuid[], $2::text[]) as k(member_id, uid)
           cross join lateral (select a.id from activity_key ak join activity a on a.id = ak.activity_id and a.recorded_at = ak.recorded_at
                                 where ak.tenant_id = $3 and ak.member_id = k.member_id and ak.unique_identifier = k.uid offset 0) a`;

/**
 * PostgreSQL's own time for one lookup of BATCH stored keys (EXPLAIN ANALYZE, ms), median of `n`: execution, and
 * planning apart (the API prepares the statement once per connection, so it plans rarely).
 */
async function serverLookupMs(side: Side, n: number, stored = true): Promise<{ execution: number; planning: number }> {
  const times: number[] = [];
  const planning: number[] = [];
  for (let i = 0; i < n; i++) {
    // Stored keys (duplicates: the key, then the activity), or new ones (the common case: the key probe alone).
    const keys = Array.from({ length: BATCH }, () => {
      const k = side.keys[Math.floor(Math.random() * side.keys.length)]!;
      return stored ? k : { member: k.member, uid: `${k.uid}-new` };
    });
    const { rows } = await side.pool.query<{ "QUERY PLAN": [{ "Planning Time": number; "Execution Time": number }] }>(
      `explain (analyze, format json) ${lookupSql(side)}`,
      [keys.map((k) => k.member), keys.map((k) => k.uid), side.tenant],
    );
    const plan = rows[0]!["QUERY PLAN"][0];
    times.push(plan["Execution Time"]);
    planning.push(plan["Planning Time"]);
  }
  return { execution: median(times), planning: median(planning) };
}

async function lookupRound(side: Side): Promise<number> {
  const lookup = lookupSql(side);
  const started = performance.now();
  for (let t = 0; t < PER_ROUND; t++) {
    const keys = Array.from({ length: BATCH }, () => side.keys[Math.floor(Math.random() * side.keys.length)]!);
    const { rowCount } = await side.pool.query(lookup, [keys.map((k) => k.member), keys.map((k) => k.uid), side.tenant]);
    if (rowCount !== BATCH) throw new Error(`${side.name}: ${rowCount} of ${BATCH} keys found`);
  }
  return ((performance.now() - started) * 1000) / (PER_ROUND * BATCH);
}

async function main() {
  const root = await createTemporaryDataRoot("kindling-retention-bench-");
  const postgres = await startEmbeddedPostgres({ dataDir: join(root, "postgres"), port: 0 });
  const sides: Side[] = [];
  try {
    sides.push(await prepare(postgres.adminUrl, "0014"), await prepare(postgres.adminUrl, "0016"));
    const results: Record<string, { write: number[]; lookup: number[] }> = { "0014": { write: [], lookup: [] }, "0016": { write: [], lookup: [] } };
    // A warm-up round each, not counted.
    for (const side of sides) await writeRound(side, -1);
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
        results[side.name]!.write.push(await writeRound(side, round));
        results[side.name]!.lookup.push(await lookupRound(side));
      }
    }
    const server: Record<string, { execution: number; planning: number }> = {};
    const serverNew: Record<string, { execution: number; planning: number }> = {};
    for (const side of sides) server[side.name] = await serverLookupMs(side, 200);
    for (const side of sides) serverNew[side.name] = await serverLookupMs(side, 200, false);
    const summary = Object.fromEntries(
      Object.entries(results).map(([name, r]) => [
        name, {
          writeMicrosPerActivity: median(r.write), lookupMicrosPerKey: median(r.lookup),
          serverLookupExecutionMsPerBatch: server[name]!.execution, serverLookupPlanningMs: server[name]!.planning,
          serverNewKeysLookupExecutionMsPerBatch: serverNew[name]!.execution,
        },
      ]),
    );
    const report = {
      measuredAt: new Date().toISOString(), batch: BATCH, rounds: ROUNDS, transactionsPerRound: PER_ROUND, summary,
      writeRatio: summary["0016"]!.writeMicrosPerActivity / summary["0014"]!.writeMicrosPerActivity,
      lookupRatio: summary["0016"]!.lookupMicrosPerKey / summary["0014"]!.lookupMicrosPerKey,
      serverLookupExecutionRatio: summary["0016"]!.serverLookupExecutionMsPerBatch / summary["0014"]!.serverLookupExecutionMsPerBatch,
      serverNewKeysLookupExecutionRatio: summary["0016"]!.serverNewKeysLookupExecutionMsPerBatch / summary["0014"]!.serverNewKeysLookupExecutionMsPerBatch,
    };
    console.log(JSON.stringify(report, null, 2));
    mkdirSync(join(import.meta.dirname, "results"), { recursive: true });
    writeFileSync(join(import.meta.dirname, "results", "retention-insert.json"), `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    for (const side of sides) await side.pool.end();
    await postgres.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
