// Wires the process together for each role and owns its lifecycle: resources are started in order and released
// in reverse on SIGINT/SIGTERM, so Ctrl-C leaves no embedded PostgreSQL or Temporal dev server behind. A signal
// during start-up aborts it: the step in progress is cut short (or released when it finishes) and everything
// already started is released the same way.
import { join } from "node:path";
import { apiEnvironment, demoEnabled, type KindlingConfig } from "./config/config.ts";
import type { Logger } from "./observability/logger.ts";
import { createOrm, migrate, type Orm } from "./db/orm.ts";
import { createPool } from "./db/pool.ts";
import { resolveDatabaseKind } from "./db/database-kind.ts";
import { startEmbeddedPostgres } from "./infra/embedded-postgres.ts";
import { listenForChanges } from "./engine/change-notices.ts";
import { createApiServer } from "./api/server.ts";
import { applyApiV8Settings } from "./api/v8-settings.ts";
import { createApi } from "./api/routes.ts";
import { API_CHILD_ENV, CHILD_READY, startApiProcesses } from "./api/api-processes.ts";
import { createCorsPolicy } from "./api/cors.ts";
import { createDemoAccess, ensureDemoTenant } from "./api/demo/demo-access.ts";
import { resolveTemporalCli } from "./infra/temporal-binaries.ts";
import { startTemporalDevServer } from "./infra/temporal-dev-server.ts";
import { startWorker } from "../workers/worker.ts";
import { Runtime } from "@temporalio/worker";

// `migrate-keep` migrates and keeps the embedded database running for a one-off command (create-tenant).
export type Role = "all" | "api" | "worker" | "migrate" | "migrate-keep";

type Cleanup = { name: string; run: () => Promise<void> };

export interface Started {
  readonly apiUrl?: string;
  readonly temporalUiUrl?: string;
  readonly databaseUrl: string;
  stop(): Promise<void>;
}

export interface StartOverrides {
  /** The API's clock. Tests move it forward to play days of a streak in seconds; production uses Date.now. */
  readonly now?: () => number;
  /** Aborting stops the start-up: startKindling releases what it started and rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

const ORM_CLOSE_LIMIT_MS = 3_000;

async function settleWithin(work: Promise<void>, limitMs: number, what: string, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(resolve, limitMs, "late");
  });
  try {
    if ((await Promise.race([work, late])) === "late") logger.warn({ ms: limitMs }, `${what} did not finish in time; going on`);
  } finally {
    clearTimeout(timer);
  }
}

// Awaits one start-up step unless the start-up is aborted first. On abort it rejects at once; a step that still
// completes later is released then, so nothing it made outlives the aborted start-up.
async function unlessAborted<T>(
  signal: AbortSignal | undefined,
  step: Promise<T>,
  release: (value: T) => Promise<void> = async () => {},
): Promise<T> {
  if (signal === undefined) return await step;
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([step, aborted]);
  } catch (error) {
    if (signal.aborted) step.then(release, () => undefined).catch(() => undefined);
    throw error;
  } finally {
    if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
  }
}

/** Applies the migrations over a connection of their own (DATABASE_DIRECT_URL), closed afterwards. */
async function migrateThrough(url: string): Promise<string[]> {
  const orm = await createOrm(url);
  try {
    return await migrate(orm);
  } finally {
    await orm.close();
  }
}

/** Starts every part the role needs. Exported for tests and the benchmark, which run the real stack in-process. */
export async function startKindling(config: KindlingConfig, logger: Logger, role: Role, overrides: StartOverrides = {}): Promise<Started> {
  const { signal } = overrides;
  const cleanups: Cleanup[] = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup.run();
      } catch (error) {
        logger.error({ err: error, component: cleanup.name }, "cleanup failed");
      }
    }
    cleanups.length = 0;
  };
  try {
    let databaseUrl = config.databaseUrl;
    if (databaseUrl === undefined) {
      const started = Date.now();
      const pg = await startEmbeddedPostgres({
        dataDir: join(config.dataDir, "postgres"),
        port: config.embeddedPostgresPort,
        logger: logger.child({ component: "embedded-postgres" }),
        ...(signal === undefined ? {} : { signal }),
      });
      cleanups.push({ name: "embedded-postgres", run: () => pg.stop() });
      databaseUrl = pg.databaseUrl;
      logger.info({ ms: Date.now() - started, reused: pg.reusedCluster, port: pg.port }, "embedded postgres ready");
    }
    const orm: Orm = await unlessAborted(signal, createOrm(databaseUrl), (late) => late.close());
    // Bounded: MikroORM's close can wait forever for a connection an interrupted operation never returns; the
    // database is stopped (or the process ends) right after, which closes it anyway.
    cleanups.push({ name: "database", run: () => settleWithin(orm.close(), ORM_CLOSE_LIMIT_MS, "closing the ORM", logger) });
    // Migrations and change notices need a session of their own: behind a transaction-pooling proxy they take
    // DATABASE_DIRECT_URL.
    const directUrl = config.databaseDirectUrl ?? databaseUrl;
    // Not cut short: closing the ORM under a migration that still holds its transaction would wait forever. The
    // migrations are brief; an abort is honoured right after them.
    const applied = directUrl === databaseUrl ? await migrate(orm) : await migrateThrough(directUrl);
    signal?.throwIfAborted();
    if (applied.length > 0) logger.info({ migrations: applied }, "migrations applied");
    if (role === "migrate") {
      await stop();
      return { databaseUrl, stop: async () => {} };
    }
    if (role === "migrate-keep") return { databaseUrl, stop };

    let apiUrl: string | undefined;
    if (role === "all" || role === "api") {
      applyApiV8Settings();
      const apiLogger = logger.child({ component: "api" });
      // application_name tells the API processes apart in pg_stat_activity (KINDLING_API_PROCESSES > 1).
      // A lost database connection (restart, failover) must not crash the process, idle or in use (see pool.ts).
      const pool = createPool({ connectionString: databaseUrl, max: config.databasePoolSize, application_name: `kindling-api:${process.pid}` }, apiLogger);
      cleanups.push({ name: "pool", run: () => pool.end() });
      const citus = (await resolveDatabaseKind(pool, config.databaseKind)) === "citus";
      const { services, interceptors, catalog, browser, revocations } = createApi({ orm, pool, logger: apiLogger, rateLimitPerSecond: config.rateLimitPerSecond, preparedStatements: config.preparedStatements, history: config.history, retentionDays: config.retentionDays, citus, ...(overrides.now ? { now: overrides.now } : {}) });
      // One connection hears every other process's changes to what this one keeps in memory.
      let noticePool = pool;
      if (directUrl !== databaseUrl) {
        noticePool = createPool({ connectionString: directUrl, max: 1, application_name: `kindling-api-notices:${process.pid}` }, apiLogger);
        const direct = noticePool;
        cleanups.push({ name: "notice-pool", run: () => direct.end() });
      }
      const unlisten = await unlessAborted(signal, listenForChanges(noticePool, [catalog.changes, browser.changes, revocations.changes]), (late) => late());
      cleanups.push({ name: "change-listener", run: unlisten });
      cleanups.push({ name: "browser-access", run: await unlessAborted(signal, browser.start(), (late) => late()) });
      const demo = demoEnabled(config, role);
      if (demo) await unlessAborted(signal, ensureDemoTenant(pool));
      const api = createApiServer({
        logger: apiLogger,
        services,
        interceptors,
        maxRequestBytes: config.maxRequestBytes,
        shutdownGraceMs: config.shutdownGraceMs,
        grpcUnaryPath: config.grpcUnaryPath,
        ignoreUnknownJsonFields: config.jsonIgnoreUnknownFields,
        cors: createCorsPolicy({ globalOrigins: config.corsOrigins, origins: browser, logger: apiLogger }),
        ...(demo ? { demo: createDemoAccess() } : {}),
        checkReady: async () => {
          await orm.em.getConnection().execute("select 1");
          return true;
        },
      });
      const shared = config.apiProcesses > 1 || config.reusePort;
      const listening = await unlessAborted(signal, api.listen(config.port, config.host, shared), () => api.close());
      cleanups.push({ name: "api", run: () => api.close() });
      apiUrl = listening.url;
      if (config.apiProcesses > 1) {
        const others = startApiProcesses({
          count: config.apiProcesses - 1,
          port: listening.port,
          databaseUrl,
          env: apiEnvironment({ ...config, demo }),
          logger: apiLogger,
          shutdownGraceMs: config.shutdownGraceMs,
        });
        // Before the await: a child that fails to start is stopped with the rest.
        cleanups.push({ name: "api-processes", run: () => others.stop() });
        await unlessAborted(signal, others.ready);
      }
    }
    let temporalUiUrl: string | undefined;
    if (role === "all" || role === "worker") {
      let temporalAddress = config.temporalAddress;
      if (temporalAddress === undefined) {
        const started = Date.now();
        const cli = await resolveTemporalCli({
          cacheRoot: config.cacheDir,
          logger: logger.child({ component: "temporal-binaries" }),
          ...(signal === undefined ? {} : { signal }),
        });
        const temporal = await startTemporalDevServer({
          executablePath: cli.path,
          dataDir: join(config.dataDir, "temporal"),
          port: config.embeddedTemporalPort,
          uiPort: config.embeddedTemporalUiPort,
          namespace: config.temporalNamespace,
          logger: logger.child({ component: "temporal" }),
          ...(signal === undefined ? {} : { signal }),
        });
        cleanups.push({ name: "temporal", run: () => temporal.stop() });
        temporalAddress = temporal.address;
        temporalUiUrl = temporal.uiUrl;
        logger.info({ ms: Date.now() - started, address: temporal.address, uiUrl: temporal.uiUrl }, "embedded temporal ready");
      }
      // Bundling the workflows takes seconds and cannot be interrupted: an abort does not wait for it.
      const worker = await unlessAborted(
        signal,
        startWorker({
          databaseUrl,
          temporalAddress,
          namespace: config.temporalNamespace,
          taskQueue: config.temporalTaskQueue,
          logger,
          shutdownGraceMs: config.shutdownGraceMs,
          retentionDays: config.retentionDays,
          databaseKind: config.databaseKind,
        }),
        (late) => late.stop(),
      );
      cleanups.push({ name: "worker", run: () => worker.stop() });
    }
    signal?.throwIfAborted();
    return { apiUrl, temporalUiUrl, databaseUrl, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

// After the first SIGINT/SIGTERM, how long the stop may take beyond the drain it allows (SHUTDOWN_GRACE_MS) before
// Kindling exits anyway; the services it started are then stopped by its exit hook and their watchdogs.
const STOP_MARGIN_MS = 5_000;

/** Runs a role until SIGINT/SIGTERM; returns the exit code. */
export async function runKindling(config: KindlingConfig, logger: Logger, role: Role): Promise<number> {
  // Signals are ours from the first moment: one during start-up aborts it, one after starts the drain, a second
  // one means "now". The Temporal runtime would otherwise take SIGINT/SIGTERM for itself and stop only the worker.
  const shutdown = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (shutdown.signal.aborted) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(130);
    }
    logger.info({ signal }, "shutting down");
    shutdown.abort(new Error(`${signal} received`));
    setTimeout(() => {
      logger.error({ ms: config.shutdownGraceMs + STOP_MARGIN_MS }, "did not stop in time; exiting");
      process.exit(1);
    }, config.shutdownGraceMs + STOP_MARGIN_MS).unref();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  if (role === "all" || role === "worker") Runtime.install({ shutdownSignals: [] });

  let started: Started;
  try {
    started = await startKindling(config, logger, role, { signal: shutdown.signal });
  } catch (error) {
    if (!shutdown.signal.aborted) throw error;
    logger.info("stopped during start-up");
    return exitWhenReleased(0);
  }
  if (role === "migrate") return 0;
  // A child API process (KINDLING_API_PROCESSES): it tells its first process it listens, and drains when that
  // process goes away (the IPC channel closes), instead of printing the banner.
  // (Only a process we spawned: other supervisors, e.g. PM2, also give their processes an IPC channel.)
  const parent = process.env[API_CHILD_ENV] === "1" && process.send !== undefined ? process : null;
  if (parent !== null) {
    parent.send?.(CHILD_READY);
    // The channel alone must not keep a drained child alive; "disconnect" still fires while the server runs.
    parent.channel?.unref();
  }
  const lines = ["", "Kindling is running."];
  if (started.apiUrl) lines.push(`  API (gRPC, gRPC-Web, Connect): ${started.apiUrl}`);
  if (started.apiUrl && demoEnabled(config, role)) lines.push(`  Demo page:                     ${started.apiUrl}/demo`);
  if (started.temporalUiUrl) lines.push(`  Temporal UI:                   ${started.temporalUiUrl}`);
  lines.push("  Press Ctrl-C to stop.", "");
  if (parent === null) process.stdout.write(`${lines.join("\n")}\n`);

  await new Promise<void>((resolve) => {
    if (shutdown.signal.aborted) resolve();
    shutdown.signal.addEventListener("abort", () => resolve(), { once: true });
    parent?.once("disconnect", () => {
      logger.info({ signal: "parent-exit" }, "shutting down");
      resolve();
    });
  });
  await started.stop();
  logger.info("stopped");
  return exitWhenReleased(0);
}

// Everything Kindling started is stopped by now. A start-up step that could not be interrupted (bundling the
// workflows) may still hold the event loop for seconds before it is released; it must not hold the process.
function exitWhenReleased(code: number): number {
  setTimeout(() => process.exit(code), 1_000).unref();
  return code;
}
