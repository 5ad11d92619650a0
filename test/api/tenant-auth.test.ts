// Credentials and the permission matrix, end to end: API keys (ADMIN / SERVICE, header and bearer forms, revoked
// at once), end-user JWTs (HS256, ES256, RS256 with a PKCS#1 key, a custom member claim), guests, secrets
// redacted by role, tenant isolation across every resource, and the per-credential rate limit.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKeyPairSync } from "node:crypto";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { loadConfig } from "../../src/config/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { startKindling, type Started } from "../../src/app.ts";
import type pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { RewardService } from "../../src/gen/kindling/v1/reward_service_pb.js";
import { MemberService } from "../../src/gen/kindling/v1/member_service_pb.js";
import { ListApiKeysResponseSchema, TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { toJsonString } from "@bufbuild/protobuf";
import { EventService } from "../../src/gen/kindling/v1/event_service_pb.js";
import { ApiKeyRole, JwtAlgorithm } from "../../src/gen/kindling/v1/tenant_pb.js";
import { DefinitionState, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { startTestApi, type Credentials, type TestApi } from "../support/api.ts";
import { activityOnDay, createLiveDefinition, expectFailure, sqlPool } from "../support/fixtures.ts";

const HS_SECRET = "an-hs256-secret-that-is-long-enough-0123456789";

let api: TestApi;
let db: pg.Pool;
let service: Record<string, string>;
let liveDef: string;
let draftDef: string;
let aliceReward: string;
let bobReward: string;

async function endUserToken(tenantId: string, sub: string, key: Parameters<SignJWT["sign"]>[0] = new TextEncoder().encode(HS_SECRET), alg = "HS256", extra: Record<string, unknown> = {}) {
  return new SignJWT({ tenant_id: tenantId, ...extra }).setProtectedHeader({ alg }).setSubject(sub).setIssuedAt().setExpirationTime("5m").sign(key);
}
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const withHeaders =
  (headers: Record<string, string>): Interceptor =>
  (next) =>
  (req) => {
    for (const [k, v] of Object.entries(headers)) req.header.set(k, v);
    return next(req);
  };

beforeAll(async () => {
  api = await startTestApi({ label: "tenant_auth" });
  db = sqlPool(api.databaseUrl);
  const created = await api.client(TenantService).createApiKey({ name: "checkout-service", role: ApiKeyRole.SERVICE });
  service = bearer(created.bearerToken);
  await api.client(TenantService).setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: HS_SECRET } });

  const defs = api.client(DefinitionService);
  liveDef = (
    await createLiveDefinition(defs, {
      name: "Live one",
      milestones: [
        { threshold: 1, reward: { kind: RewardKind.POINTS, points: 5, fulfilmentMode: FulfilmentMode.CLAIM } },
        {
          threshold: 3,
          reward: { kind: RewardKind.COUPON, fulfilmentMode: FulfilmentMode.PROVIDER, provider: { kind: { case: "codePool", value: { codes: ["POOL-1", "POOL-2"] } } } },
        },
        {
          threshold: 4,
          reward: {
            kind: RewardKind.CUSTOM,
            fulfilmentMode: FulfilmentMode.PROVIDER,
            provider: { kind: { case: "webhook", value: { url: "http://127.0.0.1:9/hook", secret: "a-webhook-provider-secret-of-32-chars!!" } } },
          },
        },
      ],
    })
  ).id;
  const { window, condition } = (await defs.getDefinition({ definitionId: liveDef })).definition!;
  draftDef = (await defs.createDefinition({ definition: { name: "Draft one", window, condition } })).definition!.id;
  const activities = api.client(ActivityService);
  aliceReward = (await activityOnDay(activities, "alice", liveDef, 0)).results[0]!.rewards[0]!.id;
  bobReward = (await activityOnDay(activities, "bob", liveDef, 0)).results[0]!.rewards[0]!.id;
});
afterAll(async () => {
  await db?.end();
  await api?.close();
});

describe("permission matrix", () => {
  it("service/records_and_reads_but_cannot_change_definitions_keys_or_webhooks", async () => {
    await api.client(ActivityService, service).recordActivity({
      activity: { memberRef: { case: "memberExternalId", value: "carol" }, target: { case: "definitionId", value: liveDef }, uniqueIdentifier: "svc-1" },
    });
    expect((await api.client(TenantService, service).getTenant({})).tenant!.id).toBe(api.admin.tenantId);
    await expectFailure(api.client(DefinitionService, service).createDefinition({ definition: { name: "x" } }), Code.PermissionDenied, "PERMISSION_DENIED");
    await expectFailure(api.client(TenantService, service).createApiKey({ name: "x", role: ApiKeyRole.ADMIN }), Code.PermissionDenied, "PERMISSION_DENIED");
    await expectFailure(api.client(EventService, service).listWebhookSubscriptions({}), Code.PermissionDenied, "PERMISSION_DENIED");
    expect((await api.client(MemberService, service).getMember({ memberExternalId: "carol" })).member!.externalId).toBe("carol");
  });

  it("end_user/hs256_sees_only_own_member_and_live_definitions", async () => {
    const alice = bearer(await endUserToken(api.admin.tenantId, "alice"));
    const streaks = api.client(MemberStreakService, alice, "grpc");
    expect((await streaks.getMemberStreak({ memberExternalId: "alice", definitionId: liveDef })).streak!.currentCount).toBe(1);
    await expectFailure(streaks.getMemberStreak({ memberExternalId: "bob", definitionId: liveDef }), Code.PermissionDenied, "MEMBER_MISMATCH");
    await expectFailure(api.client(MemberService, alice).getMember({ memberExternalId: "bob" }), Code.PermissionDenied, "MEMBER_MISMATCH");
    expect((await api.client(MemberService, alice).getMember({ memberExternalId: "alice" })).member!.externalId).toBe("alice");

    const defs = api.client(DefinitionService, alice);
    const listed = await defs.listDefinitions({});
    expect(listed.definitions.map((d) => d.id)).toEqual([liveDef]);
    await expectFailure(defs.getDefinition({ definitionId: draftDef }), Code.NotFound, "DEFINITION_NOT_FOUND");
    await expectFailure(defs.createDefinition({ definition: { name: "x" } }), Code.PermissionDenied, "PERMISSION_DENIED");
    await expectFailure(
      api.client(ActivityService, alice).recordActivity({ activity: { memberRef: { case: "memberExternalId", value: "alice" }, target: { case: "definitionId", value: liveDef }, uniqueIdentifier: "self" } }),
      Code.PermissionDenied,
      "PERMISSION_DENIED",
    );
    await expectFailure(api.client(MemberService, alice).upsertMember({ member: { externalId: "alice" } }), Code.PermissionDenied, "PERMISSION_DENIED");
  });

  it("end_user/lists_gets_and_claims_only_own_rewards", async () => {
    const alice = bearer(await endUserToken(api.admin.tenantId, "alice"));
    const rewards = api.client(RewardService, alice);
    expect((await rewards.listRewards({})).rewards.map((r) => r.memberExternalId)).toEqual(["alice"]);
    await expectFailure(rewards.listRewards({ memberExternalId: "bob" }), Code.PermissionDenied, "MEMBER_MISMATCH");
    await expectFailure(rewards.getReward({ rewardId: bobReward }), Code.PermissionDenied, "MEMBER_MISMATCH");
    await expectFailure(rewards.claimReward({ target: { case: "rewardId", value: bobReward } }), Code.PermissionDenied, "MEMBER_MISMATCH");
    await expectFailure(
      rewards.claimReward({ target: { case: "milestone", value: { memberExternalId: "bob", definitionId: liveDef, threshold: 1 } } }),
      Code.PermissionDenied,
      "MEMBER_MISMATCH",
    );
    const claimed = await rewards.claimReward({ target: { case: "rewardId", value: aliceReward } });
    expect(claimed.bonusPoints).toBe(5);
    await expectFailure(rewards.updateRewardFulfilment({ rewardId: aliceReward, couponCode: "X", updateMask: { paths: ["coupon_code"] } }), Code.PermissionDenied, "PERMISSION_DENIED");
    const { rows } = await db.query("select state from reward where id = $1", [bobReward]);
    expect(rows[0].state).toBe("AVAILABLE");
  });

  it("guest/reads_live_definitions_only", async () => {
    const guest = { "x-kindling-tenant": api.admin.tenantId };
    const defs = api.client(DefinitionService, guest);
    expect((await defs.listDefinitions({})).definitions.map((d) => d.id)).toEqual([liveDef]);
    expect((await defs.getDefinition({ definitionId: liveDef })).definition!.state).toBe(DefinitionState.LIVE);
    await expectFailure(defs.getDefinition({ definitionId: draftDef }), Code.NotFound, "DEFINITION_NOT_FOUND");
    await expectFailure(api.client(MemberStreakService, guest).listMemberStreaks({ memberExternalId: "alice" }), Code.PermissionDenied, "PERMISSION_DENIED");
    await expectFailure(api.client(RewardService, guest).listRewards({}), Code.PermissionDenied, "PERMISSION_DENIED");
    await expectFailure(api.client(EventService, guest).listEvents({}), Code.PermissionDenied, "PERMISSION_DENIED");
    await expectFailure(api.client(DefinitionService, { "x-kindling-tenant": "00000000-0000-4000-8000-000000000000" }).listDefinitions({}), Code.Unauthenticated, "UNAUTHENTICATED");
  });

  it("anonymous/without_credentials_is_unauthenticated", async () => {
    await expectFailure(api.client(DefinitionService, {}).listDefinitions({}), Code.Unauthenticated, "UNAUTHENTICATED");
    await expectFailure(api.client(DefinitionService, { apikey: api.admin.keyId, secretkey: "wrong" }).listDefinitions({}), Code.Unauthenticated, "UNAUTHENTICATED");
  });
});

describe("end-user JWT configurations", () => {
  // Each case replaces the tenant's configuration, so they run in order and restore HS256 at the end.
  it("jwt/es256_and_rs256_public_keys_verify_tokens_and_the_old_secret_stops_working", async () => {
    const tenants = api.client(TenantService);
    const es = await generateKeyPair("ES256", { extractable: true });
    const set = await tenants.setEndUserJwtConfig({ algorithm: JwtAlgorithm.ES256, key: { case: "publicKeyPem", value: await exportSPKI(es.publicKey) }, issuer: "https://id.example" });
    expect(set.config).toMatchObject({ algorithm: JwtAlgorithm.ES256, issuer: "https://id.example", memberClaim: "sub" });
    const esToken = await new SignJWT({ tenant_id: api.admin.tenantId }).setProtectedHeader({ alg: "ES256" }).setSubject("alice").setIssuer("https://id.example").setExpirationTime("5m").sign(es.privateKey);
    expect((await api.client(MemberService, bearer(esToken)).getMember({ memberExternalId: "alice" })).member!.externalId).toBe("alice");
    await expectFailure(api.client(MemberService, bearer(await endUserToken(api.admin.tenantId, "alice"))).getMember({ memberExternalId: "alice" }), Code.Unauthenticated, "INVALID_TOKEN");

    // RS256 with a PKCS#1 "RSA PUBLIC KEY" and the member id in a custom claim.
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pkcs1 = rsa.publicKey.export({ type: "pkcs1", format: "pem" }).toString();
    await tenants.setEndUserJwtConfig({ algorithm: JwtAlgorithm.RS256, key: { case: "publicKeyPem", value: pkcs1 }, memberClaim: "uid" });
    const rsToken = await new SignJWT({ tenant_id: api.admin.tenantId, uid: "bob" }).setProtectedHeader({ alg: "RS256" }).setSubject("ignored").setExpirationTime("5m").sign(rsa.privateKey);
    expect((await api.client(MemberService, bearer(rsToken)).getMember({ memberExternalId: "bob" })).member!.externalId).toBe("bob");
    expect((await tenants.getTenant({})).tenant!.endUserJwtConfig).toMatchObject({ algorithm: JwtAlgorithm.RS256, memberClaim: "uid" });

    await tenants.setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: HS_SECRET } });
    expect((await tenants.getTenant({})).tenant!.endUserJwtConfig!.publicKeyPem).toBe("");
  });

  it("jwt/a_key_that_does_not_fit_the_algorithm_is_invalid_public_key", async () => {
    const es = await generateKeyPair("ES256", { extractable: true });
    await expectFailure(
      api.client(TenantService).setEndUserJwtConfig({ algorithm: JwtAlgorithm.RS256, key: { case: "publicKeyPem", value: await exportSPKI(es.publicKey) } }),
      Code.InvalidArgument,
      "INVALID_PUBLIC_KEY",
    );
    await expectFailure(
      api.client(TenantService).setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "publicKeyPem", value: "-----BEGIN PUBLIC KEY-----x" } }),
      Code.InvalidArgument,
      "INVALID_REQUEST",
    );
  });
});

describe("API keys", () => {
  it("keys/revoked_key_fails_immediately_and_own_key_cannot_be_revoked", async () => {
    const tenants = api.client(TenantService);
    const created = await tenants.createApiKey({ name: "short-lived", role: ApiKeyRole.SERVICE });
    expect(created.apiKey).toMatchObject({ name: "short-lived", role: ApiKeyRole.SERVICE });
    const viaHeaders = { apikey: created.apiKey!.id, secretkey: created.secret };
    // Both forms work and are now in the verified-secret cache.
    await api.client(TenantService, viaHeaders).getTenant({});
    await api.client(TenantService, bearer(created.bearerToken)).getTenant({});

    const revoked = await tenants.revokeApiKey({ apiKeyId: created.apiKey!.id });
    expect(revoked.apiKey!.revokeTime).toBeDefined();
    await expectFailure(api.client(TenantService, viaHeaders).getTenant({}), Code.Unauthenticated, "UNAUTHENTICATED");
    await expectFailure(api.client(TenantService, bearer(created.bearerToken)).getTenant({}), Code.Unauthenticated, "UNAUTHENTICATED");
    // Revoking again changes nothing.
    expect((await tenants.revokeApiKey({ apiKeyId: created.apiKey!.id })).apiKey!.revokeTime).toEqual(revoked.apiKey!.revokeTime);

    const active = await tenants.listApiKeys({});
    expect(active.apiKeys.map((k) => k.id)).not.toContain(created.apiKey!.id);
    expect((await tenants.listApiKeys({ includeRevoked: true })).apiKeys.map((k) => k.id)).toContain(created.apiKey!.id);
    await expectFailure(tenants.revokeApiKey({ apiKeyId: api.admin.keyId }), Code.FailedPrecondition, "CANNOT_REVOKE_OWN_KEY");
    await expectFailure(tenants.revokeApiKey({ apiKeyId: "kk_nope" }), Code.NotFound, "API_KEY_NOT_FOUND");
  });

  it("keys/revocation_on_one_api_process_reaches_every_other_within_a_second", async () => {
    // A second API process on the same database, with its own verified-key cache (as KINDLING_API_PROCESSES > 1).
    const config = loadConfig({ DATABASE_URL: api.databaseUrl, PORT: "0", LOG_LEVEL: "silent", RATE_LIMIT_PER_SECOND: "0" });
    let second: Started | undefined;
    try {
      second = await startKindling(config, createLogger("silent"), "api");
      const url = second.apiUrl!;
      const created = await api.client(TenantService).createApiKey({ name: "revoked-elsewhere", role: ApiKeyRole.SERVICE });
      const viaHeaders = { apikey: created.apiKey!.id, secretkey: created.secret };
      const onSecond = (auth: Record<string, string>) => createClient(TenantService, createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [withHeaders(auth)] }));
      // Both forms verified on the second process, so its cache holds them.
      await onSecond(viaHeaders).getTenant({});
      await onSecond(bearer(created.bearerToken)).getTenant({});

      await api.client(TenantService).revokeApiKey({ apiKeyId: created.apiKey!.id });
      const refused = async (auth: Record<string, string>) => {
        const error = await onSecond(auth).getTenant({}).then(() => undefined, (e: unknown) => ConnectError.from(e));
        return error?.code;
      };
      // The bound: every other process refuses the key within 1 s of the revocation's answer.
      await expect.poll(() => refused(viaHeaders), { timeout: 1_000, interval: 20 }).toBe(Code.Unauthenticated);
      await expect.poll(() => refused(bearer(created.bearerToken)), { timeout: 1_000, interval: 20 }).toBe(Code.Unauthenticated);
    } finally {
      await second?.stop();
    }
  });

  it("keys/revocation_reaches_a_process_whose_listening_connection_was_lost_and_is_heard_again_after", async () => {
    const config = loadConfig({ DATABASE_URL: api.databaseUrl, PORT: "0", LOG_LEVEL: "silent", RATE_LIMIT_PER_SECOND: "0" });
    let second: Started | undefined;
    const listeners = "select pid from pg_stat_activity where datname = current_database() and query like '%listen kindling_api_key_revoked%' and pid <> pg_backend_pid()";
    try {
      second = await startKindling(config, createLogger("silent"), "api");
      const onSecond = (auth: Record<string, string>) =>
        createClient(TenantService, createConnectTransport({ baseUrl: second!.apiUrl!, httpVersion: "1.1", interceptors: [withHeaders(auth)] }));
      const code = (auth: Record<string, string>) => onSecond(auth).getTenant({}).then(() => "ok", (e: unknown) => Code[ConnectError.from(e).code]);
      const newKey = async (name: string) => bearer((await api.client(TenantService).createApiKey({ name, role: ApiKeyRole.SERVICE })).bearerToken);

      const first = await newKey("revoked-while-deaf");
      expect(await code(first)).toBe("ok"); // cached on the second process
      // Both processes' listening connections are cut (as by a database restart): notices sent now reach nobody.
      const before = (await db.query<{ pid: number }>(listeners)).rows.map((r) => r.pid);
      expect(before.length).toBeGreaterThanOrEqual(2);
      await db.query("select pg_terminate_backend(pid) from pg_stat_activity where pid = any($1)", [before]);
      await api.client(TenantService).revokeApiKey({ apiKeyId: first.authorization.slice("Bearer ".length).split(".")[0]! });
      await expect.poll(() => code(first), { timeout: 1_000, interval: 20 }).toBe("Unauthenticated");

      // Each process listens again on a new connection, and a revocation is heard there within a second again.
      await expect
        .poll(async () => (await db.query<{ pid: number }>(listeners)).rows.filter((r) => !before.includes(r.pid)).length, { timeout: 10_000, interval: 100 })
        .toBeGreaterThanOrEqual(2);
      const later = await newKey("revoked-after-reconnect");
      expect(await code(later)).toBe("ok");
      await api.client(TenantService).revokeApiKey({ apiKeyId: later.authorization.slice("Bearer ".length).split(".")[0]! });
      await expect.poll(() => code(later), { timeout: 1_000, interval: 20 }).toBe("Unauthenticated");
    } finally {
      await second?.stop();
    }
  });

  it("keys/last_use_time_is_unset_until_the_key_authenticates_then_the_minute_of_its_use", async () => {
    const tenantKeys = api.client(TenantService);
    const created = await tenantKeys.createApiKey({ name: "last-use", role: ApiKeyRole.SERVICE });
    const listed = async () => (await tenantKeys.listApiKeys({})).apiKeys.find((k) => k.id === created.apiKey!.id)!;
    expect(created.apiKey!.lastUseTime).toBeUndefined();
    expect((await listed()).lastUseTime).toBeUndefined();
    const before = Math.floor(Date.now() / 60_000) * 60_000;
    // Each authentication path (verifying the secret, then the verified-key cache): the write is beside the call.
    const asKey = api.client(DefinitionService, { tenantId: api.admin.tenantId, keyId: created.apiKey!.id, secret: created.secret });
    await asKey.listDefinitions({});
    await asKey.listDefinitions({});
    let used = (await listed()).lastUseTime;
    for (let i = 0; i < 50 && used === undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
      used = (await listed()).lastUseTime;
    }
    const ms = Number(used!.seconds) * 1000;
    expect(ms % 60_000).toBe(0);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(Date.now());
    // A key that failed to authenticate is not marked used.
    const other = await tenantKeys.createApiKey({ name: "never-used", role: ApiKeyRole.SERVICE });
    await expect(api.client(DefinitionService, { tenantId: api.admin.tenantId, keyId: other.apiKey!.id, secret: "wrong" }).listDefinitions({})).rejects.toThrow();
    expect((await tenantKeys.listApiKeys({})).apiKeys.find((k) => k.id === other.apiKey!.id)!.lastUseTime).toBeUndefined();
  });

  it("keys/secrets_are_stored_hashed_and_listed_without_secrets", async () => {
    const created = await api.client(TenantService).createApiKey({ name: "hashed", role: ApiKeyRole.ADMIN });
    const { rows } = await db.query("select secret_hash from api_key where key_id = $1", [created.apiKey!.id]);
    expect(rows[0].secret_hash).toMatch(/^scrypt\$/);
    expect(rows[0].secret_hash).not.toContain(created.secret);
    expect(toJsonString(ListApiKeysResponseSchema, await api.client(TenantService).listApiKeys({}))).not.toContain(created.secret);
  });
});

describe("secret redaction", () => {
  it("redaction/provider_settings_reach_admins_only_and_webhook_secrets_nobody", async () => {
    const admin = (await api.client(DefinitionService).getDefinition({ definitionId: liveDef })).definition!;
    const providers = admin.milestones.map((m) => m.reward?.provider?.kind);
    expect(providers[1]).toMatchObject({ case: "codePool", value: { codes: ["POOL-1", "POOL-2"] } });
    expect(providers[2]).toMatchObject({ case: "webhook", value: { url: "http://127.0.0.1:9/hook", secret: "" } });

    const svc = (await api.client(DefinitionService, service).getDefinition({ definitionId: liveDef })).definition!;
    expect(svc.milestones.map((m) => m.reward?.provider)).toEqual([undefined, undefined, undefined]);
    expect(svc.milestones[1]!.reward!.kind).toBe(RewardKind.COUPON);

    const alice = bearer(await endUserToken(api.admin.tenantId, "alice"));
    const progress = (await api.client(MemberStreakService, alice).getMemberStreak({ memberExternalId: "alice", definitionId: liveDef })).streak!;
    expect(progress.milestones.map((m) => m.reward?.provider)).toEqual([undefined, undefined, undefined]);
    const guestList = await api.client(DefinitionService, { "x-kindling-tenant": api.admin.tenantId }, "connect-binary").listDefinitions({});
    expect(JSON.stringify(guestList.definitions[0]!.milestones.map((m) => m.reward))).not.toContain("POOL-1");

    const recorded = await api.client(ActivityService, service, "grpc").recordActivity({
      activity: { memberRef: { case: "memberExternalId", value: "dave" }, target: { case: "definitionId", value: liveDef }, uniqueIdentifier: "dave-1" },
      includeDefinition: true,
    });
    const result = recorded.results[0]!;
    expect(result.streak!.milestones.map((m) => m.reward?.provider)).toEqual([undefined, undefined, undefined]);
    expect(result.definition!.milestones.map((m) => m.reward?.provider)).toEqual([undefined, undefined, undefined]);

    // Redaction never touches storage, and an admin writing milestones back with the empty secret keeps it.
    await api.client(DefinitionService).updateDefinition({ definitionId: liveDef, definition: { name: "Live one, renamed" }, updateMask: { paths: ["name"] } });
    const { rows } = await db.query("select spec from streak_definition where id = $1", [liveDef]);
    expect(JSON.stringify(rows[0].spec)).toContain("a-webhook-provider-secret-of-32-chars!!");
  });
});

describe("tenant isolation", () => {
  it("isolation/another_tenant_never_reads_or_changes_this_tenants_data", async () => {
    const other: Credentials = await api.newTenant("tenant B");
    const activityId = (await api.client(ActivityService).listActivities({ memberExternalId: "alice" })).activities[0]!.id;

    const defs = api.client(DefinitionService, other);
    await expectFailure(defs.getDefinition({ definitionId: liveDef }), Code.NotFound, "DEFINITION_NOT_FOUND");
    expect((await defs.listDefinitions({})).definitions).toEqual([]);
    await expectFailure(defs.publishDefinition({ definitionId: draftDef }), Code.NotFound, "DEFINITION_NOT_FOUND");

    const streaks = api.client(MemberStreakService, other);
    await expectFailure(streaks.getMemberStreak({ memberExternalId: "alice", definitionId: liveDef }), Code.NotFound, "MEMBER_STREAK_NOT_FOUND");
    expect((await streaks.listMemberStreaks({ memberExternalId: "alice" })).streaks).toEqual([]);

    const rewards = api.client(RewardService, other);
    expect((await rewards.listRewards({})).rewards).toEqual([]);
    await expectFailure(rewards.getReward({ rewardId: bobReward }), Code.NotFound, "REWARD_NOT_FOUND");
    await expectFailure(rewards.claimReward({ target: { case: "rewardId", value: bobReward } }), Code.NotFound, "REWARD_NOT_FOUND");
    await expectFailure(
      rewards.claimReward({ target: { case: "milestone", value: { memberExternalId: "bob", definitionId: liveDef, threshold: 1 } } }),
      Code.NotFound,
      "DEFINITION_NOT_FOUND",
    );
    await expectFailure(rewards.retryReward({ rewardId: bobReward }), Code.NotFound, "REWARD_NOT_FOUND");

    const activities = api.client(ActivityService, other);
    expect((await activities.listActivities({})).activities).toEqual([]);
    await expectFailure(activities.getActivity({ activityId }), Code.NotFound, "ACTIVITY_NOT_FOUND");
    await expectFailure(
      activities.recordActivity({ activity: { memberRef: { case: "memberExternalId", value: "alice" }, target: { case: "definitionId", value: liveDef }, uniqueIdentifier: "cross" } }),
      Code.NotFound,
      "DEFINITION_NOT_FOUND",
    );

    const members = api.client(MemberService, other);
    await expectFailure(members.getMember({ memberExternalId: "alice" }), Code.NotFound, "MEMBER_NOT_FOUND");
    await expectFailure(members.grantFreezes({ memberExternalId: "alice", definitionId: liveDef, count: 1 }), Code.NotFound, "DEFINITION_NOT_FOUND");
    await expectFailure(members.repairStreak({ memberExternalId: "alice", definitionId: liveDef }), Code.NotFound, "DEFINITION_NOT_FOUND");

    const events = api.client(EventService, other);
    expect((await events.listEvents({})).events).toEqual([]);
    expect((await events.listEvents({ memberExternalId: "alice", definitionId: liveDef })).events).toEqual([]);
    expect((await api.client(EventService).listEvents({ memberExternalId: "alice" })).events.length).toBeGreaterThan(0);

    // An end user of tenant B named "alice" is a different member: tenant A's alice stays invisible.
    await api.client(TenantService, other).setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: HS_SECRET } });
    const otherAlice = bearer(await endUserToken(other.tenantId, "alice"));
    expect((await api.client(RewardService, otherAlice).listRewards({})).rewards).toEqual([]);
    expect((await api.client(MemberStreakService, otherAlice).listMemberStreaks({ memberExternalId: "alice" })).streaks).toEqual([]);

    const { rows } = await db.query("select state from reward where id = $1", [bobReward]);
    expect(rows[0].state).toBe("AVAILABLE");
  });
});

describe("rate limit", () => {
  it("rate_limit/over_the_limit_is_resource_exhausted_with_rate_limited", async () => {
    const limited = await startTestApi({ label: "rate_limit", env: { RATE_LIMIT_PER_SECOND: "3" } });
    try {
      const defs = limited.client(DefinitionService);
      // One call first, so the key is verified (scrypt) once and the burst below is not spread out by twelve
      // concurrent verifications on a loaded machine (the bucket refills 3 tokens a second meanwhile).
      await defs.listDefinitions({});
      const outcomes = await Promise.allSettled(Array.from({ length: 12 }, () => defs.listDefinitions({})));
      const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
      expect(outcomes.filter((o) => o.status === "fulfilled").length).toBeGreaterThanOrEqual(1);
      expect(rejected.length).toBeGreaterThanOrEqual(6);
      for (const r of rejected) await expectFailure(Promise.reject(r.reason as Error), Code.ResourceExhausted, "RATE_LIMITED");
    } finally {
      await limited.close();
    }
  });
});
