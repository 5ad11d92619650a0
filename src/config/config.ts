// The one typed loader for every Kindling setting. Each variable is parsed once at start-up; a bad value stops the
// process with a message that names the variable, so a mistyped deployment never starts half-configured.
import { homedir } from "node:os";
import { resolve } from "node:path";
import { parseBrowserOrigin } from "../domain/browser-origin.ts";

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

export interface KindlingConfig {
  /** PostgreSQL URL; undefined means "start the embedded PostgreSQL". */
  readonly databaseUrl: string | undefined;
  /**
   * A session-level connection to the same database, for migrations and change notices (LISTEN), when
   * `databaseUrl` goes through a transaction-pooling proxy such as PgBouncer; undefined means `databaseUrl`.
   */
  readonly databaseDirectUrl: string | undefined;
  /** Temporal frontend host:port; undefined means "start the local Temporal dev server". */
  readonly temporalAddress: string | undefined;
  readonly temporalNamespace: string;
  readonly temporalTaskQueue: string;
  /** Host the API listens on. */
  readonly host: string;
  /** Port serving gRPC, gRPC-Web and Connect (HTTP/2 and HTTP/1.1). */
  readonly port: number;
  /** Embedded PostgreSQL port (0 picks a free one). */
  readonly embeddedPostgresPort: number;
  /** Embedded Temporal frontend and Web UI ports (0 picks free ones). */
  readonly embeddedTemporalPort: number;
  readonly embeddedTemporalUiPort: number;
  readonly logLevel: LogLevel;
  /** Where embedded services keep their data between runs. */
  readonly dataDir: string;
  /** Where downloaded or built binaries (Temporal CLI, test server) are cached; outside the repository. */
  readonly cacheDir: string;
  /** Connections in the hot-path pool (recording activity, reading progress). */
  readonly databasePoolSize: number;
  /** Largest request body accepted, in bytes. */
  readonly maxRequestBytes: number;
  /** Requests per second allowed per credential before RESOURCE_EXHAUSTED (0 disables the limit). */
  readonly rateLimitPerSecond: number;
  /** Grace period for in-flight requests on SIGINT/SIGTERM, in milliseconds. */
  readonly shutdownGraceMs: number;
  /**
   * API processes serving `port` on this host (roles `all` and `api`): the process started by the command plus
   * `apiProcesses - 1` supervised children, sharing the port through SO_REUSEPORT. One Node process serves one
   * core's worth of requests; the API is stateless, so more processes scale it across cores.
   */
  readonly apiProcesses: number;
  /** Listen with SO_REUSEPORT so several API processes share `port` (set for the children of `apiProcesses`). */
  readonly reusePort: boolean;
  /**
   * Answer plain unary gRPC calls over HTTP/2 through connect's unary machinery directly (src/api/grpc-unary.ts);
   * false sends every call through connect-node's generic pipeline.
   */
  readonly grpcUnaryPath: boolean;
  /** Session-level prepared statements on the hot paths (false behind a transaction-pooling proxy such as PgBouncer). */
  readonly preparedStatements: boolean;
  /**
   * Days activities and events are kept for tenants without their own retention (KINDLING_RETENTION_DAYS); null
   * (0 or unset) keeps them forever. The worker's retention workflow applies it (src/engine/retention/retention.ts).
   */
  readonly retentionDays: number | null;
  /** Store window history when recording activity (KINDLING_HISTORY, default true). */
  readonly history: boolean;
  /** What DATABASE_URL points at (KINDLING_DATABASE_KIND): `auto` asks the database (src/db/database-kind.ts). */
  readonly databaseKind: "auto" | "postgres" | "citus";
  /**
   * Drop unknown fields of JSON requests instead of refusing them with INVALID_ARGUMENT (the ProtoJSON default),
   * for rolling upgrades where clients may already send fields this version does not know.
   */
  readonly jsonIgnoreUnknownFields: boolean;
  /** Browser origins allowed for every tenant (CORS), beside each tenant's own list. */
  readonly corsOrigins: readonly string[];
  /**
   * Serve the /demo page (a development aid that acts as the ADMIN of a demo tenant). Undefined: on only for the
   * embedded `npm start` (role `all` without DATABASE_URL); see demoEnabled.
   */
  readonly demo: boolean | undefined;
}

export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, problem: string) {
    super(`Invalid configuration: ${variable} ${problem}`);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function optionalString(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === "" ? undefined : raw.trim();
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = optionalString(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function flag(env: Env, name: string, unset = false): boolean {
  const raw = optionalString(env, name)?.toLowerCase();
  if (raw === undefined) return unset;
  if (raw === "0" || raw === "false") return false;
  if (raw === "1" || raw === "true") return true;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function databaseKind(env: Env, name: string): "auto" | "postgres" | "citus" {
  const raw = optionalString(env, name)?.toLowerCase() ?? "auto";
  if (raw === "auto" || raw === "postgres" || raw === "citus") return raw;
  throw new ConfigError(name, `must be auto, postgres or citus, got "${raw}"`);
}

function url(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const raw = optionalString(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be a URL like ${protocols[0]}//user:password@host:5432/db, got "${raw}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(" or ")}, got "${parsed.protocol}"`);
  }
  return raw;
}

function hostPort(env: Env, name: string): string | undefined {
  const raw = optionalString(env, name);
  if (raw === undefined) return undefined;
  if (!/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/.test(raw)) throw new ConfigError(name, `must be host:port, got "${raw}"`);
  return raw;
}

function origins(env: Env, name: string): string[] {
  const raw = optionalString(env, name);
  if (raw === undefined) return [];
  const list = raw.split(",").map((o) => o.trim()).filter((o) => o !== "");
  for (const origin of list) {
    const parsed = parseBrowserOrigin(origin);
    if (!parsed.ok) throw new ConfigError(name, `has an invalid origin: ${parsed.problem}`);
  }
  return [...new Set(list)];
}

function optionalFlag(env: Env, name: string): boolean | undefined {
  return optionalString(env, name) === undefined ? undefined : flag(env, name);
}

const logLevels: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

function logLevel(env: Env, name: string): LogLevel {
  const raw = optionalString(env, name)?.toLowerCase() ?? "info";
  if (!(logLevels as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${logLevels.join(", ")}, got "${raw}"`);
  }
  return raw as LogLevel;
}

function name(env: Env, variable: string, fallback: string): string {
  const raw = optionalString(env, variable) ?? fallback;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(raw)) throw new ConfigError(variable, `is not a valid name: "${raw}"`);
  return raw;
}

/** 0 or unset: keep forever; otherwise at least a week (the partitions are weeks; the stats re-read the last days). */
function retentionDays(env: Env, name: string): number | null {
  const days = integer(env, name, 0, 0, 36_500);
  if (days === 0) return null;
  if (days < 7) throw new ConfigError(name, `must be 0 (keep forever) or at least 7 days, got ${days}`);
  return days;
}

/** Reads the configuration from an environment (process.env by default). Throws ConfigError on the first bad value. */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): KindlingConfig {
  return {
    databaseUrl: url(env, "DATABASE_URL", ["postgres:", "postgresql:"]),
    databaseDirectUrl: url(env, "DATABASE_DIRECT_URL", ["postgres:", "postgresql:"]),
    temporalAddress: hostPort(env, "TEMPORAL_ADDRESS"),
    temporalNamespace: name(env, "TEMPORAL_NAMESPACE", "default"),
    temporalTaskQueue: name(env, "TEMPORAL_TASK_QUEUE", "kindling"),
    host: optionalString(env, "HOST") ?? "127.0.0.1",
    port: integer(env, "PORT", 8080, 0, 65535),
    embeddedPostgresPort: integer(env, "EMBEDDED_POSTGRES_PORT", 54329, 0, 65535),
    embeddedTemporalPort: integer(env, "EMBEDDED_TEMPORAL_PORT", 7233, 0, 65535),
    embeddedTemporalUiPort: integer(env, "EMBEDDED_TEMPORAL_UI_PORT", 8233, 0, 65535),
    logLevel: logLevel(env, "LOG_LEVEL"),
    dataDir: resolve(cwd, optionalString(env, "KINDLING_DATA_DIR") ?? ".kindling/data"),
    // Same rule as temporalCacheDir() in src/infra/temporal-binaries.ts, so CI's prefetch and `npm start` agree.
    cacheDir: resolve(optionalString(env, "KINDLING_CACHE_DIR") ?? resolve(optionalString(env, "XDG_CACHE_HOME") ?? resolve(homedir(), ".cache"), "kindling")),
    databasePoolSize: integer(env, "DATABASE_POOL_SIZE", 20, 1, 1000),
    maxRequestBytes: integer(env, "MAX_REQUEST_BYTES", 4 * 1024 * 1024, 1024, 512 * 1024 * 1024),
    rateLimitPerSecond: integer(env, "RATE_LIMIT_PER_SECOND", 1000, 0, 10_000_000),
    shutdownGraceMs: integer(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    apiProcesses: integer(env, "KINDLING_API_PROCESSES", 1, 1, 256),
    reusePort: flag(env, "KINDLING_API_REUSE_PORT"),
    grpcUnaryPath: flag(env, "KINDLING_GRPC_UNARY_PATH", true),
    preparedStatements: flag(env, "KINDLING_DB_PREPARED_STATEMENTS", true),
    history: flag(env, "KINDLING_HISTORY", true),
    databaseKind: databaseKind(env, "KINDLING_DATABASE_KIND"),
    jsonIgnoreUnknownFields: flag(env, "KINDLING_JSON_IGNORE_UNKNOWN_FIELDS"),
    retentionDays: retentionDays(env, "KINDLING_RETENTION_DAYS"),
    corsOrigins: origins(env, "KINDLING_CORS_ORIGINS"),
    demo: optionalFlag(env, "KINDLING_DEMO"),
  };
}

/** Whether /demo is served: as configured, else only for the embedded, all-in-one `npm start`. */
export function demoEnabled(config: KindlingConfig, role: string): boolean {
  return config.demo ?? (role === "all" && config.databaseUrl === undefined);
}

/** The settings an API process serves by, as the environment variables loadConfig reads them back from. */
export function apiEnvironment(config: KindlingConfig): Record<string, string> {
  return {
    HOST: config.host,
    LOG_LEVEL: config.logLevel,
    ...(config.databaseDirectUrl === undefined ? {} : { DATABASE_DIRECT_URL: config.databaseDirectUrl }),
    DATABASE_POOL_SIZE: String(config.databasePoolSize),
    MAX_REQUEST_BYTES: String(config.maxRequestBytes),
    RATE_LIMIT_PER_SECOND: String(config.rateLimitPerSecond),
    SHUTDOWN_GRACE_MS: String(config.shutdownGraceMs),
    KINDLING_GRPC_UNARY_PATH: String(config.grpcUnaryPath),
    KINDLING_DB_PREPARED_STATEMENTS: String(config.preparedStatements),
    KINDLING_HISTORY: String(config.history),
    KINDLING_DATABASE_KIND: config.databaseKind,
    KINDLING_RETENTION_DAYS: String(config.retentionDays ?? 0),
    KINDLING_JSON_IGNORE_UNKNOWN_FIELDS: String(config.jsonIgnoreUnknownFields),
    KINDLING_CORS_ORIGINS: config.corsOrigins.join(","),
    ...(config.demo === undefined ? {} : { KINDLING_DEMO: String(config.demo) }),
  };
}

/** The documented settings, for the README's configuration table and `--help`. */
export const configVariables = [
  ["DATABASE_URL", "PostgreSQL URL. Unset: an embedded PostgreSQL keeps its data in KINDLING_DATA_DIR."],
  ["DATABASE_DIRECT_URL", "A direct (session-level) URL of the same database for migrations and change notices (LISTEN), when DATABASE_URL goes through PgBouncer in transaction mode. Default: DATABASE_URL."],
  ["TEMPORAL_ADDRESS", "Temporal frontend host:port. Unset: a local Temporal dev server (with Web UI) is started."],
  ["TEMPORAL_NAMESPACE", "Temporal namespace (default `default`)."],
  ["TEMPORAL_TASK_QUEUE", "Task queue the worker polls (default `kindling`)."],
  ["HOST", "Interface the API binds (default 127.0.0.1; 0.0.0.0 in containers)."],
  ["PORT", "Port for gRPC, gRPC-Web and Connect (default 8080)."],
  ["EMBEDDED_POSTGRES_PORT", "Port of the embedded PostgreSQL (default 54329; 0 picks a free port)."],
  ["EMBEDDED_TEMPORAL_PORT", "Port of the embedded Temporal frontend (default 7233; 0 picks a free port)."],
  ["EMBEDDED_TEMPORAL_UI_PORT", "Port of the embedded Temporal Web UI (default 8233; 0 picks a free port)."],
  ["LOG_LEVEL", "trace, debug, info, warn, error, fatal or silent (default info)."],
  ["KINDLING_DATA_DIR", "Data of the embedded services (default ./.kindling/data)."],
  ["KINDLING_CACHE_DIR", "Cache for Temporal binaries (default $XDG_CACHE_HOME/kindling, else ~/.cache/kindling)."],
  ["DATABASE_POOL_SIZE", "Connections in the API's hot-path pool (default 20)."],
  ["MAX_REQUEST_BYTES", "Largest accepted request body (default 4 MiB)."],
  ["RATE_LIMIT_PER_SECOND", "Requests per second per credential before RESOURCE_EXHAUSTED (default 1000; 0 = off)."],
  ["SHUTDOWN_GRACE_MS", "How long SIGINT/SIGTERM waits for in-flight requests (default 10000)."],
  ["KINDLING_API_PROCESSES", "API processes sharing PORT on this host through SO_REUSEPORT (default 1; one per core scales the API across cores)."],
  ["KINDLING_GRPC_UNARY_PATH", "false: send unary gRPC calls through connect-node's generic pipeline instead of the lean unary path, and serve HTTP/2 with Node's own HTTP/2 instead of the API's framing (default true)."],
  ["KINDLING_API_REUSE_PORT", "true: listen with SO_REUSEPORT, to share PORT with other Kindling API processes (default false)."],
  ["KINDLING_DB_PREPARED_STATEMENTS", "false: no prepared statements on the recording and progress-read paths, for a PostgreSQL proxy that pools by transaction (PgBouncer's transaction mode); default true."],
  ["KINDLING_RETENTION_DAYS", "Days activities and events are kept (the worker's retention workflow drops older week partitions and deletes rows of tenants with a shorter retention of their own); 0 keeps them forever (default). At least 7; activities a member's open windows still need are kept regardless (docs/scaling.md)."],
  ["KINDLING_DATABASE_KIND", "citus: DATABASE_URL is a Citus coordinator (migrations distribute the tables by member; recording runs one member a transaction); postgres: plain PostgreSQL; auto (default): citus when the database has the citus extension."],
  ["KINDLING_HISTORY", "false: recording activity stores no window history (ListStreakWindows then misses the windows it finalised); a measuring aid for bench/, default true."],
  ["KINDLING_JSON_IGNORE_UNKNOWN_FIELDS", "true: drop unknown fields of JSON requests instead of refusing them with INVALID_ARGUMENT (default false), for rolling upgrades where clients already send newer fields."],
  ["KINDLING_CORS_ORIGINS", "Comma-separated browser origins (such as https://shop.example.com) allowed to call the API for every tenant, beside each tenant's own list (TenantService.SetBrowserOrigins). Default none."],
  ["KINDLING_DEMO", "true: serve the /demo page, whose panel acts as the ADMIN of a demo tenant (a development aid; never expose it). Default: on only for the embedded `npm start` (no DATABASE_URL), off otherwise."],
] as const;
