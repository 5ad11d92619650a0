// Browsers on a brand's own page (issue 12), server side, end to end over HTTP as a browser sends it: CORS grants
// per tenant (preflight, actual GET and POST, another tenant's origin, API keys), the ADMIN-only origin settings,
// member sessions minted by Kindling (own member only, scoped to a definition, expiry, key rotation, on a second
// API process too), the widget's script at /widget/ and the /demo switch.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { Code } from "@connectrpc/connect";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { RewardService } from "../../src/gen/kindling/v1/reward_service_pb.js";
import { EventService } from "../../src/gen/kindling/v1/event_service_pb.js";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { ApiKeyRole, JwtAlgorithm } from "../../src/gen/kindling/v1/tenant_pb.js";
import { loadConfig } from "../../src/config/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { startKindling, type Started } from "../../src/app.ts";
import { createApiServer, type ApiServer } from "../../src/api/server.ts";
import { DEMO_TENANT_ID } from "../../src/api/demo/demo-access.ts";
import { startTestApi, type Credentials, type TestApi } from "../support/api.ts";
import { activityOnDay, createLiveDefinition, expectFailure } from "../support/fixtures.ts";

const SHOP_A = "https://shop-a.example";
const SHOP_B = "https://shop-b.example";
const GLOBAL = "https://everyone.example";
const STRANGER = "https://stranger.example";

// Real time, moved forward only by the expiry test.
let clockOffset = 0;
const clock = { now: () => Date.now() + clockOffset, advance: (ms: number) => (clockOffset += ms) };
let api: TestApi;
let tenantB: Credentials;
let serviceKey: Record<string, string>;
let defOne: string;
let defTwo: string;
let defB: string;

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function mint(member: string, definitionId = "", auth: Credentials | Record<string, string> = serviceKey) {
  return (await api.client(TenantService, auth).createMemberSession({ memberExternalId: member, definitionId })).token;
}

/** A Connect GET, as connect-web sends a NO_SIDE_EFFECTS read with useHttpGet. */
function connectGet(base: string, path: string, message: unknown, headers: Record<string, string>) {
  const query = `connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify(message))}`;
  return fetch(`${base}/${path}?${query}`, { headers });
}

function connectPost(base: string, path: string, message: unknown, headers: Record<string, string>) {
  return fetch(`${base}/${path}`, { method: "POST", headers: { "content-type": "application/json", "connect-protocol-version": "1", ...headers }, body: JSON.stringify(message) });
}

function preflight(base: string, origin: string, path = "kindling.v1.MemberStreakService/GetMemberStreak") {
  return fetch(`${base}/${path}`, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type,connect-protocol-version" },
  });
}

beforeAll(async () => {
  api = await startTestApi({ label: "browser_access", env: { KINDLING_CORS_ORIGINS: GLOBAL }, now: clock.now });
  tenantB = await api.newTenant("tenant b");
  const created = await api.client(TenantService).createApiKey({ name: "backend", role: ApiKeyRole.SERVICE });
  serviceKey = bearer(created.bearerToken);
  const defs = api.client(DefinitionService);
  // A day of grace lets yesterday's visit count today: alice has a two-day streak in defOne.
  defOne = (await createLiveDefinition(defs, { name: "Daily visit", graceDuration: { seconds: 86_400n } })).id;
  defTwo = (await createLiveDefinition(defs, { name: "Daily lesson" })).id;
  defB = (await createLiveDefinition(api.client(DefinitionService, tenantB), { name: "B's streak" })).id;
  const activities = api.client(ActivityService);
  await activityOnDay(activities, "alice", defOne, -1);
  await activityOnDay(activities, "alice", defOne, 0);
  await activityOnDay(activities, "alice", defTwo, 0);
  await activityOnDay(activities, "bob", defOne, 0);
  await api.client(TenantService).setBrowserOrigins({ origins: [SHOP_A] });
  await api.client(TenantService, tenantB).setBrowserOrigins({ origins: [SHOP_B] });
});
afterAll(async () => {
  await api?.close();
});

describe("browser access: CORS", () => {
  it("cors/preflight_from_an_allowed_origin_is_granted_with_connect_headers_and_cached", async () => {
    for (const origin of [SHOP_A, SHOP_B, GLOBAL]) {
      const res = await preflight(api.url, origin);
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe(origin);
      expect(res.headers.get("access-control-allow-methods")).toBe("POST, GET");
      const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(/,\s*/);
      expect(allowed).toEqual(expect.arrayContaining(["authorization", "x-kindling-tenant", "content-type", "connect-protocol-version", "connect-timeout-ms", "x-grpc-web"]));
      // No tenant secret may be sent from a page.
      expect(allowed).not.toContain("secretkey");
      expect(res.headers.get("access-control-max-age")).toBe("7200");
      expect(res.headers.get("vary")).toMatch(/origin/i);
    }
  });

  it("cors/preflight_from_an_origin_no_tenant_allows_gets_no_grant", async () => {
    const res = await preflight(api.url, STRANGER);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(res.headers.get("access-control-allow-headers")).toBeNull();
    expect(res.headers.get("access-control-max-age")).toBeNull();
  });

  it("cors/actual_get_and_post_from_the_tenants_origin_are_granted_and_vary_on_origin", async () => {
    const token = await mint("alice");
    const message = { memberExternalId: "alice", definitionId: defOne };
    const get = await connectGet(api.url, "kindling.v1.MemberStreakService/GetMemberStreak", message, { origin: SHOP_A, ...bearer(token) });
    expect(get.status).toBe(200);
    expect(get.headers.get("access-control-allow-origin")).toBe(SHOP_A);
    expect(get.headers.get("access-control-expose-headers")).toMatch(/grpc-status/i);
    expect(get.headers.get("vary")).toMatch(/origin/i);
    expect(((await get.json()) as { streak: { currentCount: number } }).streak.currentCount).toBe(2);

    const post = await connectPost(api.url, "kindling.v1.MemberStreakService/ListMemberStreaks", { memberExternalId: "alice" }, { origin: SHOP_A, ...bearer(token) });
    expect(post.status).toBe(200);
    expect(post.headers.get("access-control-allow-origin")).toBe(SHOP_A);

    // A refusal is readable too, so a page can show it.
    const refused = await connectPost(api.url, "kindling.v1.MemberStreakService/GetMemberStreak", { memberExternalId: "bob", definitionId: defOne }, { origin: SHOP_A, ...bearer(token) });
    expect(refused.status).toBe(403);
    expect(refused.headers.get("access-control-allow-origin")).toBe(SHOP_A);
  });

  it("cors/a_server_stream_from_the_tenants_origin_is_granted", async () => {
    const member = `watcher-${Date.now()}`;
    const token = await mint(member, defOne);
    // The member's event exists before the stream opens; the stream replays it from an earlier cursor.
    const earliest = (await api.client(EventService).listEvents({ pageSize: 1 })).events[0]!.cursor;
    await activityOnDay(api.client(ActivityService), member, defOne, 0);
    const json = new TextEncoder().encode(JSON.stringify({ memberExternalId: member, afterCursor: earliest }));
    const envelope = new Uint8Array(5 + json.length);
    new DataView(envelope.buffer).setUint32(1, json.length);
    envelope.set(json, 5);
    const aborted = new AbortController();
    const stream = fetch(`${api.url}/kindling.v1.EventService/WatchEvents`, {
      method: "POST",
      headers: { "content-type": "application/connect+json", "connect-protocol-version": "1", origin: SHOP_A, ...bearer(token) },
      body: envelope,
      signal: aborted.signal,
    });
    // The stream's headers go out with its first event.
    const res = await stream;
    try {
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBe(SHOP_A);
    } finally {
      aborted.abort();
    }
  });

  it("cors/a_read_without_origin_still_varies_on_origin", async () => {
    const token = await mint("alice");
    const get = await connectGet(api.url, "kindling.v1.MemberStreakService/GetMemberStreak", { memberExternalId: "alice", definitionId: defOne }, bearer(token));
    expect(get.status).toBe(200);
    expect(get.headers.get("access-control-allow-origin")).toBeNull();
    expect(get.headers.get("vary")).toMatch(/origin/i);
  });

  it("cors/another_tenants_origin_gets_no_grant_on_this_tenants_calls", async () => {
    const token = await mint("alice");
    const message = { memberExternalId: "alice", definitionId: defOne };
    for (const origin of [SHOP_B, STRANGER]) {
      const res = await connectGet(api.url, "kindling.v1.MemberStreakService/GetMemberStreak", message, { origin, ...bearer(token) });
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    }
    // Tenant B's own origin is granted for B's calls (guest reads of its live definitions).
    const guest = await connectPost(api.url, "kindling.v1.DefinitionService/GetDefinition", { definitionId: defB }, { origin: SHOP_B, "x-kindling-tenant": tenantB.tenantId });
    expect(guest.status).toBe(200);
    expect(guest.headers.get("access-control-allow-origin")).toBe(SHOP_B);
    const guestOfA = await connectPost(api.url, "kindling.v1.DefinitionService/GetDefinition", { definitionId: defOne }, { origin: SHOP_B, "x-kindling-tenant": api.admin.tenantId });
    expect(guestOfA.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("cors/the_global_origin_is_granted_for_every_tenant", async () => {
    const tokenB = (await api.client(TenantService, tenantB).createMemberSession({ memberExternalId: "carol" })).token;
    for (const token of [await mint("alice"), tokenB]) {
      const res = await connectPost(api.url, "kindling.v1.MemberStreakService/ListMemberStreaks", { memberExternalId: token === tokenB ? "carol" : "alice" }, { origin: GLOBAL, ...bearer(token) });
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBe(GLOBAL);
    }
  });

  it("cors/calls_with_a_tenant_api_key_get_no_grant_from_any_origin", async () => {
    const message = { memberExternalId: "alice", definitionId: defOne };
    for (const origin of [SHOP_A, GLOBAL]) {
      const res = await connectPost(api.url, "kindling.v1.MemberStreakService/GetMemberStreak", message, { origin, ...serviceKey });
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      const headers = await connectPost(api.url, "kindling.v1.MemberStreakService/GetMemberStreak", message, { origin, apikey: api.admin.keyId, secretkey: api.admin.secret });
      expect(headers.headers.get("access-control-allow-origin")).toBeNull();
    }
  });

  it("origins/set_and_get_are_admin_only_and_a_change_reaches_preflights_at_once", async () => {
    const tenants = api.client(TenantService);
    const later = "http://localhost:5173";
    expect((await preflight(api.url, later)).headers.get("access-control-allow-origin")).toBeNull();
    const set = await tenants.setBrowserOrigins({ origins: [SHOP_A, later] });
    expect(set.origins).toEqual([SHOP_A, later]);
    expect((await tenants.getBrowserOrigins({})).origins).toEqual([SHOP_A, later]);
    expect((await preflight(api.url, later)).headers.get("access-control-allow-origin")).toBe(later);

    await expectFailure(api.client(TenantService, serviceKey).setBrowserOrigins({ origins: [STRANGER] }), Code.PermissionDenied, "PERMISSION_DENIED");
    await expectFailure(api.client(TenantService, serviceKey).getBrowserOrigins({}), Code.PermissionDenied, "PERMISSION_DENIED");
    await expectFailure(api.client(TenantService, bearer(await mint("alice"))).setBrowserOrigins({ origins: [STRANGER] }), Code.PermissionDenied, "PERMISSION_DENIED");

    await tenants.setBrowserOrigins({ origins: [SHOP_A] });
    expect((await preflight(api.url, later)).headers.get("access-control-allow-origin")).toBeNull();
    expect((await tenants.getBrowserOrigins({})).origins).toEqual([SHOP_A]);
  });

  it("origins/refuses_origins_a_browser_never_sends_and_changes_nothing", async () => {
    const tenants = api.client(TenantService);
    await expectFailure(tenants.setBrowserOrigins({ origins: [STRANGER, "https://shop-a.example:443"] }), Code.InvalidArgument, "INVALID_ORIGIN");
    await expectFailure(tenants.setBrowserOrigins({ origins: ["https://shop-a.example/"] }), Code.InvalidArgument, "INVALID_REQUEST");
    await expectFailure(tenants.setBrowserOrigins({ origins: ["*"] }), Code.InvalidArgument, "INVALID_REQUEST");
    expect((await tenants.getBrowserOrigins({})).origins).toEqual([SHOP_A]);
    expect((await preflight(api.url, STRANGER)).headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("browser access: member sessions", () => {
  it("sessions/a_minted_token_reads_its_members_streak_and_no_other_member", async () => {
    const created = await api.client(TenantService, serviceKey).createMemberSession({ memberExternalId: "alice" });
    expect(created.memberExternalId).toBe("alice");
    const expiresIn = Number(created.expireTime!.seconds) * 1000 - clock.now();
    expect(expiresIn).toBeGreaterThan(59 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(60 * 60_000);
    const streaks = api.client(MemberStreakService, bearer(created.token));
    expect((await streaks.getMemberStreak({ memberExternalId: "alice", definitionId: defOne })).streak!.currentCount).toBe(2);
    await expectFailure(streaks.getMemberStreak({ memberExternalId: "bob", definitionId: defOne }), Code.PermissionDenied, "MEMBER_MISMATCH");
    await expectFailure(api.client(ActivityService, bearer(created.token)).listActivities({}), Code.PermissionDenied, "PERMISSION_DENIED");
    // Another tenant's member cannot be reached with it either: its tenant is the minting tenant.
    await expectFailure(api.client(DefinitionService, bearer(created.token)).getDefinition({ definitionId: defB }), Code.NotFound, "DEFINITION_NOT_FOUND");
  });

  it("sessions/a_scoped_token_reads_only_its_definition", async () => {
    const token = await mint("alice", defOne);
    const streaks = api.client(MemberStreakService, bearer(token));
    expect((await streaks.getMemberStreak({ memberExternalId: "alice", definitionId: defOne })).streak!.currentCount).toBe(2);
    await expectFailure(streaks.getMemberStreak({ memberExternalId: "alice", definitionId: defTwo }), Code.PermissionDenied, "DEFINITION_MISMATCH");
    expect((await streaks.listMemberStreaks({ memberExternalId: "alice", includeNotStarted: true })).streaks.map((s) => s.definitionId)).toEqual([defOne]);
    await expectFailure(api.client(DefinitionService, bearer(token)).getDefinition({ definitionId: defTwo }), Code.PermissionDenied, "DEFINITION_MISMATCH");
    expect((await api.client(DefinitionService, bearer(token)).listDefinitions({})).definitions.map((d) => d.id)).toEqual([defOne]);
    await expectFailure(api.client(RewardService, bearer(token)).listRewards({ definitionId: defTwo }), Code.PermissionDenied, "DEFINITION_MISMATCH");
    await expectFailure(api.client(EventService, bearer(token)).listEvents({ definitionId: defTwo }), Code.PermissionDenied, "DEFINITION_MISMATCH");
    const events = await api.client(EventService, bearer(token)).listEvents({});
    expect(events.events.length).toBeGreaterThan(0);
    expect(new Set(events.events.map((e) => e.definitionId))).toEqual(new Set([defOne]));
  });

  it("sessions/minting_is_for_tenant_backends_and_checks_its_input", async () => {
    const token = await mint("alice");
    await expectFailure(api.client(TenantService, bearer(token)).createMemberSession({ memberExternalId: "alice" }), Code.PermissionDenied, "PERMISSION_DENIED");
    await expectFailure(api.client(TenantService, serviceKey).createMemberSession({ memberExternalId: "alice", definitionId: defB }), Code.NotFound, "DEFINITION_NOT_FOUND");
    await expectFailure(api.client(TenantService, serviceKey).createMemberSession({ memberExternalId: "alice", ttlDuration: { seconds: 86_401n } }), Code.InvalidArgument, "INVALID_REQUEST");
    await expectFailure(api.client(TenantService, serviceKey).createMemberSession({ memberExternalId: "" }), Code.InvalidArgument, "INVALID_REQUEST");
  });

  it("sessions/the_tenants_own_end_user_jwts_keep_working_beside_sessions", async () => {
    const secret = "an-hs256-secret-that-is-long-enough-0123456789";
    await api.client(TenantService).setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: secret } });
    const own = await new SignJWT({ tenant_id: api.admin.tenantId }).setProtectedHeader({ alg: "HS256" }).setSubject("alice").setExpirationTime("5m").sign(new TextEncoder().encode(secret));
    const session = await mint("alice");
    for (const token of [own, session]) {
      expect((await api.client(MemberStreakService, bearer(token)).getMemberStreak({ memberExternalId: "alice", definitionId: defOne })).streak!.currentCount).toBe(2);
    }
    // A session token is not accepted as the tenant's own JWT, nor the other way round: forging the issuer fails.
    const forged = await new SignJWT({ tenant_id: api.admin.tenantId }).setProtectedHeader({ alg: "HS256", kid: "x" }).setIssuer("urn:kindling:member-session").setSubject("alice").setExpirationTime("5m").sign(new TextEncoder().encode(secret));
    await expectFailure(api.client(MemberStreakService, bearer(forged)).getMemberStreak({ memberExternalId: "alice", definitionId: defOne }), Code.Unauthenticated, "INVALID_TOKEN");
  });

  it("sessions/rotating_the_key_refuses_every_earlier_token", async () => {
    const before = await mint("alice");
    const read = (token: string) => api.client(MemberStreakService, bearer(token)).getMemberStreak({ memberExternalId: "alice", definitionId: defOne });
    expect((await read(before)).streak!.currentCount).toBe(2);
    await expectFailure(api.client(TenantService, serviceKey).rotateMemberSessionKey({}), Code.PermissionDenied, "PERMISSION_DENIED");
    const rotated = await api.client(TenantService).rotateMemberSessionKey({});
    expect(rotated.rotateTime).toBeDefined();
    await expectFailure(read(before), Code.Unauthenticated, "INVALID_TOKEN");
    expect((await read(await mint("alice"))).streak!.currentCount).toBe(2);
  });

  it("sessions/rotation_and_origins_reach_another_api_process_at_once", async () => {
    const config = loadConfig({ DATABASE_URL: api.databaseUrl, PORT: "0", LOG_LEVEL: "silent", RATE_LIMIT_PER_SECOND: "0" });
    let second: Started | undefined;
    try {
      second = await startKindling(config, createLogger("silent"), "api", { now: clock.now });
      const url = second.apiUrl!;
      const token = await mint("alice");
      const read = () => connectPost(url, "kindling.v1.MemberStreakService/GetMemberStreak", { memberExternalId: "alice", definitionId: defOne }, bearer(token));
      expect((await read()).status).toBe(200);
      expect((await preflight(url, SHOP_A)).headers.get("access-control-allow-origin")).toBe(SHOP_A);

      await api.client(TenantService).rotateMemberSessionKey({});
      await api.client(TenantService).setBrowserOrigins({ origins: [] });
      // The notification crosses processes asynchronously; allow it a moment, then the old key and origin are gone.
      await expect.poll(async () => (await read()).status, { timeout: 2_000, interval: 50 }).toBe(401);
      await expect.poll(async () => (await preflight(url, SHOP_A)).headers.get("access-control-allow-origin"), { timeout: 2_000, interval: 50 }).toBeNull();
    } finally {
      await api.client(TenantService).setBrowserOrigins({ origins: [SHOP_A] });
      await second?.stop();
    }
  });

  it("sessions/an_expired_token_is_refused", async () => {
    const created = await api.client(TenantService, serviceKey).createMemberSession({ memberExternalId: "alice", ttlDuration: { seconds: 60n } });
    const read = () => api.client(MemberStreakService, bearer(created.token)).getMemberStreak({ memberExternalId: "alice", definitionId: defOne });
    expect((await read()).streak!.currentCount).toBe(2);
    clock.advance(61_000);
    const error = await expectFailure(read(), Code.Unauthenticated, "INVALID_TOKEN");
    expect(error.rawMessage).toMatch(/exp/);
  });
});

describe("browser access: widget and demo", () => {
  let dir: string;
  let server: ApiServer;
  let url: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kindling-widget-"));
    server = createApiServer({ logger: createLogger("silent"), services: [], maxRequestBytes: 1 << 20, checkReady: async () => true, shutdownGraceMs: 100, widgetDir: dir });
    url = (await server.listen(0, "127.0.0.1")).url;
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("widget/served_at_its_stable_path_with_etag_cache_and_cors", async () => {
    const missing = await fetch(`${url}/widget/kindling-streak.js`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toMatch(/kindling-streak\.js is not built/);

    await writeFile(join(dir, "kindling-streak.js"), "export const version = 1;\n");
    const res = await fetch(`${url}/widget/kindling-streak.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(res.headers.get("cache-control")).toMatch(/max-age=\d+/);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(await res.text()).toBe("export const version = 1;\n");
    const etag = res.headers.get("etag")!;
    expect(etag).toMatch(/^".+"$/);
    expect((await fetch(`${url}/widget/kindling-streak.js`, { headers: { "if-none-match": etag } })).status).toBe(304);

    // A rebuilt file is served at once, under a new ETag.
    await writeFile(join(dir, "kindling-streak.js"), "export const version = 22;\n");
    const rebuilt = await fetch(`${url}/widget/kindling-streak.js`, { headers: { "if-none-match": etag } });
    expect(rebuilt.status).toBe(200);
    expect(rebuilt.headers.get("etag")).not.toBe(etag);
    expect(await rebuilt.text()).toBe("export const version = 22;\n");

    expect((await fetch(`${url}/widget/..%2Fsecret.js`)).status).toBe(404);
    expect((await fetch(`${url}/widget/`)).status).toBe(404);
  });

  it("demo/off_unless_enabled_is_404", async () => {
    // The full server as started without KINDLING_DEMO (the switch under test); the locally built server above is
    // created without a demo at all, so it could not fail this check.
    for (const base of [api.url]) {
      for (const path of ["/demo", "/", "/demo/rpc/kindling.v1.TenantService/GetTenant"]) {
        const res = await fetch(`${base}${path}`, { method: path.includes("rpc") ? "POST" : "GET", headers: { "content-type": "application/json" }, body: path.includes("rpc") ? "{}" : undefined });
        expect(res.status, `${base}${path}`).toBe(404);
        expect(await res.text()).toMatch(/KINDLING_DEMO/);
      }
    }
  });

  it("demo/the_panel_acts_as_the_demo_tenant_without_any_secret_from_the_browser", async () => {
    const demo = await startTestApi({ label: "browser_demo", env: { KINDLING_DEMO: "true" } });
    try {
      const page = await fetch(`${demo.url}/demo`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toMatch(/text\/html/);
      const rpc = (method: string, body: unknown) => connectPost(demo.url, `demo/rpc/${method}`, body, {});
      const tenant = await rpc("kindling.v1.TenantService/GetTenant", {});
      expect(tenant.status).toBe(200);
      expect(((await tenant.json()) as { tenant: { id: string } }).tenant.id).toBe(DEMO_TENANT_ID);

      const created = await rpc("kindling.v1.DefinitionService/CreateDefinition", {
        definition: { name: "Demo streak", window: { calendar: { period: "CALENDAR_PERIOD_DAILY", timeZone: "UTC", resetTime: "00:00" } }, condition: { type: "CONDITION_TYPE_COUNT", min: 1 } },
      });
      expect(created.status).toBe(200);
      const definitionId = ((await created.json()) as { definition: { id: string } }).definition.id;
      expect((await rpc("kindling.v1.DefinitionService/PublishDefinition", { definitionId })).status).toBe(200);
      const recorded = await rpc("kindling.v1.ActivityService/RecordActivity", {
        activity: { memberExternalId: "demo-member", definitionId, occurTime: new Date().toISOString(), uniqueIdentifier: "demo-1" },
      });
      expect(recorded.status).toBe(200);
      const session = await rpc("kindling.v1.TenantService/CreateMemberSession", { memberExternalId: "demo-member", definitionId });
      expect(session.status).toBe(200);
      const { token } = (await session.json()) as { token: string };
      // The widget reads with the member session on the ordinary API path.
      const read = await connectPost(demo.url, "kindling.v1.MemberStreakService/GetMemberStreak", { memberExternalId: "demo-member", definitionId }, bearer(token));
      expect(((await read.json()) as { streak: { currentCount: number } }).streak.currentCount).toBe(1);

      // Key management and settings are not reachable through the panel, and its route cannot reach other tenants.
      for (const method of ["kindling.v1.TenantService/CreateApiKey", "kindling.v1.TenantService/SetBrowserOrigins", "kindling.v1.EventService/CreateWebhookSubscription"]) {
        expect((await rpc(method, {})).status, method).toBe(404);
      }
      const own = await connectPost(demo.url, "kindling.v1.DefinitionService/ListDefinitions", {}, { apikey: demo.admin.keyId, secretkey: demo.admin.secret });
      expect(((await own.json()) as { definitions?: unknown[] }).definitions ?? []).toEqual([]);
    } finally {
      await demo.close();
    }
  });
});
