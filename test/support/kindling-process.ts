// Runs `node src/main.ts …` as a user would, in a process group of its own (as a terminal's foreground job), with
// free ports and a throwaway data directory, and finds the services it started by that directory.
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { findFreePort } from "../../src/infra/free-port.ts";

const MAIN = fileURLToPath(new URL("../../src/main.ts", import.meta.url));

export interface Run {
  child: ChildProcess;
  // Raw chunks of stdout and stderr, in arrival order (join them: a line may span two chunks).
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

// The environment of a zero-config `npm start` on free ports, keeping its data in `dataRoot`.
export async function kindlingEnv(dataRoot: string): Promise<NodeJS.ProcessEnv> {
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
  return env;
}

export function startKindlingProcess(env: NodeJS.ProcessEnv, args: readonly string[] = ["all"]): Run {
  // Its own process group, as a terminal's foreground job: signals go to the group, as Ctrl-C sends them.
  const child = spawn(process.execPath, [MAIN, ...args], { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => output.push(chunk));
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, output, exited };
}

// SIGKILLs what a failed test may have left: the Kindling group and the services started for `dataRoot`.
export async function killLeftovers(run: Run | undefined, dataRoot: string): Promise<void> {
  const groups = [...(run?.child.pid === undefined ? [] : [run.child.pid]), ...(await servicePids(dataRoot))];
  for (const pid of groups) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

export function outputOf(started: Run): string {
  return started.output.join("");
}

export async function waitForLine(started: Run, pattern: RegExp, timeoutMs = 100_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(outputOf(started))) {
    if (started.child.exitCode !== null || started.child.signalCode !== null) {
      throw new Error(`kindling exited before ${pattern}:\n${outputOf(started).slice(-3_000)}`);
    }
    if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${outputOf(started).slice(-3_000)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// The services Kindling started for this data directory (PostgreSQL with -D under it, the dev server with its
// SQLite file under it). Each leads a session of its own.
export async function servicePids(root: string): Promise<number[]> {
  return processTable().filter((info) => info.commandLine.includes(root)).map((info) => info.pid);
}

interface ProcessInfo {
  pid: number;
  ppid: number;
  session: number;
  // Start time in clock ticks since boot: with the pid, names one process even if the pid is reused later.
  startTime: string;
  zombie: boolean;
  commandLine: string;
}

// Read synchronously, in one go: a few milliseconds, against up to a second when each of ~600 files was awaited on a
// loaded CI machine. A kill that follows a scan (test/reliability/support.ts) then lands while the calls in flight
// at its start still are: the reduced PostgreSQL-kill test once saw its 800 remaining activities all answered before
// its kill, and no outage at all.
function processTable(): ProcessInfo[] {
  const table: ProcessInfo[] = [];
  const read = (path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return "";
    }
  };
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = read(`/proc/${entry}/stat`);
    if (stat === "") continue;
    // pid (comm) state ppid pgrp session ... starttime(22nd); comm may hold spaces: split after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const commandLine = read(`/proc/${entry}/cmdline`).split("\0").join(" ").trim();
    table.push({
      pid: Number(entry),
      ppid: Number(fields[1]),
      session: Number(fields[3]),
      startTime: fields[19] ?? "",
      zombie: fields[0] === "Z",
      commandLine,
    });
  }
  return table;
}

// Every process that belongs to these roots right now: in their sessions, or descended from them (PostgreSQL's
// backends start sessions of their own). Identified by pid and start time.
export async function familyOf(roots: readonly number[]): Promise<Set<string>> {
  const table = processTable();
  const members = new Set<number>(roots);
  let grew = true;
  while (grew) {
    grew = false;
    for (const info of table) {
      if (members.has(info.pid)) continue;
      if (members.has(info.ppid) || roots.includes(info.session)) {
        members.add(info.pid);
        grew = true;
      }
    }
  }
  return new Set(table.filter((info) => members.has(info.pid)).map((info) => `${info.pid}:${info.startTime}`));
}

// The members of a family still alive (zombies excepted), with their command lines.
export async function stillAlive(family: ReadonlySet<string>): Promise<string[]> {
  return processTable()
    .filter((info) => !info.zombie && family.has(`${info.pid}:${info.startTime}`))
    .map((info) => `${info.pid}: ${info.commandLine.slice(0, 120)}`);
}

