// Authentication and the permission matrix (PRODUCT §2, the Gamopanda doc's Admin / End user / Guest table).
//   - `apikey` + `secretkey` headers, or `Authorization: Bearer <keyId>.<secret>`: an API key with role ADMIN or
//     SERVICE (server-to-server).
//   - `Authorization: Bearer <JWT>`: an end user; tenant (`tenant_id` claim) and member (`sub`) come from the
//     token, verified with the tenant's configured HS256 secret or RS256/ES256 public key (as in the Phoenix doc),
//     or — for a member session Kindling minted (CreateMemberSession, src/auth/member-session.ts) — with the
//     tenant's session key; such a session may be scoped to one definition.
//   - neither, with `x-kindling-tenant: <tenant id>`: a guest, who may read live definitions only.
// Which roles may call which method is declared beside each service (see routes.ts); handlers additionally
// restrict end users to their own member.
import { Code, type Interceptor } from "@connectrpc/connect";
import { decodeJwt, importSPKI, jwtVerify, type JWTPayload } from "jose";
import { ApiError, unauthenticated, permissionDenied, rejectWith } from "../errors.ts";
import { principalKey, vouchedPrincipalKey, type Principal, type Role } from "../context.ts";
import { parseServiceToken, secretFingerprint, verifySecret } from "../../auth/credentials.ts";
import { DEFAULT_MAX_TOKEN_LIFETIME_MS } from "../../db/entities/index.ts";
import { isMemberSession, sessionKeyId, verifyMemberSession } from "../../auth/member-session.ts";
import type { CredentialStore } from "../../db/repositories/credential.repository.ts";

/** Roles allowed per fully-qualified method name (`kindling.v1.DefinitionService/CreateDefinition`). */
export type PermissionMatrix = ReadonlyMap<string, readonly Role[]>;

const VERIFIED_TTL_MS = 60_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Verified API secrets, by fingerprint, so scrypt runs once per key per minute rather than on every request.
 * `forget` drops a key at once: a revocation on any API process reaches every process's cache through a
 * PostgreSQL notification (src/engine/access/key-revocations.ts), so a revoked key stops working everywhere within a
 * second. While notifications cannot arrive (the listening connection is down), `distrust` empties the cache and
 * keeps it empty, so every call verifies against the database, until `trust` (listening again).
 *
 * A verification in flight when its key is forgotten (its row read before the revocation committed) must not put
 * the key back: `mark` is taken before the row is read, and `set` ignores a principal whose key was forgotten
 * since, or any principal read before the last `distrust` or `trust`.
 */
export interface VerifiedKeyCache {
  get(fingerprint: string): Principal | undefined;
  /** A mark to pass to `set`, taken before the key's row is read. */
  mark(): number;
  set(fingerprint: string, principal: Principal, mark: number): void;
  forget(keyId: string): void;
  distrust(): void;
  trust(): void;
}

export function createVerifiedKeyCache(ttlMs: number = VERIFIED_TTL_MS, now: () => number = Date.now): VerifiedKeyCache {
  const entries = new Map<string, { principal: Principal; until: number }>();
  // The mark at which each key was last forgotten; older than a TTL is irrelevant (no verification runs that long).
  const forgotten = new Map<string, { mark: number; at: number }>();
  let marks = 0;
  let trusted = true;
  let resetMark = -1;
  return {
    get(fingerprint) {
      const cached = entries.get(fingerprint);
      return cached && cached.until > now() ? cached.principal : undefined;
    },
    mark() {
      return marks;
    },
    set(fingerprint, principal, mark) {
      if (!trusted || mark <= resetMark) return;
      const gone = forgotten.get(principal.credentialId);
      if (gone && gone.mark >= mark) return;
      if (entries.size > 10_000) entries.clear();
      entries.set(fingerprint, { principal, until: now() + ttlMs });
    },
    forget(keyId) {
      for (const [fingerprint, entry] of entries) if (entry.principal.credentialId === keyId) entries.delete(fingerprint);
      if (forgotten.size > 10_000) for (const [id, gone] of forgotten) if (gone.at < now() - ttlMs) forgotten.delete(id);
      forgotten.set(keyId, { mark: marks++, at: now() });
    },
    distrust() {
      trusted = false;
      resetMark = marks++;
      entries.clear();
    },
    trust() {
      trusted = true;
      resetMark = marks++;
    },
  };
}

export function createAuthInterceptor(
  store: CredentialStore,
  permissions: PermissionMatrix,
  now: () => number = Date.now,
  verified: VerifiedKeyCache = createVerifiedKeyCache(VERIFIED_TTL_MS, now),
): Interceptor {
  // The minute each key was last recorded as used by this process: ApiKey.last_use_time is written once a minute
  // per key at most, beside the call rather than in its way. A failed write is forgotten, so the next call retries.
  const recordedUse = new Map<string, number>();
  function noteUse(keyId: string): void {
    const minute = Math.floor(now() / 60_000) * 60_000;
    if (recordedUse.get(keyId) === minute) return;
    if (recordedUse.size > 100_000) recordedUse.clear();
    recordedUse.set(keyId, minute);
    store.touchApiKey(keyId, new Date(minute)).catch(() => recordedUse.delete(keyId));
  }

  /** The key's principal: at once when its secret was verified lately (the common case), else a promise of it. */
  function apiKeyPrincipal(keyId: string, secret: string): Principal | Promise<Principal> {
    const fingerprint = secretFingerprint(keyId, secret);
    const cached = verified.get(fingerprint);
    if (cached) {
      noteUse(keyId);
      return cached;
    }
    return verifyApiKey(keyId, secret, fingerprint);
  }

  async function verifyApiKey(keyId: string, secret: string, fingerprint: string): Promise<Principal> {
    const mark = verified.mark();
    const key = await store.findApiKey(keyId);
    if (!key || key.revoked || !(await verifySecret(secret, key.secretHash))) throw unauthenticated("invalid API key or secret");
    const principal: Principal = { role: key.role, tenantId: key.tenantId, credentialId: keyId };
    verified.set(fingerprint, principal, mark);
    noteUse(keyId);
    return principal;
  }

  async function endUserPrincipal(token: string): Promise<Principal> {
    let claims: JWTPayload;
    try {
      claims = decodeJwt(token);
    } catch {
      throw unauthenticated("malformed bearer token");
    }
    const tenantId = typeof claims["tenant_id"] === "string" ? claims["tenant_id"] : undefined;
    if (!tenantId || !UUID.test(tenantId)) throw unauthenticated("token has no valid tenant_id claim");
    if (isMemberSession(claims)) return memberSessionPrincipal(token, tenantId);
    const config = await store.findTenantJwtConfig(tenantId);
    if (!config) throw unauthenticated("tenant does not accept end-user tokens");
    const key = config.algorithm === "HS256" ? new TextEncoder().encode(config.key) : await importSPKI(config.key, config.algorithm);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: [config.algorithm],
        ...(config.issuer ? { issuer: config.issuer } : {}),
        ...(config.audience ? { audience: config.audience } : {}),
        currentDate: new Date(now()),
        // A token without `exp` would be valid forever.
        requiredClaims: ["exp"],
      }));
    } catch (error) {
      throw new ApiError(Code.Unauthenticated, "INVALID_TOKEN", `invalid end-user token: ${(error as Error).message}`, { cause: error });
    }
    // The lifetime is counted from `iat`, or from now when `iat` is absent or in the future (a future `iat` must not
    // buy a token a longer life), so no token outlives the tenant's maximum from the moment it is presented.
    const maxLifetimeSeconds = (config.maxTokenLifetimeMs ?? DEFAULT_MAX_TOKEN_LIFETIME_MS) / 1000;
    const nowSeconds = Math.floor(now() / 1000);
    const issuedAt = typeof payload.iat === "number" ? Math.min(payload.iat, nowSeconds) : nowSeconds;
    if (payload.exp! - issuedAt > maxLifetimeSeconds) {
      throw new ApiError(Code.Unauthenticated, "INVALID_TOKEN", `invalid end-user token: lifetime (exp - iat) over the tenant's maximum of ${maxLifetimeSeconds} s`);
    }
    const claim = config.memberClaim || "sub";
    const member = payload[claim];
    if (typeof member !== "string" || member.length === 0) throw unauthenticated(`token has no ${claim} (member external id)`);
    return { role: "END_USER", tenantId, memberExternalId: member, credentialId: `jwt:${tenantId}:${member}` };
  }

  async function memberSessionPrincipal(token: string, tenantId: string): Promise<Principal> {
    const key = await store.findSessionKey(tenantId, sessionKeyId(token) ?? "");
    const checked = await verifyMemberSession(token, key, now());
    if (!checked.ok) throw new ApiError(Code.Unauthenticated, "INVALID_TOKEN", checked.problem);
    const { memberExternalId, definitionId } = checked.session;
    return { role: "END_USER", tenantId, memberExternalId, definitionId, credentialId: `session:${tenantId}:${memberExternalId}` };
  }

  /**
   * The caller's principal: at once for a key verified lately, else a promise of it. Throws (or rejects) with
   * UNAUTHENTICATED.
   */
  function authenticate(header: Headers): Principal | Promise<Principal> {
    const apiKey = header.get("apikey");
    const secretKey = header.get("secretkey");
    if (apiKey !== null || secretKey !== null) {
      if (!apiKey || !secretKey) throw unauthenticated("send both apikey and secretkey headers");
      return apiKeyPrincipal(apiKey, secretKey);
    }
    const authorization = header.get("authorization");
    if (authorization !== null) {
      const match = /^Bearer\s+(\S+)$/i.exec(authorization);
      if (!match?.[1]) throw unauthenticated("Authorization must be `Bearer <token>`");
      const service = parseServiceToken(match[1]);
      return service ? apiKeyPrincipal(service.keyId, service.secret) : endUserPrincipal(match[1]);
    }
    const tenantId = header.get("x-kindling-tenant");
    if (tenantId !== null) return guestPrincipal(tenantId);
    throw unauthenticated("missing credentials: send apikey/secretkey, a bearer token, or x-kindling-tenant for guest access");
  }

  async function guestPrincipal(tenantId: string): Promise<Principal> {
    if (!UUID.test(tenantId) || !(await store.tenantExists(tenantId))) throw unauthenticated("unknown tenant in x-kindling-tenant");
    return { role: "GUEST", tenantId, credentialId: `guest:${tenantId}` };
  }

  // The matrix's entry per method descriptor, looked up by name once per method rather than once per call.
  const byMethod = new WeakMap<object, readonly Role[] | null>();
  const allowedFor = (service: { readonly typeName: string }, method: { readonly name: string }) => {
    let allowed = byMethod.get(method);
    if (allowed === undefined) byMethod.set(method, (allowed = permissions.get(`${service.typeName}/${method.name}`) ?? null));
    return allowed ?? undefined;
  };

  // Not an async function (see rate-limit.interceptor.ts): a call whose key was verified lately goes on at once,
  // without waiting a turn of the microtask queue; any other waits for its verification. A refusal is a rejection.
  return (next) => (req) => {
    const allowed = allowedFor(req.service, req.method);
    // Infrastructure services (health, reflection) are registered without a matrix entry and stay open.
    if (allowed === undefined) return next(req);
    const admit = (principal: Principal) => {
      if (!allowed.includes(principal.role)) throw permissionDenied(`${principal.role.toLowerCase().replace("_", " ")} may not call ${req.method.name}`);
      req.contextValues.set(principalKey, principal);
      return next(req);
    };
    let principal: Principal | Promise<Principal>;
    try {
      principal = req.contextValues.get(vouchedPrincipalKey) ?? authenticate(req.header);
      if (!(principal instanceof Promise)) return admit(principal);
    } catch (error) {
      return rejectWith(error);
    }
    return principal.then(admit);
  };
}

/**
 * The tenant a request's credentials name, read the way `authenticate` reads them but without verifying
 * anything: "api-key" for a tenant's secret (apikey/secretkey headers or a service token), the tenant of an
 * end-user JWT or member session (its `tenant_id` claim), or of a guest (`x-kindling-tenant`). The CORS layer
 * (src/api/cors.ts) uses it to decide whether a browser page may read the answer; it need not verify, because
 * the answer to credentials that do not verify is UNAUTHENTICATED, and the answer to ones that do is data of
 * exactly the tenant named here.
 */
export function credentialTenant(header: { get(name: string): string | null }): { kind: "tenant"; tenantId: string } | { kind: "api-key" } | { kind: "none" } {
  if (header.get("apikey") !== null || header.get("secretkey") !== null) return { kind: "api-key" };
  const authorization = header.get("authorization");
  if (authorization !== null) {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
    if (!token) return { kind: "none" };
    if (parseServiceToken(token)) return { kind: "api-key" };
    try {
      const tenantId = decodeJwt(token)["tenant_id"];
      return typeof tenantId === "string" && UUID.test(tenantId) ? { kind: "tenant", tenantId } : { kind: "none" };
    } catch {
      return { kind: "none" };
    }
  }
  const guest = header.get("x-kindling-tenant");
  return guest !== null && UUID.test(guest) ? { kind: "tenant", tenantId: guest } : { kind: "none" };
}
