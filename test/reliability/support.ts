// Shared pieces of the reliability tests (issue 17): sizes (reduced by default, full with RELIABILITY_FULL=1,
// each overridable), figures written for bench/results/reliability.json, latency summaries, RSS of processes,
// Kindling API and worker processes started as `node src/main.ts api|worker`, and a PostgreSQL of a test's own.
import { spawn, type ChildProcess } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { inject } from "vitest";
import { familyOf } from "../support/kindling-process.ts";
import { findFreePort } from "../../src/infra/free-port.ts";
import { createTemporaryDataRoot, startEmbeddedPostgres, type EmbeddedPostgres } from "../../src/infra/embedded-postgres.ts";

export const FULL = process.env.RELIABILITY_FULL === "1";

/** A size: `reduced` in `npm test`, `full` under RELIABILITY_FULL=1, or the number in env `name`. */
export function size(name: string, reduced: number, full: number): number {
  const raw = process.env[name];
  if (raw !== undefined && raw !== "") {
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
    return value;
  }
  return FULL ? full : reduced;
}

/** Leaves this item's figures for the run's teardown (see global-setup.ts). */
export async function writeFigures(item: string, figures: Record<string, unknown>): Promise<void> {
  const body = { mode: FULL ? "full" : "reduced", at: new Date().toISOString(), ...figures };
  await writeFile(join(inject("reliabilityFigures"), `${item}.json`), `${JSON.stringify(body, null, 2)}\n`);
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export function summarise(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return { count: sorted.length, p50Ms: round(percentile(sorted, 50)), p99Ms: round(percentile(sorted, 99)), maxMs: round(sorted.at(-1) ?? Number.NaN) };
}

/** Resident set size of a process in bytes (from /proc), or undefined when it is gone. */
export async function rssBytes(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => undefined);
  const kb = status?.match(/^VmRSS:\s+(\d+) kB/m)?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}

/** Least-squares slope of y over x. */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(200);
  }
}

/**
 * Codes a client retries: the call may or may not have happened, and trying again is safe (idempotent key).
 * CANCELED is what connect-node's client reports for an HTTP/2 stream reset by a server that went away.
 */
export const RETRYABLE = new Set<Code>([Code.Unavailable, Code.DeadlineExceeded, Code.Aborted, Code.ResourceExhausted, Code.Unknown, Code.Canceled]);

export function codeOf(error: unknown): Code {
  return ConnectError.from(error).code;
}

const MAIN = fileURLToPath(new URL("../../src/main.ts", import.meta.url));

export interface KindlingChild {
  readonly role: "api" | "worker";
  readonly child: ChildProcess;
  readonly url: string | undefined;
  readonly output: string[];
  readonly exited: Promise<void>;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (drain), and wait for the exit. */
  stop(): Promise<void>;
}

export interface ChildOptions {
  readonly databaseUrl: string;
  readonly temporalAddress?: string;
  readonly temporalNamespace?: string;
  readonly taskQueue?: string;
  readonly port?: number;
  readonly env?: Record<string, string>;
}

/** `node src/main.ts api|worker` as a deployment runs it; resolves once it prints "Kindling is running." */
export async function startKindlingChild(role: "api" | "worker", options: ChildOptions): Promise<KindlingChild> {
  const port = options.port ?? (role === "api" ? await findFreePort() : 0);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: options.databaseUrl,
    PORT: String(port),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn",
    RATE_LIMIT_PER_SECOND: "0",
    ...(options.temporalAddress ? { TEMPORAL_ADDRESS: options.temporalAddress } : {}),
    ...(options.temporalNamespace ? { TEMPORAL_NAMESPACE: options.temporalNamespace } : {}),
    ...(options.taskQueue ? { TEMPORAL_TASK_QUEUE: options.taskQueue } : {}),
    ...options.env,
  };
  if (role === "api") delete env.TEMPORAL_ADDRESS;
  const child = spawn(process.execPath, [MAIN, role], { env, stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      output.push(chunk);
      if (output.length > 2_000) output.splice(0, 1_000);
    });
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 120_000;
  while (!output.join("").includes("Kindling is running.")) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`kindling ${role} exited during start-up:\n${output.join("").slice(-3_000)}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`kindling ${role} did not start:\n${output.join("").slice(-3_000)}`);
    }
    await sleep(50);
  }
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    role,
    child,
    url: role === "api" ? `http://127.0.0.1:${port}` : undefined,
    output,
    exited,
    async kill() {
      if (!gone()) child.kill("SIGKILL");
      await exited;
    },
    async stop() {
      if (!gone()) child.kill("SIGTERM");
      await exited;
    },
  };
}

export interface OwnPostgres {
  readonly root: string;
  current: EmbeddedPostgres;
  readonly port: number;
  /** SIGKILL to the postmaster's whole process group (every backend with it), as an OOM kill or a crash. */
  kill(): Promise<void>;
  /** Start again on the same data directory and port (crash recovery replays the WAL). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

// Commits are flushed to the WAL as they are acknowledged (synchronous_commit on): a killed process loses nothing
// that was acknowledged. fsync off only skips the disk flush, which a process kill (unlike a power cut) never needs.
const CRASH_SAFE_SETTINGS = { fsync: "off", max_connections: "200" } as const;

/** A PostgreSQL of a test's own, to kill without harming the run's shared one. */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const root = await createTemporaryDataRoot("kindling-reliability-pg-");
  const dataDir = join(root, "postgres");
  const port = await findFreePort();
  const first = await startEmbeddedPostgres({ dataDir, port, settings: CRASH_SAFE_SETTINGS });
  const own: OwnPostgres = {
    root,
    current: first,
    port,
    async kill() {
      const pidFile = await readFile(join(own.current.clusterDir, "postmaster.pid"), "utf8");
      const pid = Number(pidFile.split("\n")[0]);
      // The postmaster and every backend (each leads a session of its own), all at once.
      const family = [...(await familyOf([pid]))].map((entry) => Number(entry.split(":")[0]));
      for (const member of family) {
        try {
          process.kill(member, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      // Until every backend is gone, a new postmaster would refuse the shared memory still attached.
      const deadline = Date.now() + 10_000;
      const alive = (p: number) => {
        try {
          process.kill(p, 0);
          return true;
        } catch {
          return false;
        }
      };
      while (Date.now() < deadline && family.some(alive)) await sleep(20);
      await sleep(200);
    },
    async restart() {
      own.current = await startEmbeddedPostgres({ dataDir, port, settings: CRASH_SAFE_SETTINGS });
    },
    async stop() {
      await own.current.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
  return own;
}
