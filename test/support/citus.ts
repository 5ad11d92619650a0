// A real 3-node Citus cluster for test/citus/ (issue 18): a coordinator and two workers, each a PostgreSQL 15 with
// Citus 13.2.2, started by ../shared/tools/citus/cluster.sh (built and installed by build.sh, which .ci/run calls).
// Without Citus installed the suite fails with the command that installs it: it never skips.
import { execFile } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { basename, join, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * The cluster scripts: CITUS_TOOLS, else shared/tools/citus beside the clone (as CI lays it out: ../shared) or beside
 * the folder of worktrees the clone is in (../../shared).
 */
export const CITUS_TOOLS = process.env.CITUS_TOOLS ?? (() => {
  const repo = resolve(import.meta.dirname, "..", "..");
  const candidates = [resolve(repo, "..", "shared", "tools", "citus"), resolve(repo, "..", "..", "shared", "tools", "citus")];
  return candidates.find((c) => existsSync(join(c, "cluster.sh"))) ?? candidates[0]!;
})();
const PG15 = "/usr/lib/postgresql/15";

export interface CitusCluster {
  /** The coordinator's URL (its `postgres` database, where the citus extension is created). */
  readonly url: string;
  /** The coordinator's port, then each worker's. */
  readonly coordinatorPort: number;
  /** Each worker's port. */
  readonly workerPorts: readonly number[];
  /** The postmaster's process id of the node on `port` (for CPU accounting in bench/). */
  postmasterPid(port: number): number;
  /** Restarts one worker's PostgreSQL (fast shutdown: open transactions abort, committed ones stay). */
  restartWorker(port: number): Promise<void>;
  stop(): Promise<void>;
}

/** Why Citus cannot run here, or null when it can. */
export function citusMissing(): string | null {
  const script = join(CITUS_TOOLS, "cluster.sh");
  if (!existsSync(script)) return `no ${script}: set CITUS_TOOLS to the folder of cluster.sh and build.sh`;
  if (!existsSync(join(PG15, "lib", "citus.so"))) return `Citus is not installed for PostgreSQL 15: run ${join(CITUS_TOOLS, "build.sh")} (as root; .ci/run does)`;
  return null;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once("error", () => done(false));
    server.listen(port, "127.0.0.1", () => server.close(() => done(true)));
  });
}

/** A run of `count` free consecutive ports (cluster.sh numbers the nodes from the first). */
async function freePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = 20_000 + Math.floor(Math.random() * 20_000);
    const all = await Promise.all(Array.from({ length: count }, (_, i) => portFree(first + i)));
    if (all.every(Boolean)) return first;
  }
  throw new Error("no free run of ports for a Citus cluster");
}

export async function startCitusCluster(workers = 2): Promise<CitusCluster> {
  const missing = citusMissing();
  if (missing) throw new Error(missing);
  const script = join(CITUS_TOOLS, "cluster.sh");
  // The postgres account runs the nodes, so the folder is outside any private home directory and enterable.
  const dir = mkdtempSync("/tmp/kindling-citus-");
  chmodSync(dir, 0o755);
  // CITUS_LOG_DIR: the nodes' server logs are kept there when the cluster stops, with lock waits and Citus's
  // distributed deadlock detection logged (a debugging aid for failures that happen only under load).
  const logDir = process.env.CITUS_LOG_DIR;
  let ports: number[] = [];
  const stop = async () => {
    await run(script, ["stop", dir]).catch(() => undefined);
    if (logDir) {
      mkdirSync(logDir, { recursive: true });
      for (const port of ports) {
        const log = join(dir, `n${port}.log`);
        if (existsSync(log)) copyFileSync(log, join(logDir, `${basename(dir)}-n${port}.log`));
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const first = await freePorts(workers + 1);
    ports = Array.from({ length: workers + 1 }, (_, i) => first + i);
    const { stdout } = await run(script, ["start", dir, String(first), String(workers)], { timeout: 120_000 });
    const url = stdout.trim().split("\n").pop()!;
    const workerPorts = Array.from({ length: workers }, (_, i) => first + 1 + i);
    if (logDir) {
      for (const port of ports) {
        await run("psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-X", "-q",
          "-c", "alter system set log_lock_waits = on", "-c", "alter system set citus.log_distributed_deadlock_detection = on", "-c", "select pg_reload_conf()"]);
      }
    }
    const asPostgres = (command: string) => (process.getuid?.() === 0 ? run("su", ["postgres", "-s", "/bin/bash", "-c", command]) : run("bash", ["-c", command]));
    return {
      url,
      coordinatorPort: first,
      workerPorts,
      postmasterPid: (port) => Number(readFileSync(join(dir, `n${port}`, "postmaster.pid"), "utf8").split("\n")[0]),
      async restartWorker(port) {
        await asPostgres(`${PG15}/bin/pg_ctl -D '${dir}/n${port}' -l '${dir}/n${port}.log' -m fast -w restart >/dev/null`);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
