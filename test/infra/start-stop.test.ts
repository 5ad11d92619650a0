// `npm start` (node src/main.ts all) stopped the way a terminal stops it: SIGINT to its process group (Ctrl-C), or
// SIGTERM, at several moments of start-up and while running, and SIGKILL of Kindling itself. Every time, Kindling
// must be gone within 10 s, and so must everything it started: PostgreSQL (and its backends), the Temporal dev
// server, and the watchdogs beside them. Real processes, free ports and a throwaway data directory.
import { rm } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTemporaryDataRoot } from "../../src/infra/embedded-postgres.ts";
import {
  familyOf,
  kindlingEnv,
  killLeftovers,
  outputOf,
  servicePids,
  startKindlingProcess,
  stillAlive,
  waitForLine,
  type Run,
} from "../support/kindling-process.ts";

const STOP_WITHIN_MS = 10_000;

let dataRoot: string;
let run: Run | undefined;
beforeEach(async () => {
  dataRoot = await createTemporaryDataRoot("kindling-start-stop-");
});
afterEach(async () => {
  // Whatever a failed test left behind must not outlive it.
  await killLeftovers(run, dataRoot);
  run = undefined;
  await rm(dataRoot, { recursive: true, force: true });
});

async function start(): Promise<Run> {
  run = startKindlingProcess(await kindlingEnv(dataRoot));
  return run;
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
  // Kindling and everything it started so far: services, their watchdogs, PostgreSQL's backends, initdb.
  const family = await familyOf([...(await servicePids(dataRoot)), started.child.pid ?? -1]);
  const signalledAt = Date.now();
  process.kill(-(started.child.pid ?? 0), signal);
  const outcome = await Promise.race([
    started.exited.then(() => Date.now() - signalledAt),
    new Promise<"still running">((resolve) => setTimeout(resolve, STOP_WITHIN_MS, "still running")),
  ]);
  expect(outcome, outputOf(started).slice(-3_000)).not.toBe("still running");
  // Everything it started is gone within the same 10 s (a service may finish its own shutdown — PostgreSQL's
  // shutdown checkpoint — a moment after Kindling's exit on a loaded machine).
  const deadline = () => Math.max(0, signalledAt + STOP_WITHIN_MS - Date.now());
  expect(await eventually(() => stillAlive(family), deadline())).toEqual([]);
  expect(await eventually(async () => (await servicePids(dataRoot)).map(String), deadline())).toEqual([]);
}

describe("node src/main.ts all, stopped by a signal", () => {
  it("start-stop/sigint_while_postgres_initialises_stops_everything_within_10s", async () => {
    await stopAt(/initialising a new PostgreSQL cluster/, "SIGINT");
  });

  it("start-stop/sigint_while_migrations_run_stops_everything_within_10s", async () => {
    // The migrator prints this as the first migration starts: the signal lands mid-migration.
    await stopAt(/Processing '0001_initial'/, "SIGINT");
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
    const services = await servicePids(dataRoot);
    expect(services.length).toBeGreaterThanOrEqual(2);
    const family = await familyOf(services);
    process.kill(started.child.pid ?? 0, "SIGKILL");
    await started.exited;
    // The watchdogs give each service its graceful stop first, then SIGKILL after 10 s.
    expect(await eventually(() => stillAlive(family), 15_000)).toEqual([]);
  });
});
