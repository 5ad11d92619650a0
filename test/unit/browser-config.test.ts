// The browser settings of loadConfig: the global CORS origins and the /demo switch (issue 12).
import { describe, expect, it } from "vitest";
import { apiEnvironment, ConfigError, demoEnabled, loadConfig } from "../../src/config/config.ts";

describe("browser configuration", () => {
  it("cors/global_origins_are_parsed_trimmed_and_deduplicated", () => {
    const c = loadConfig({ KINDLING_CORS_ORIGINS: " https://shop.example.com, http://localhost:5173,https://shop.example.com " }, "/");
    expect(c.corsOrigins).toEqual(["https://shop.example.com", "http://localhost:5173"]);
    expect(loadConfig({}, "/").corsOrigins).toEqual([]);
  });

  it.each([
    ["https://shop.example.com/", /use "https:\/\/shop.example.com"/],
    ["*", /not an origin/],
    ["https://a.example, ftp://b.example", /http or https/],
  ])("cors/rejects_%s_naming_the_variable", (value, problem) => {
    let thrown: unknown;
    try {
      loadConfig({ KINDLING_CORS_ORIGINS: value }, "/");
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).variable).toBe("KINDLING_CORS_ORIGINS");
    expect((thrown as ConfigError).message).toMatch(problem);
  });

  it("demo/on_only_for_the_embedded_all_in_one_start_unless_set", () => {
    expect(demoEnabled(loadConfig({}, "/"), "all")).toBe(true);
    expect(demoEnabled(loadConfig({}, "/"), "api")).toBe(false);
    expect(demoEnabled(loadConfig({ DATABASE_URL: "postgres://u:p@db:5432/k" }, "/"), "all")).toBe(false);
    expect(demoEnabled(loadConfig({ KINDLING_DEMO: "false" }, "/"), "all")).toBe(false);
    expect(demoEnabled(loadConfig({ DATABASE_URL: "postgres://u:p@db:5432/k", KINDLING_DEMO: "true" }, "/"), "api")).toBe(true);
    expect(() => loadConfig({ KINDLING_DEMO: "yes" }, "/")).toThrow(/KINDLING_DEMO must be true or false/);
  });

  it("api_processes/children_get_the_origins_and_the_resolved_demo_switch", () => {
    const first = loadConfig({ KINDLING_CORS_ORIGINS: "https://shop.example.com" }, "/");
    const child = loadConfig({ ...apiEnvironment({ ...first, demo: true }), DATABASE_URL: "postgres://u:p@db:5432/k" }, "/");
    expect(child.corsOrigins).toEqual(["https://shop.example.com"]);
    expect(demoEnabled(child, "api")).toBe(true);
  });
});
