// `npm start` (node src/main.ts all) stopped the way a terminal stops it: SIGINT to its process group (Ctrl-C), or
// SIGTERM, at several moments of start-up and while running, and SIGKILL of Kindling itself. Every time, Kindling
// must be gone within 10 s, and so must everything it started: PostgreSQL (and its backends), the Temporal dev
// server, and the watchdogs beside them. Real processes, free ports and a throwaway data directory.
import { spawn, type ChildProcess } from "node:child_process";
import { readdir, readFile, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTemporaryDataRoot } from "../../src/infra/embedded-postgres.ts";
import { findFreePort } from "../../src/infra/free-port.ts";

const MAIN = fileURLToPath(new URL("../../src/main.ts", import.meta.url));
const STOP_WITHIN_MS = 10_000;

interface Run {
  child: ChildProcess;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let dataRoot: string;
let run: Run | undefined;
beforeEach(async () => {
  dataRoot = await createTemporaryDataRoot("kindling-start-stop-");
});
afterEach(async () => {
  // Whatever a failed test left behind must not outlive it.
  if (run?.child.pid !== undefined) {
    try {
      process.kill(-run.child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  for (const pid of await servicePids(dataRoot)) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  run = undefined;
  await rm(dataRoot, { recursive: true, force: true });
});

async function start(): Promise<Run> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(await findFreePort()),
    EMBEDDED_POSTGRES_PORT: "0",
    EMBEDDED_TEMPORAL_PORT: "0",
    EMBEDDED_TEMPORAL_UI_PORT: "0",
    KINDLING_DATA_DIR: dataRoot,
    LOG_LEVEL: "info",
  };
  delete env.DATABASE_URL;
  delete env.TEMPORAL_ADDRESS;
  // Its own process group, as a terminal's foreground job: signals go to the group, as Ctrl-C sends them.
  const child = spawn(process.execPath, [MAIN, "all"], { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => output.push(...chunk.split("\n")));
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  run = { child, output, exited };
  return run;
}

async function waitForLine(started: Run, pattern: RegExp, timeoutMs = 100_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!started.output.some((line) => pattern.test(line))) {
    if (started.child.exitCode !== null || started.child.signalCode !== null) {
      throw new Error(`kindling exited before ${pattern}:\n${started.output.slice(-30).join("\n")}`);
    }
    if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${started.output.slice(-30).join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// The services Kindling started for this data directory (PostgreSQL with -D under it, the dev server with its
// SQLite file under it). Each leads a session of its own; their sessions hold every process they started.
async function servicePids(root: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const commandLine = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (commandLine.includes(root)) pids.push(Number(entry));
  }
  return pids;
}

// Processes alive (not zombies) in any of these sessions.
async function aliveInSessions(sessions: readonly number[]): Promise<string[]> {
  const alive: string[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // pid (comm) state ppid pgrp session ...; comm may hold spaces, so split after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === undefined) continue;
    if (sessions.includes(Number(fields[3]))) {
      const commandLine = (await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).split("\0").join(" ");
      alive.push(`${entry}: ${commandLine.slice(0, 120)}`);
    }
  }
  return alive;
}

async function eventually(check: () => Promise<string[]>, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let left = await check();
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    left = await check();
  }
  return left;
}

async function stopAt(pattern: RegExp, signal: NodeJS.Signals): Promise<void> {
  const started = await start();
  await waitForLine(started, pattern);
  // The sessions of the services started so far (none yet at the earliest points).
  const sessions = [...(await servicePids(dataRoot)), started.child.pid ?? -1];
  const signalledAt = Date.now();
  process.kill(-(started.child.pid ?? 0), signal);
  const outcome = await Promise.race([
    started.exited.then(() => Date.now() - signalledAt),
    new Promise<"still running">((resolve) => setTimeout(resolve, STOP_WITHIN_MS, "still running")),
  ]);
  expect(outcome, started.output.slice(-20).join("\n")).not.toBe("still running");
  expect(await aliveInSessions(sessions)).toEqual([]);
  expect(await servicePids(dataRoot)).toEqual([]);
}

describe("node src/main.ts all, stopped by a signal", () => {
  it("start-stop/sigint_while_postgres_initialises_stops_everything_within_10s", async () => {
    await stopAt(/initialising a new PostgreSQL cluster/, "SIGINT");
  });

  it("start-stop/sigint_once_the_api_listens_stops_everything_within_10s", async () => {
    await stopAt(/"msg":"api listening"/, "SIGINT");
  });

  it("start-stop/sigint_right_after_embedded_temporal_ready_stops_everything_within_10s", async () => {
    await stopAt(/"msg":"embedded temporal ready"/, "SIGINT");
  });

  it("start-stop/sigterm_right_after_embedded_temporal_ready_stops_everything_within_10s", async () => {
    await stopAt(/"msg":"embedded temporal ready"/, "SIGTERM");
  });

  it("start-stop/sigint_while_running_stops_everything_within_10s", async () => {
    await stopAt(/Kindling is running\./, "SIGINT");
  });

  it("start-stop/sigkill_of_kindling_leaves_no_postgres_or_temporal_behind", async () => {
    const started = await start();
    await waitForLine(started, /Kindling is running\./);
    const sessions = await servicePids(dataRoot);
    expect(sessions.length).toBeGreaterThanOrEqual(2);
    process.kill(started.child.pid ?? 0, "SIGKILL");
    await started.exited;
    // The watchdogs give each service its graceful stop first, then SIGKILL after 10 s.
    expect(await eventually(() => aliveInSessions(sessions), 15_000)).toEqual([]);
  });
});
