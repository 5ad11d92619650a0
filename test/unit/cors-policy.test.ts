// The CORS decisions of src/api/cors.ts on their own, and the warning a refused origin leaves in the log: once a
// minute per origin and reason, so a page calling in a loop cannot flood it.
import { describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import { createCorsPolicy } from "../../src/api/cors.ts";
import { createLogger } from "../../src/observability/logger.ts";

const TENANT = "0b6f3c1e-5b7a-4c39-9a51-3f1f6d2b8e01";
const OTHER = "9d2e7a40-1c3b-4f6e-8a2d-5e4c3b2a1f00";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: createLogger("info", sink) };
}

function setup() {
  let t = 1_000_000;
  const { lines, logger } = capture();
  const policy = createCorsPolicy({
    globalOrigins: ["https://everyone.example"],
    origins: {
      allowedForAnyTenant: (o) => o === "https://shop.example",
      allowedForTenant: (tenant, o) => tenant === TENANT && o === "https://shop.example",
    },
    logger,
    now: () => t,
  });
  return { policy, lines, advance: (ms: number) => (t += ms) };
}

const guestOf = (tenant: string) => new Headers({ "x-kindling-tenant": tenant });

describe("cors policy", () => {
  it("cors/grants_follow_the_tenant_named_by_the_credentials", () => {
    const { policy } = setup();
    expect(policy.preflight("https://shop.example")["access-control-allow-origin"]).toBe("https://shop.example");
    expect(policy.preflight("https://everyone.example")["access-control-allow-origin"]).toBe("https://everyone.example");
    expect(policy.actual("https://shop.example", guestOf(TENANT))["access-control-allow-origin"]).toBe("https://shop.example");
    expect(policy.actual("https://shop.example", guestOf(OTHER))["access-control-allow-origin"]).toBeUndefined();
    expect(policy.actual("https://everyone.example", guestOf(OTHER))["access-control-allow-origin"]).toBe("https://everyone.example");
    expect(policy.actual("https://everyone.example", new Headers({ authorization: "Bearer kk_abc.ks_secret" }))["access-control-allow-origin"]).toBeUndefined();
    expect(policy.actual("https://shop.example", new Headers({ authorization: "Bearer not-a-jwt" }))["access-control-allow-origin"]).toBeUndefined();
  });

  it("cors/a_refused_origin_is_logged_once_a_minute_per_origin_and_reason", () => {
    const { policy, lines, advance } = setup();
    for (let i = 0; i < 5; i++) policy.preflight("https://stranger.example");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, origin: "https://stranger.example", reason: "origin_not_allowed_for_any_tenant" });
    policy.actual("https://shop.example", guestOf(OTHER));
    policy.actual("https://shop.example", guestOf(OTHER));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ origin: "https://shop.example", reason: "origin_not_allowed_for_tenant", tenant_id: OTHER });
    policy.preflight("https://other-stranger.example");
    expect(lines).toHaveLength(3);
    advance(59_000);
    policy.preflight("https://stranger.example");
    expect(lines).toHaveLength(3);
    advance(1_000);
    policy.preflight("https://stranger.example");
    expect(lines).toHaveLength(4);
  });
});
