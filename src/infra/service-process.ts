import { spawn } from "node:child_process";
import type { ServiceLogger } from "./service-logger.ts";

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcessOptions {
  // Names the service in log lines and errors ("postgres", "temporal").
  name: string;
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
  logger: ServiceLogger;
  // The service's own graceful-stop signal: PostgreSQL's "fast shutdown" is SIGINT, Temporal's is SIGTERM.
  stopSignal: NodeJS.Signals;
  stopTimeoutMs?: number;
}

export interface ServiceProcess {
  readonly pid: number;
  readonly exited: Promise<ProcessExit>;
  hasExited(): boolean;
  // The last lines the process printed, for error messages when it dies during start-up, after the first line that
  // reported an error when that one is no longer among them (a Go panic's stack trace pushes its message out).
  outputTail(): string;
  // Idempotent; resolves once the process (and anything left in its process group) is gone.
  stop(): Promise<ProcessExit>;
}

const TAIL_LINES = 40;

// Starts a long-running service binary in its own process group.
//
// Why a process group: a terminal's Ctrl-C goes to the whole foreground group, which would kill PostgreSQL and
// Temporal while the API is still draining requests and the worker is finishing tasks. Detached, they stop only
// when Kindling stops them, after the drain. The group also lets stop() clean up anything a launcher left behind.
//
// Why an 'exit' hook: if Kindling exits without calling stop() (uncaught error, process.exit), the service still
// gets its graceful-stop signal, so nothing is left running.
//
// Why a watchdog: a Kindling killed outright (SIGKILL, OOM killer) runs no hook, and a service in its own group
// would outlive it. The service is started through `/bin/sh`, which forks a watchdog holding a pipe whose other
// end only Kindling has, then `exec`s the real binary (so the pid Kindling signals is the service itself). When
// Kindling is gone the kernel closes that pipe; the watchdog reads end-of-file, sends the service its
// graceful-stop signal, and SIGKILLs the group if it is not gone within WATCHDOG_KILL_AFTER_S. When Kindling
// stops the service itself, stop() ends the group, watchdog included.
export function spawnServiceProcess(options: ServiceProcessOptions): ServiceProcess {
  const { name, logger, stopSignal } = options;
  const stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
  const child = spawn("/bin/sh", ["-c", WATCHDOG_SCRIPT, `kindling-${name}`, stopSignal.replace(/^SIG/, ""), options.command, ...options.args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
    ...(options.uid === undefined ? {} : { uid: options.uid }),
    ...(options.gid === undefined ? {} : { gid: options.gid }),
  });
  const pid = child.pid;
  // Kindling never writes to the watchdog's pipe; it only has to stay open while Kindling lives.
  child.stdin.on("error", () => undefined);
  const tail: string[] = [];
  // The first line that reported an error (kept for outputTail once the tail has moved past it).
  let firstError: string | undefined;
  let exit: ProcessExit | undefined;

  const exited = new Promise<ProcessExit>((resolve) => {
    child.once("exit", (code, signal) => {
      exit = { code, signal };
      process.removeListener("exit", onParentExit);
      // The service is gone (stopped or crashed): its watchdog, and anything else left in its group, go too.
      if (pid !== undefined) sendSignal(-pid, "SIGKILL");
      resolve(exit);
    });
    // A spawn failure (ENOENT, EACCES) emits 'error' and never 'exit'.
    child.once("error", (error) => {
      tail.push(`spawn failed: ${error.message}`);
      if (exit === undefined) {
        exit = { code: null, signal: null };
        process.removeListener("exit", onParentExit);
        resolve(exit);
      }
    });
  });

  const onParentExit = (): void => {
    if (exit !== undefined || pid === undefined) return;
    try {
      process.kill(pid, stopSignal);
    } catch {
      // Already gone.
    }
  };
  process.on("exit", onParentExit);

  for (const stream of [child.stdout, child.stderr]) {
    let pending = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) forwardLine(line);
    });
    stream.on("end", () => {
      if (pending !== "") forwardLine(pending);
      pending = "";
    });
  }

  function forwardLine(rawLine: string): void {
    const line = rawLine.trimEnd();
    if (line === "") return;
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    const fields = { service: name };
    const failing = /\b(FATAL|PANIC|ERROR)\b|"level":"(error|fatal|panic)"/i.test(line);
    if (failing || /^panic:|\bbind: /.test(line)) firstError ??= line;
    if (failing) logger.error(fields, line);
    else if (/\bWARN(ING)?\b|"level":"warn"/i.test(line)) logger.warn(fields, line);
    else logger.info(fields, line);
  }

  // Started services must not keep a finished Node process alive on their own; stop() re-references the child
  // so that awaiting it does keep the event loop running.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as { unref?: () => void }).unref?.();

  let stopping: Promise<ProcessExit> | undefined;
  async function stop(): Promise<ProcessExit> {
    stopping ??= (async () => {
      if (exit === undefined && pid !== undefined) {
        child.ref();
        sendSignal(pid, stopSignal);
        const timedOut = await Promise.race([
          exited.then(() => false),
          new Promise<boolean>((resolve) => setTimeout(resolve, stopTimeoutMs, true).unref()),
        ]);
        if (timedOut) {
          logger.warn({ service: name, pid }, `${name} did not stop within ${stopTimeoutMs} ms; killing it`);
          sendSignal(-pid, "SIGKILL");
        }
      }
      const result = await exited;
      // Anything the service forked into its group and left behind.
      if (pid !== undefined) sendSignal(-pid, "SIGKILL");
      return result;
    })();
    return await stopping;
  }

  return {
    pid: pid ?? -1,
    exited,
    hasExited: () => exit !== undefined,
    outputTail: () => (firstError === undefined || tail.includes(firstError) ? tail.join("\n") : `${firstError}\n…\n${tail.join("\n")}`),
    stop,
  };
}

// How long the watchdog waits for the graceful stop after Kindling died before it SIGKILLs the group.
const WATCHDOG_KILL_AFTER_S = 10;

// $0 names the process in `ps`; $1 is the stop signal's name; the rest is the service's command line.
// The watchdog is started through an intermediate subshell that the shell reaps before the exec, so it is not a
// child of the service: PostgreSQL's postmaster takes any child of its own that dies by a signal for a crashed
// backend. It stays in the service's process group and reads the pipe as fd 3 (a background list's stdin is
// /dev/null), with stdout/stderr closed, so it keeps neither the service's output pipes nor a terminal open; it
// ignores INT/TERM/HUP, so only end-of-file moves it. While it lives, the group and with it the service's pid stay
// reserved, so the pids it signals are never reused.
const WATCHDOG_SCRIPT = `
stop_signal=$1; shift
service=$$
exec 3<&0
( (
  trap '' INT TERM HUP
  while IFS= read -r _line <&3; do :; done
  kill -s "$stop_signal" "$service" 2>/dev/null
  waited=0
  while kill -0 "$service" 2>/dev/null && [ "$waited" -lt ${WATCHDOG_KILL_AFTER_S * 10} ]; do
    sleep 0.1; waited=$((waited + 1))
  done
  kill -s KILL -- "-$service" 2>/dev/null
) >/dev/null 2>&1 & )
exec "$@" </dev/null 3<&-
`;

function sendSignal(target: number, name: NodeJS.Signals): void {
  try {
    process.kill(target, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
