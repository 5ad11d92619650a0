// The compiled load generator (bench/loadgen, a grpc-go client) from the benchmarks' side: whether it can run here,
// building it, and running one load phase in it. bench/ingest.ts and bench/leaderboard.ts both drive it, so the
// client's own CPU per call is the same lean figure behind every ratio they report.
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import type { LoadResult } from "./load-worker.ts";

/** `go version`'s answer (for the report), or null when no Go toolchain runs here (the load generator needs one). */
export function goVersion(): string | null {
  const answer = spawnSync("go", ["version"], { encoding: "utf8" });
  return answer.status === 0 ? answer.stdout.trim() : null;
}

/** Builds bench/loadgen into `dir` (module downloads through the Go proxy on first use; go's build cache keeps it quick after). */
export function buildLoadgen(dir: string): string {
  const binary = join(dir, "kindling-loadgen");
  const built = spawnSync("go", ["build", "-o", binary, "."], { cwd: join(import.meta.dirname, "loadgen"), encoding: "utf8" });
  if (built.status !== 0) throw new Error(`building bench/loadgen failed (BENCH_CLIENT=raw runs without Go): ${built.error?.message ?? built.stderr}`);
  return binary;
}

/**
 * Threads the load generator runs Go code on (its `procs` flag, GOMAXPROCS; BENCH_LOADGEN_THREADS, 0 for Go's default
 * of one per core). One by default: it shares the cores with the server it measures, and with one per core Go's
 * scheduler keeps idle threads spinning in search of work between calls, CPU taken from the API and PostgreSQL.
 * Measured in bench/ on two cores, one thread cut the load generator's CPU per call by about a third and still kept
 * every call in flight (docs/scaling.md). Every bench that runs it records the setting beside its results.
 */
export const LOADGEN_THREADS = Number(process.env.BENCH_LOADGEN_THREADS ?? 1);

/**
 * Runs one load phase in the load generator, a separate process, spawned asynchronously (the API under test may
 * run in the caller's event loop). `flags` are its command-line flags without the dash (see bench/loadgen/main.go).
 */
export function runLoadgen(binary: string, flags: Readonly<Record<string, string | number>>): Promise<LoadResult> {
  const args = Object.entries({ procs: LOADGEN_THREADS, ...flags }).flatMap(([name, value]) => [`-${name}`, String(value)]);
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load generator exited with ${code}: ${out}`))));
  });
}
