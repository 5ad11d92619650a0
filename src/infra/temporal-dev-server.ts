// A local Temporal for `npm start` without TEMPORAL_ADDRESS and for the integration tests: the CLI's
// `temporal server start-dev`, with its Web UI, persisting to a SQLite file, Kindling's search attributes
// registered, and the process stopped (with its whole process group) when Kindling stops.
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Connection } from "@temporalio/client";
import { KINDLING_SEARCH_ATTRIBUTES } from "../workflows/search-attributes.ts";
import { findFreePort, holdsListeningPort, isPortFree, PortInUseError } from "./free-port.ts";
import { silentLogger, type ServiceLogger } from "./service-logger.ts";
import { spawnServiceProcess, type ServiceProcess } from "./service-process.ts";

export interface TemporalDevServerOptions {
  // The `temporal` CLI, usually from resolveTemporalCli().
  executablePath: string;
  // Where the SQLite state lives (`temporal.db`), so workflows and timers survive restarts. Omitted: in memory.
  dataDir?: string;
  // Frontend gRPC port; 0 (the default) picks a free one.
  port?: number;
  // Web UI port; 0 (the default) picks a free one. Ignored when `ui` is false.
  uiPort?: number;
  ui?: boolean;
  // Bind address for the frontend and the UI. Loopback by default: the dev server has no authentication.
  ip?: string;
  // Created at start-up (the `default` namespace always exists as well).
  namespace?: string;
  logger?: ServiceLogger;
  startTimeoutMs?: number;
  // Aborting stops a start-up in progress: the dev server it spawned is stopped and the call rejects.
  signal?: AbortSignal;
}

export interface TemporalDevServer {
  // host:port of the frontend, as TEMPORAL_ADDRESS expects it.
  address: string;
  namespace: string;
  // The Web UI, or undefined when started headless.
  uiUrl: string | undefined;
  // The SQLite file, or undefined when in memory.
  dbFilename: string | undefined;
  stop: () => Promise<void>;
}

export async function startTemporalDevServer(options: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const logger = options.logger ?? silentLogger;
  const ip = options.ip ?? "127.0.0.1";
  const namespace = options.namespace ?? "default";
  const ui = options.ui ?? true;
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  let dbFilename: string | undefined;
  if (options.dataDir !== undefined) {
    await mkdir(resolve(options.dataDir), { recursive: true });
    dbFilename = join(resolve(options.dataDir), "temporal.db");
  }

  const autoPorts = (options.port ?? 0) === 0 || (ui && (options.uiPort ?? 0) === 0);
  const attempts = autoPorts ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    const port = options.port || (await findFreePort(ip));
    const uiPort = ui ? options.uiPort || (await findFreePort(ip)) : undefined;
    // A port given explicitly and already taken fails here, naming it: whatever listens there is not ours.
    if (options.port && !(await isPortFree(port, ip))) throw portInUse("frontend", port, ip);
    if (ui && options.uiPort && !(await isPortFree(options.uiPort, ip))) throw portInUse("ui", options.uiPort, ip);
    const address = `${ip}:${port}`;
    const args = [
      "server",
      "start-dev",
      "--ip", ip,
      "--port", String(port),
      "--namespace", namespace,
      "--log-level", "warn",
      ...(uiPort === undefined ? ["--headless"] : ["--ui-port", String(uiPort)]),
      // Write-ahead logging: SQLite's default rollback journal syncs the journal and the file on every commit and
      // lets one writer block readers, which held the dev server to a few workflows a second on a busy machine —
      // after a 2-minute outage its backlog took far longer than the outage to work off. With WAL, commits append
      // to the log (synchronous=full still syncs it on each commit, so nothing acknowledged is lost to a crash).
      ...(dbFilename === undefined ? [] : ["--db-filename", dbFilename, "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=full"]),
      ...KINDLING_SEARCH_ATTRIBUTES.flatMap(({ name, type }) => ["--search-attribute", `${name}=${type}`]),
    ];
    const server = spawnServiceProcess({
      name: "temporal",
      command: options.executablePath,
      args,
      logger,
      stopSignal: "SIGTERM",
    });
    const uiUrl = uiPort === undefined ? undefined : `http://${ip}:${uiPort}`;
    try {
      await waitUntilServing({ address, namespace, uiUrl, server, timeoutMs: startTimeoutMs, signal: options.signal });
      // Ready means our own child answered: a server that could not bind its port may have exited only after
      // a stranger on that port answered the readiness checks.
      for (const [which, bound] of [["frontend", port], ["ui", uiPort]] as const) {
        if (bound === undefined) continue;
        if (server.hasExited() || (await holdsListeningPort(server.pid, bound)) === false) {
          throw portInUse(which, bound, ip);
        }
      }
    } catch (error) {
      await server.stop();
      if (options.signal?.aborted === true) throw error;
      let failure = error;
      const tail = server.outputTail();
      if (!(error instanceof PortInUseError) && BIND_FAILURE.test(tail)) {
        const failedPort = Number(/port (\d+)/i.exec(tail)?.[1] ?? port);
        failure = portInUse(failedPort === uiPort ? "ui" : "frontend", failedPort, ip);
      }
      // Ports picked automatically may have been taken between picking and binding: pick again.
      if (failure instanceof PortInUseError && attempt < attempts) continue;
      throw failure;
    }
    logger.info({ service: "temporal", address, namespace, uiUrl, dbFilename }, "Temporal dev server is ready");
    return {
      address,
      namespace,
      uiUrl,
      dbFilename,
      stop: async () => {
        await server.stop();
      },
    };
  }
}

// What the dev server prints when it cannot bind: "can't set frontend port 7233: listen tcp …: bind: address
// already in use".
const BIND_FAILURE = /can't set \w+ port|address already in use|bind:/i;

function portInUse(which: "frontend" | "ui", port: number, ip: string): PortInUseError {
  const variable = which === "frontend" ? "EMBEDDED_TEMPORAL_PORT" : "EMBEDDED_TEMPORAL_UI_PORT";
  return new PortInUseError(
    port,
    ip,
    `The embedded Temporal dev server (${which === "frontend" ? "frontend" : "Web UI"})`,
    `Stop that process, set ${variable} to another port (0 picks a free one)` +
      (which === "frontend" ? ", or set TEMPORAL_ADDRESS to use a Temporal server you run on purpose." : "."),
  );
}

interface WaitInput {
  address: string;
  namespace: string;
  uiUrl: string | undefined;
  server: ServiceProcess;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

// Ready means what Kindling needs, not just an open port: the namespace answers, the search attributes exist, and
// the UI serves its page (operators are told its URL the moment start-up finishes). `--search-attribute` registers
// only into a new SQLite file: one kept from an older Kindling lacks the attributes added since (KindlingSummary),
// so missing ones are added here.
async function waitUntilServing({ address, namespace, uiUrl, server, timeoutMs, signal }: WaitInput): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  const failIfExited = (): void => {
    signal?.throwIfAborted();
    if (server.hasExited() || BIND_FAILURE.test(server.outputTail())) {
      throw new Error(`Temporal dev server exited during start-up:\n${server.outputTail()}`);
    }
  };
  let frontendReady = false;
  while (Date.now() < deadline) {
    failIfExited();
    try {
      if (!frontendReady) {
        await checkFrontend(address, namespace);
        frontendReady = true;
      }
      if (uiUrl !== undefined) {
        const response = await fetch(uiUrl, { signal: AbortSignal.timeout(2_000) });
        await response.body?.cancel();
        if (!response.ok) throw new Error(`UI answered HTTP ${response.status}`);
      }
      return;
    } catch (error) {
      lastError = error;
      await new Promise((resolveSleep) => setTimeout(resolveSleep, 100));
    }
  }
  failIfExited();
  throw new Error(
    `Temporal dev server at ${address} was not ready within ${timeoutMs} ms (last error: ${String(lastError)}):\n` +
      server.outputTail(),
  );
}

// temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD (every Kindling attribute is a Keyword);
// the proto package that names it is not a direct dependency.
const INDEXED_VALUE_TYPE_KEYWORD = 2;

async function checkFrontend(address: string, namespace: string): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: 2_000 });
  try {
    await connection.workflowService.describeNamespace({ namespace });
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const missing = KINDLING_SEARCH_ATTRIBUTES.filter(({ name }) => customAttributes?.[name] === undefined);
    if (missing.length > 0) {
      // A failure here (one registered meanwhile by the server's own start-up) is only retried by the caller.
      await connection.operatorService.addSearchAttributes({
        namespace,
        searchAttributes: Object.fromEntries(missing.map(({ name }) => [name, INDEXED_VALUE_TYPE_KEYWORD])),
      });
      throw new Error(`search attributes not registered yet: ${missing.map(({ name }) => name).join(", ")}`);
    }
  } finally {
    await connection.close();
  }
}
