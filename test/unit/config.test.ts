import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/config.ts";

describe("loadConfig", () => {
  it("defaults/embedded_services_when_urls_are_unset", () => {
    const c = loadConfig({}, "/srv/app");
    expect(c.databaseUrl).toBeUndefined();
    expect(c.temporalAddress).toBeUndefined();
    expect(c.port).toBe(8080);
    expect(c.dataDir).toBe("/srv/app/.kindling/data");
    expect(c.temporalNamespace).toBe("default");
    expect(c.apiProcesses).toBe(1);
    expect(c.reusePort).toBe(false);
    expect(c.grpcUnaryPath).toBe(true);
  });

  it("api_processes/children_are_configured_like_the_first_process", async () => {
    const { apiEnvironment } = await import("../../src/config/config.ts");
    const first = loadConfig({ HOST: "0.0.0.0", LOG_LEVEL: "warn", DATABASE_POOL_SIZE: "7", MAX_REQUEST_BYTES: "2048", RATE_LIMIT_PER_SECOND: "9", SHUTDOWN_GRACE_MS: "1500", KINDLING_API_PROCESSES: "4", KINDLING_GRPC_UNARY_PATH: "false", KINDLING_DB_PREPARED_STATEMENTS: "false" }, "/");
    const child = loadConfig({ ...apiEnvironment(first), KINDLING_API_PROCESSES: "1", KINDLING_API_REUSE_PORT: "true" }, "/");
    const { apiProcesses: _a, reusePort: _r, ...served } = first;
    expect(child).toMatchObject(served);
    expect(child.reusePort).toBe(true);
    expect(child.grpcUnaryPath).toBe(false);
    expect(child.preparedStatements).toBe(false);
  });

  it("database_kind/auto_unless_named", () => {
    expect(loadConfig({}, "/").databaseKind).toBe("auto");
    expect(loadConfig({ KINDLING_DATABASE_KIND: "Citus" }, "/").databaseKind).toBe("citus");
    expect(loadConfig({ KINDLING_DATABASE_KIND: "postgres" }, "/").databaseKind).toBe("postgres");
  });

  it("accepts/explicit_values", () => {
    const c = loadConfig({ DATABASE_URL: "postgres://u:p@db:5432/k", TEMPORAL_ADDRESS: "temporal:7233", PORT: "9000", LOG_LEVEL: "DEBUG" }, "/");
    expect(c).toMatchObject({ databaseUrl: "postgres://u:p@db:5432/k", temporalAddress: "temporal:7233", port: 9000, logLevel: "debug" });
  });

  it.each([
    ["PORT", "eighty", /PORT must be a whole number/],
    ["PORT", "70000", /PORT must be between 0 and 65535/],
    ["DATABASE_URL", "mysql://x@y/z", /DATABASE_URL must use postgres:/],
    ["DATABASE_URL", "not a url", /DATABASE_URL must be a URL/],
    ["TEMPORAL_ADDRESS", "http://temporal", /TEMPORAL_ADDRESS must be host:port/],
    ["LOG_LEVEL", "loud", /LOG_LEVEL must be one of/],
    ["TEMPORAL_NAMESPACE", "bad namespace!", /TEMPORAL_NAMESPACE is not a valid name/],
    ["KINDLING_API_PROCESSES", "0", /KINDLING_API_PROCESSES must be between 1 and 256/],
    ["KINDLING_API_REUSE_PORT", "maybe", /KINDLING_API_REUSE_PORT must be true or false/],
    ["KINDLING_GRPC_UNARY_PATH", "sometimes", /KINDLING_GRPC_UNARY_PATH must be true or false/],
    ["KINDLING_DB_PREPARED_STATEMENTS", "auto", /KINDLING_DB_PREPARED_STATEMENTS must be true or false/],
    ["KINDLING_DATABASE_KIND", "mysql", /KINDLING_DATABASE_KIND must be auto, postgres or citus/],
  ])("rejects/%s=%s_naming_the_variable", (name, value, message) => {
    let thrown: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).variable).toBe(name);
    expect((thrown as ConfigError).message).toMatch(message);
  });
});

describe("cache directory", () => {
  it("cache/follows_kindling_cache_dir_then_xdg_then_home_like_the_temporal_resolver", async () => {
    const { temporalCacheDir } = await import("../../src/infra/temporal-binaries.ts");
    for (const env of [{ KINDLING_CACHE_DIR: "/opt/k" }, { XDG_CACHE_HOME: "/var/cache/x" }, {}]) {
      expect(`${loadConfig(env, "/").cacheDir}/temporal`).toBe(temporalCacheDir(env));
    }
  });
});
