// No Docker engine runs in CI, so the production shape is checked by reading docker-compose.yml: the services
// exist and are wired to each other the way the README describes.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }> | string[];
  ports?: string[];
}

const root = join(import.meta.dirname, "..", "..");
const compose = parse(readFileSync(join(root, "docker-compose.yml"), "utf8")) as { services: Record<string, Service> };
const services = compose.services;
const dependsOn = (s: Service) => (Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {}));

describe("docker-compose.yml", () => {
  it("has postgres, temporal with its UI, and the Kindling api and worker", () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(["postgres", "temporal", "temporal-ui", "api", "worker"]));
    expect(services["postgres"]?.image).toMatch(/^postgres:/);
    expect(services["temporal"]?.image).toMatch(/^temporalio\//);
    expect(services["temporal-ui"]?.image).toMatch(/^temporalio\/ui/);
  });

  it("runs temporal on the same postgres", () => {
    const t = services["temporal"]!;
    expect(t.environment?.["POSTGRES_SEEDS"]).toBe("postgres");
    expect(t.environment?.["DB"]).toMatch(/^postgres/);
    expect(dependsOn(t)).toContain("postgres");
    expect(services["temporal-ui"]?.environment?.["TEMPORAL_ADDRESS"]).toBe("temporal:7233");
  });

  it("builds api and worker from the repository's Dockerfile with the matching roles", () => {
    expect(existsSync(join(root, "Dockerfile"))).toBe(true);
    for (const [name, role] of [["api", "api"], ["worker", "worker"]] as const) {
      const s = services[name]!;
      expect(s.build).toBe(".");
      expect(s.command).toEqual(["node", "src/main.ts", role]);
      expect(s.environment?.["DATABASE_URL"]).toMatch(/^postgres:\/\/[^@]+@postgres:5432\//);
      expect(s.environment?.["TEMPORAL_ADDRESS"]).toBe("temporal:7233");
      expect(dependsOn(s).length).toBeGreaterThan(0);
    }
    expect(services["api"]?.environment?.["HOST"]).toBe("0.0.0.0");
    expect(services["api"]?.ports).toContain("8080:8080");
  });

  it("uses the same credentials in the database URL as postgres is created with", () => {
    const pg = services["postgres"]!.environment!;
    const url = new URL(services["api"]!.environment!["DATABASE_URL"]!);
    expect([url.username, url.password, url.pathname.slice(1)]).toEqual([pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"]]);
  });
});
