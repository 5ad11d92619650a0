// What the benches share to measure PostgreSQL on its own, side by side with Kindling in the same run: pgbench
// running a script over the bench's database, and settling that database before each measured phase; and the
// API-key transport the benches call their API with.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import pgDriver from "pg";
import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

export interface PgbenchResult {
  readonly tps: number;
  readonly latencyMs: number;
  /** pgbench's own report, for the bench's log. */
  readonly raw: string;
}

/** Runs `script` with pgbench (`-M prepared`, `vars` as `-D name=value`) for `seconds` at `concurrency` clients. */
export function runPgbench(url: string, script: string, vars: Record<string, string>, concurrency: number, seconds: number): PgbenchResult {
  const dir = mkdtempSync(join(tmpdir(), "kindling-pgbench-"));
  const file = join(dir, "script.sql");
  writeFileSync(file, script);
  const u = new URL(url);
  const args = [
    "-n", "-h", u.hostname, "-p", u.port, "-U", decodeURIComponent(u.username), "-c", String(concurrency), "-j", String(Math.min(concurrency, cpus().length)),
    "-T", String(seconds), "-M", "prepared", "-f", file,
    ...Object.entries(vars).flatMap(([k, v]) => ["-D", `${k}=${v}`]),
    u.pathname.slice(1),
  ];
  const result = spawnSync("pgbench", args, { env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password) }, encoding: "utf8" });
  rmSync(dir, { recursive: true, force: true });
  if (result.error || result.status !== 0 || !/tps = /.test(result.stdout)) {
    throw new Error(`pgbench failed (install it with \`apt-get install postgresql-client\`): ${result.error?.message ?? result.stderr}${result.stdout}`);
  }
  const tps = Number(/tps = ([\d.]+)/.exec(result.stdout)?.[1] ?? NaN);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(result.stdout)?.[1] ?? NaN);
  return { tps, latencyMs, raw: result.stdout };
}

/**
 * The tables recording activity writes: settled (VACUUM ANALYZE, CHECKPOINT) before every measured phase of the
 * ingest benches, ours and pgbench's alike, so no phase pays for the previous one's cleanup (on two cores autovacuum
 * and the checkpointer take a good part of one, and would fall on whichever phase came after a write phase).
 */
export const INGEST_TABLES: readonly string[] = ["member", "member_streak", "member_streak_state", "activity", "reward", "streak_window"];

/**
 * Brings the database to rest before a measured phase: the dead row versions earlier phases left are vacuumed and
 * dirty pages checkpointed now, not by autovacuum and the checkpointer during the next phase (Kindling's and
 * pgbench's phases alike).
 */
export async function settleDatabase(url: string, tables: readonly string[]): Promise<void> {
  const client = new pgDriver.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`vacuum (analyze) ${tables.join(", ")}`);
    await client.query("checkpoint");
  } finally {
    await client.end();
  }
}

/** A gRPC transport to a benchmark's API that authenticates every call with the tenant's API key. */
export function apiKeyTransport(baseUrl: string, key: { readonly keyId: string; readonly secret: string }): Transport {
  return createGrpcTransport({
    baseUrl,
    interceptors: [(next) => (req) => (req.header.set("apikey", key.keyId), req.header.set("secretkey", key.secret), next(req))],
  });
}

/**
 * CPU time (µs) of the postmaster `pid` and its children so far, from /proc; null where /proc is not there. Children
 * that already exited count through the postmaster's cutime and cstime (it reaps them): Citus opens and closes
 * connections between nodes during a phase, and their backends' CPU would otherwise drop out of the total.
 */
export function postgresCpuMicros(pid: number): number | null {
  try {
    const tick = 1e6 / 100;
    let total = 0;
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      } catch {
        continue;
      }
      // Fields after the command (which may hold spaces), from field 3 on: ppid is the 2nd, utime and stime the 12th and 13th.
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(entry) !== pid && Number(rest[1]) !== pid) continue;
      total += (Number(rest[11]) + Number(rest[12])) * tick;
      if (Number(entry) === pid) total += (Number(rest[13]) + Number(rest[14])) * tick;
    }
    return total;
  } catch {
    return null;
  }
}
