// Wires the process together for each role and owns its lifecycle: resources are started in order and released
// in reverse on SIGINT/SIGTERM, so Ctrl-C leaves no embedded PostgreSQL or Temporal dev server behind.
import { join } from "node:path";
import { apiEnvironment, demoEnabled, type KindlingConfig } from "./config/config.ts";
import type { Logger } from "./observability/logger.ts";
import { createOrm, migrate, type Orm } from "./db/orm.ts";
import { startEmbeddedPostgres } from "./infra/embedded-postgres.ts";
import { createApiServer } from "./api/server.ts";
import { createApi } from "./api/routes.ts";
import { API_CHILD_ENV, CHILD_READY, startApiProcesses } from "./api/api-processes.ts";
import { createCorsPolicy } from "./api/cors.ts";
import { createDemoAccess, ensureDemoTenant } from "./api/demo/demo-access.ts";
import pg from "pg";
import { resolveTemporalCli } from "./infra/temporal-binaries.ts";
import { startTemporalDevServer } from "./infra/temporal-dev-server.ts";
import { startWorker } from "../workers/worker.ts";

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
}

/** Starts every part the role needs. Exported for tests and the benchmark, which run the real stack in-process. */
export async function startKindling(config: KindlingConfig, logger: Logger, role: Role, overrides: StartOverrides = {}): Promise<Started> {
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
      });
      cleanups.push({ name: "embedded-postgres", run: () => pg.stop() });
      databaseUrl = pg.databaseUrl;
      logger.info({ ms: Date.now() - started, reused: pg.reusedCluster, port: pg.port }, "embedded postgres ready");
    }
    const orm: Orm = await createOrm(databaseUrl);
    cleanups.push({ name: "database", run: () => orm.close() });
    const applied = await migrate(orm);
    if (applied.length > 0) logger.info({ migrations: applied }, "migrations applied");
    if (role === "migrate") {
      await stop();
      return { databaseUrl, stop: async () => {} };
    }
    if (role === "migrate-keep") return { databaseUrl, stop };

    let apiUrl: string | undefined;
    if (role === "all" || role === "api") {
      const apiLogger = logger.child({ component: "api" });
      // application_name tells the API processes apart in pg_stat_activity (KINDLING_API_PROCESSES > 1).
      const pool = new pg.Pool({ connectionString: databaseUrl, max: config.databasePoolSize, application_name: `kindling-api:${process.pid}` });
      // An idle client whose connection drops (database restart) must not crash the process; the pool replaces it.
      pool.on("error", (error) => apiLogger.warn({ error: error.message }, "idle database connection lost"));
      cleanups.push({ name: "pool", run: () => pool.end() });
      const { services, interceptors, catalog, browser } = createApi({ orm, pool, logger: apiLogger, rateLimitPerSecond: config.rateLimitPerSecond, preparedStatements: config.preparedStatements, ...(overrides.now ? { now: overrides.now } : {}) });
      const unlisten = await catalog.listen();
      cleanups.push({ name: "definition-listener", run: unlisten });
      cleanups.push({ name: "browser-access-listener", run: await browser.start() });
      const demo = demoEnabled(config, role);
      if (demo) await ensureDemoTenant(pool);
      const api = createApiServer({
        logger: apiLogger,
        services,
        interceptors,
        maxRequestBytes: config.maxRequestBytes,
        shutdownGraceMs: config.shutdownGraceMs,
        grpcUnaryPath: config.grpcUnaryPath,
        cors: createCorsPolicy({ globalOrigins: config.corsOrigins, origins: browser, logger: apiLogger }),
        ...(demo ? { demo: createDemoAccess() } : {}),
        checkReady: async () => {
          await orm.em.getConnection().execute("select 1");
          return true;
        },
      });
      const shared = config.apiProcesses > 1 || config.reusePort;
      const listening = await api.listen(config.port, config.host, shared);
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
        await others.ready;
      }
    }
    let temporalUiUrl: string | undefined;
    if (role === "all" || role === "worker") {
      let temporalAddress = config.temporalAddress;
      if (temporalAddress === undefined) {
        const started = Date.now();
        const cli = await resolveTemporalCli({ cacheRoot: config.cacheDir });
        const temporal = await startTemporalDevServer({
          executablePath: cli.path,
          dataDir: join(config.dataDir, "temporal"),
          port: config.embeddedTemporalPort,
          uiPort: config.embeddedTemporalUiPort,
          namespace: config.temporalNamespace,
          logger: logger.child({ component: "temporal" }),
        });
        cleanups.push({ name: "temporal", run: () => temporal.stop() });
        temporalAddress = temporal.address;
        temporalUiUrl = temporal.uiUrl;
        logger.info({ ms: Date.now() - started, address: temporal.address, uiUrl: temporal.uiUrl }, "embedded temporal ready");
      }
      const worker = await startWorker({
        databaseUrl,
        temporalAddress,
        namespace: config.temporalNamespace,
        taskQueue: config.temporalTaskQueue,
        logger,
        shutdownGraceMs: config.shutdownGraceMs,
      });
      cleanups.push({ name: "worker", run: () => worker.stop() });
    }
    return { apiUrl, temporalUiUrl, databaseUrl, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Runs a role until SIGINT/SIGTERM; returns the exit code. */
export async function runKindling(config: KindlingConfig, logger: Logger, role: Role): Promise<number> {
  const started = await startKindling(config, logger, role);
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

  const signal = await new Promise<NodeJS.Signals | "parent-exit">((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
    parent?.once("disconnect", () => resolve("parent-exit"));
  });
  logger.info({ signal }, "shutting down");
  // A second signal while draining means "now".
  const force = () => process.exit(130);
  process.once("SIGINT", force);
  process.once("SIGTERM", force);
  await started.stop();
  logger.info("stopped");
  return 0;
}
