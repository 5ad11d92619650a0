// More than one API process on one host (KINDLING_API_PROCESSES): one Node process answers one core's worth of
// requests (its event loop does the HTTP/2 framing, protobuf and validation of every call), so scaling the API
// across cores means more processes. The API is stateless: every process has its own pool, definition catalog
// (invalidated across processes by LISTEN/NOTIFY) and interceptors, and they share the port through
// SO_REUSEPORT, the kernel spreading new connections over them. No process relays another's traffic, unlike a
// node:cluster primary, which would put every connection through one more event loop.
//
// The process started by the command is the first API process; it spawns the others as `main.ts api` children
// on the port it bound, with the database it resolved, restarts one that crashes (after a pause, so a child that
// cannot start does not spin; a child that drained on SIGINT/SIGTERM is not restarted), and stops them all,
// draining, when it stops. Per-process state is documented in the README: the rate limit applies per process and
// the API key cache is per process.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Logger } from "../observability/logger.ts";

/** What a child API process sends over its IPC channel once it is listening. */
export const CHILD_READY = "kindling-api-ready";
/** Set in a child's environment: the process was spawned by startApiProcesses and owes it the IPC protocol. */
export const API_CHILD_ENV = "KINDLING_API_CHILD";

export interface ApiProcessesOptions {
  /** Children to run (KINDLING_API_PROCESSES - 1). */
  readonly count: number;
  /** The port the first process bound with SO_REUSEPORT; children bind it too. */
  readonly port: number;
  readonly databaseUrl: string;
  /** The first process's API settings as environment variables, so every process serves the same way. */
  readonly env: Readonly<Record<string, string>>;
  readonly logger: Logger;
  /** Children get this long to drain on stop before SIGKILL (their own grace plus a margin). */
  readonly shutdownGraceMs: number;
  /** Pause before a child that exited is started again. */
  readonly restartDelayMs?: number;
}

export interface ApiProcesses {
  /** Resolves once every child has said it is listening. */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const READY_TIMEOUT_MS = 60_000;

/** A child that stopped because it was asked to (its own drain after SIGINT/SIGTERM, e.g. Ctrl-C on the group). */
function stoppedOnRequest(code: number | null, signal: NodeJS.Signals | null): boolean {
  return code === 0 || signal === "SIGINT" || signal === "SIGTERM";
}

export function startApiProcesses(options: ApiProcessesOptions): ApiProcesses {
  const { logger } = options;
  const children = new Map<number, ChildProcess>();
  let stopping = false;
  const readiness: Promise<void>[] = [];

  const spawnChild = (slot: number): Promise<void> => {
    // An IPC channel: the child reports "listening" over it (CHILD_READY), and treats its closing as the death of
    // this process and drains itself (runKindling), so children never outlive a first process that crashed.
    const child = spawn(process.execPath, [...process.execArgv, MAIN, "api"], {
      env: {
        ...process.env,
        ...options.env,
        DATABASE_URL: options.databaseUrl,
        PORT: String(options.port),
        KINDLING_API_PROCESSES: "1",
        KINDLING_API_REUSE_PORT: "true",
        [API_CHILD_ENV]: "1",
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    children.set(slot, child);
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`API process ${slot} was not listening after ${READY_TIMEOUT_MS} ms`));
        child.kill("SIGKILL");
      }, READY_TIMEOUT_MS);
      timer.unref();
      child.on("message", (message: unknown) => {
        if (message === CHILD_READY) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`API process ${slot} exited before it was ready (code ${code}, signal ${signal})`));
      });
    });
    // A spawn that fails (EAGAIN, EMFILE) emits "error" and may never emit "exit": treat it as an exit.
    child.once("error", (error) => {
      logger.error({ slot, err: error }, "API process could not be started");
      if (child.exitCode === null && child.signalCode === null) child.emit("exit", null, null);
    });
    child.once("exit", (code, signal) => {
      if (children.get(slot) === child) children.delete(slot);
      if (stopping || stoppedOnRequest(code, signal)) return;
      logger.error({ slot, pid: child.pid, code, signal }, "API process exited; restarting it");
      const timer = setTimeout(() => {
        if (!stopping) spawnChild(slot).catch((error: unknown) => logger.error({ slot, err: error }, "API process failed to start"));
      }, options.restartDelayMs ?? 1_000);
      timer.unref();
    });
    return ready;
  };

  for (let slot = 1; slot <= options.count; slot++) readiness.push(spawnChild(slot));

  return {
    ready: Promise.all(readiness).then(() => logger.info({ processes: options.count + 1, port: options.port }, "API processes listening")),
    async stop() {
      stopping = true;
      await Promise.all(
        [...children.values()].map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              const kill = setTimeout(() => child.kill("SIGKILL"), options.shutdownGraceMs + 5_000);
              child.once("exit", () => {
                clearTimeout(kill);
                resolve();
              });
              child.kill("SIGTERM");
            }),
        ),
      );
      children.clear();
    },
  };
}
