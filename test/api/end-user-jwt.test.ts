// End-user JWTs under attack (issue 17, item 7), through the API as a browser calls it (Connect JSON over HTTP):
// each way of forging, replaying or stretching a token is refused with UNAUTHENTICATED / INVALID_TOKEN, as the
// rules beside EndUserJwtConfig in proto/kindling/v1/tenant.proto say. Every case also shows the token that the
// same tenant does accept, so a refusal is the check at work, not a broken fixture.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { SignJWT, UnsecuredJWT, type JWTPayload } from "jose";
import { Code, ConnectError } from "@connectrpc/connect";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { JwtAlgorithm } from "../../src/gen/kindling/v1/tenant_pb.js";
import { ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { startTestApi, type Credentials, type TestApi } from "../support/api.ts";
import { createLiveDefinition, expectFailure } from "../support/fixtures.ts";

const SECRET_A = "tenant-a-hs256-secret-0123456789-abcdefgh";
const SECRET_B = "tenant-b-hs256-secret-0123456789-abcdefgh";
const HOUR = 3600;

let api: TestApi;
let a: Credentials; // HS256 with SECRET_A
let b: Credentials; // HS256 with SECRET_B
let rs: Credentials; // RS256
let rsPrivate: string; // PKCS#8 PEM
let rsStoredPem: string;
let clockOffset = 0;
const clock = { now: () => Date.now() + clockOffset, advance: (ms: number) => (clockOffset += ms) };
const nowS = () => Math.floor(clock.now() / 1000);

const encode = (text: string) => new TextEncoder().encode(text);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A token with exactly these claims (nothing added), signed with `key` under `alg`. */
function sign(claims: JWTPayload, key: Parameters<SignJWT["sign"]>[0], alg = "HS256"): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, typ: "JWT" }).sign(key);
}
/** The usual claims: tenant, member, issued now, expiring in an hour. */
const claims = (tenant: Credentials, extra: JWTPayload = {}): JWTPayload => ({ tenant_id: tenant.tenantId, sub: "alice", iat: nowS(), exp: nowS() + HOUR, ...extra });

/** The member's own streaks, read as the token's holder: "ok", or the refusal as "code REASON". */
async function answer(token: string): Promise<string> {
  try {
    await api.client(MemberStreakService, bearer(token)).listMemberStreaks({ memberExternalId: "alice" });
    return "ok";
  } catch (error) {
    const ce = ConnectError.from(error);
    return `${Code[ce.code]} ${ce.findDetails(ErrorInfoSchema)[0]?.reason}`;
  }
}
const REFUSED = "Unauthenticated INVALID_TOKEN";

beforeAll(async () => {
  api = await startTestApi({ label: "end_user_jwt", now: clock.now });
  a = api.admin;
  b = await api.newTenant("tenant b");
  rs = await api.newTenant("tenant rs");
  await api.client(TenantService, a).setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: SECRET_A } });
  await api.client(TenantService, b).setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: SECRET_B } });
  const pair = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
  rsPrivate = pair.privateKey;
  const set = await api.client(TenantService, rs).setEndUserJwtConfig({ algorithm: JwtAlgorithm.RS256, key: { case: "publicKeyPem", value: pair.publicKey } });
  // The key exactly as Kindling stores and publishes it: what an attacker would use as an HMAC secret.
  rsStoredPem = set.config!.publicKeyPem;
});
afterAll(async () => {
  await api?.close();
});

describe("end-user JWTs", () => {
  it("jwt/a_well_formed_token_is_accepted_as_its_member", async () => {
    expect(await answer(await sign(claims(a), encode(SECRET_A)))).toBe("ok");
    expect(await answer(await sign(claims(rs), createPrivateKey(rsPrivate), "RS256"))).toBe("ok");
  });

  it("jwt/alg_none_is_refused", async () => {
    const unsigned = new UnsecuredJWT(claims(a)).encode(); // header {"alg":"none"}, empty signature
    expect(unsigned.endsWith(".")).toBe(true);
    expect(await answer(unsigned)).toBe(REFUSED);
    // The same with a signature part left in place from a genuine token.
    const genuine = await sign(claims(a), encode(SECRET_A));
    expect(await answer(`${unsigned}${genuine.split(".")[2]}`)).toBe(REFUSED);
    // Nor as a member session (Kindling's own tokens, told apart by their issuer).
    const session = await api.client(TenantService, a).createMemberSession({ memberExternalId: "alice" });
    expect(await answer(session.token)).toBe("ok");
    const sessionClaims = JSON.parse(Buffer.from(session.token.split(".")[1]!, "base64url").toString()) as JWTPayload;
    expect(await answer(new UnsecuredJWT(sessionClaims).encode())).toBe(REFUSED);
  });

  it("jwt/a_key_embedded_in_the_token_header_is_not_trusted", async () => {
    // The attacker signs with a key of their own and names its public half in the header (`jwk`, `jku`, `x5c`).
    const attacker = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = attacker.publicKey.export({ format: "jwk" });
    const token = await new SignJWT(claims(rs)).setProtectedHeader({ alg: "RS256", jwk: { kty: "RSA", n: jwk.n!, e: jwk.e! }, jku: "https://evil.example/jwks.json" }).sign(attacker.privateKey);
    expect(await answer(token)).toBe(REFUSED);
  });

  it("jwt/hs256_signed_with_the_rs256_public_key_is_refused", async () => {
    // Algorithm confusion: the tenant verifies RS256 with a public key; a verifier that trusted the header's `alg`
    // would check this HMAC with the public key's bytes as the secret, and accept it.
    expect(await answer(await sign(claims(rs), encode(rsStoredPem), "HS256"))).toBe(REFUSED);
    expect(await answer(await sign(claims(rs), encode(rsStoredPem.trim()), "HS256"))).toBe(REFUSED);
  });

  it("jwt/expired_and_not_yet_valid_are_refused", async () => {
    expect(await answer(await sign(claims(a, { exp: nowS() - 1 }), encode(SECRET_A)))).toBe(REFUSED);
    expect(await answer(await sign(claims(a, { nbf: nowS() + 60 }), encode(SECRET_A)))).toBe(REFUSED);

    // One token through its life on the server's clock: not yet valid, valid, then expired at `exp` exactly.
    const t0 = nowS();
    const token = await sign(claims(a, { iat: t0, nbf: t0 + 60, exp: t0 + 120 }), encode(SECRET_A));
    expect(await answer(token)).toBe(REFUSED);
    clock.advance(61_000);
    expect(await answer(token)).toBe("ok");
    clock.advance((t0 + 120) * 1000 - clock.now());
    expect(nowS()).toBe(t0 + 120);
    expect(await answer(token)).toBe(REFUSED);
  });

  it("jwt/without_exp_is_refused", async () => {
    const { exp: _exp, ...noExp } = claims(a);
    expect(await answer(await sign(noExp, encode(SECRET_A)))).toBe(REFUSED);
    const error = await expectFailure(api.client(MemberStreakService, bearer(await sign(noExp, encode(SECRET_A)))).listMemberStreaks({ memberExternalId: "alice" }), Code.Unauthenticated, "INVALID_TOKEN");
    expect(error.rawMessage).toMatch(/exp/);
  });

  it("jwt/a_lifetime_over_the_tenants_maximum_is_refused", async () => {
    const tenants = api.client(TenantService, a);
    // The default maximum is 24 hours, and the configuration says so.
    expect((await tenants.getTenant({})).tenant!.endUserJwtConfig!.maxTokenLifetime).toMatchObject({ seconds: 86_400n });
    const t = nowS();
    expect(await answer(await sign(claims(a, { iat: t, exp: t + 24 * HOUR }), encode(SECRET_A)))).toBe("ok");
    expect(await answer(await sign(claims(a, { iat: t, exp: t + 24 * HOUR + 1 }), encode(SECRET_A)))).toBe(REFUSED);
    // Without `iat` the lifetime counts from now; a future `iat` buys nothing (counted from now too).
    const { iat: _iat, ...noIat } = claims(a);
    expect(await answer(await sign({ ...noIat, exp: t + 24 * HOUR + 5 }, encode(SECRET_A)))).toBe(REFUSED);
    expect(await answer(await sign({ ...noIat, exp: t + HOUR }, encode(SECRET_A)))).toBe("ok");
    expect(await answer(await sign(claims(a, { iat: t + 365 * 24 * HOUR, exp: t + 365 * 24 * HOUR + HOUR }), encode(SECRET_A)))).toBe(REFUSED);
    // An issued token that has lived part of its life is measured from `iat`, not from now.
    expect(await answer(await sign(claims(a, { iat: t - 23 * HOUR, exp: t + 2 * HOUR }), encode(SECRET_A)))).toBe(REFUSED);

    // A tenant may lower (or raise, up to 30 days) its maximum.
    const set = await tenants.setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: SECRET_A }, maxTokenLifetime: { seconds: BigInt(HOUR) } });
    expect(set.config!.maxTokenLifetime).toMatchObject({ seconds: BigInt(HOUR) });
    try {
      expect(await answer(await sign(claims(a, { iat: t, exp: t + HOUR }), encode(SECRET_A)))).toBe("ok");
      expect(await answer(await sign(claims(a, { iat: t, exp: t + HOUR + 1 }), encode(SECRET_A)))).toBe(REFUSED);
      for (const seconds of [59n, 30n * 24n * 3600n + 1n]) {
        await expectFailure(
          tenants.setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: SECRET_A }, maxTokenLifetime: { seconds } }),
          Code.InvalidArgument,
          "INVALID_REQUEST",
        );
      }
      // The refused settings changed nothing.
      expect((await tenants.getTenant({})).tenant!.endUserJwtConfig!.maxTokenLifetime).toMatchObject({ seconds: BigInt(HOUR) });
    } finally {
      await tenants.setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: SECRET_A } });
    }
  });

  it("jwt/wrong_issuer_or_audience_is_refused_when_configured", async () => {
    const tenants = api.client(TenantService, b);
    // Not configured: any issuer and audience.
    expect(await answer(await sign(claims(b, { iss: "https://anyone.example", aud: "anything" }), encode(SECRET_B)))).toBe("ok");
    await tenants.setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: SECRET_B }, issuer: "https://id.brand.example", audience: "kindling" });
    try {
      const signed = (extra: JWTPayload) => sign(claims(b, extra), encode(SECRET_B));
      expect(await answer(await signed({ iss: "https://id.brand.example", aud: "kindling" }))).toBe("ok");
      expect(await answer(await signed({ iss: "https://id.brand.example", aud: ["other-api", "kindling"] }))).toBe("ok");
      expect(await answer(await signed({ iss: "https://evil.example", aud: "kindling" }))).toBe(REFUSED);
      expect(await answer(await signed({ iss: "https://id.brand.example", aud: "other-api" }))).toBe(REFUSED);
      expect(await answer(await signed({ aud: "kindling" }))).toBe(REFUSED);
      expect(await answer(await signed({ iss: "https://id.brand.example" }))).toBe(REFUSED);
    } finally {
      await tenants.setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: SECRET_B } });
    }
  });

  it("jwt/another_tenants_key_is_refused", async () => {
    // Tenant A's id, signed with tenant B's secret (B's backend, or anyone holding B's key, forging A's members).
    expect(await answer(await sign(claims(a), encode(SECRET_B)))).toBe(REFUSED);
    expect(await answer(await sign(claims(b), encode(SECRET_A)))).toBe(REFUSED);
    // RS256 tenant: a token signed by another RSA key.
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
    expect(await answer(await sign(claims(rs), other.privateKey, "RS256"))).toBe(REFUSED);
    // A genuine token of tenant B acts in tenant B only: A's definitions are not found.
    const defA = (await createLiveDefinition(api.client(DefinitionService, a), { name: "A only" })).id;
    const asB = api.client(DefinitionService, bearer(await sign(claims(b), encode(SECRET_B))));
    await expectFailure(asB.getDefinition({ definitionId: defA }), Code.NotFound, "DEFINITION_NOT_FOUND");
  });

  it("jwt/a_tampered_payload_is_refused", async () => {
    const genuine = await sign(claims(a), encode(SECRET_A));
    expect(await answer(genuine)).toBe("ok");
    const [header, payload, signature] = genuine.split(".") as [string, string, string];
    const reencode = (p: JWTPayload) => Buffer.from(JSON.stringify(p)).toString("base64url");
    const decoded = JSON.parse(Buffer.from(payload, "base64url").toString()) as JWTPayload;
    // Another member, a later expiry, and the same claims re-serialised with a space: the signature no longer fits.
    expect(await answer(`${header}.${reencode({ ...decoded, sub: "bob" })}.${signature}`)).toBe(REFUSED);
    expect(await answer(`${header}.${reencode({ ...decoded, exp: decoded.exp! + 60 })}.${signature}`)).toBe(REFUSED);
    expect(await answer(`${header}.${Buffer.from(JSON.stringify(decoded, null, 1)).toString("base64url")}.${signature}`)).toBe(REFUSED);
    // A flipped bit in the signature.
    const flipped = Buffer.from(signature, "base64url");
    flipped[0]! ^= 1;
    expect(await answer(`${header}.${payload}.${flipped.toString("base64url")}`)).toBe(REFUSED);
  });
});
