// Member sessions (TenantService.CreateMemberSession): JWTs Kindling signs itself, with the tenant's session key
// (HS256, src/engine/access/browser-access.ts), for tenants that do not sign end-user JWTs of their own. A browser holds
// one and calls the API as that member; it holds no secret, and the token stops working at its expiry or when the
// tenant rotates its key (the token's `kid` then names a key that is gone).
//
// Claims: iss = MEMBER_SESSION_ISSUER (how the auth interceptor tells them from the tenant's own JWTs), sub = the
// member's external id, tenant_id, and definition_id when the session is scoped to one definition.
import { decodeProtectedHeader, jwtVerify, SignJWT, type JWTPayload } from "jose";

export const MEMBER_SESSION_ISSUER = "urn:kindling:member-session";
export const DEFAULT_SESSION_TTL_MS = 60 * 60 * 1000;

export interface SessionKey {
  /** The JWT `kid`: rotation changes it, so a token names the key it was signed with. */
  readonly id: string;
  readonly secret: Uint8Array;
}

export interface MemberSession {
  readonly tenantId: string;
  readonly memberExternalId: string;
  /** The only definition the session may read and act in; undefined for every definition. */
  readonly definitionId?: string | undefined;
}

export function isMemberSession(claims: JWTPayload): boolean {
  return claims.iss === MEMBER_SESSION_ISSUER;
}

/** Signs a session valid from `nowMs` for `ttlMs`; JWT times are whole seconds, so expiry is rounded down. */
export async function signMemberSession(key: SessionKey, session: MemberSession, nowMs: number, ttlMs: number): Promise<{ token: string; expiresAt: number }> {
  const issuedAt = Math.floor(nowMs / 1000);
  const expiresAt = Math.floor((nowMs + ttlMs) / 1000);
  const token = await new SignJWT({ tenant_id: session.tenantId, ...(session.definitionId ? { definition_id: session.definitionId } : {}) })
    .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: key.id })
    .setIssuer(MEMBER_SESSION_ISSUER)
    .setSubject(session.memberExternalId)
    .setIssuedAt(issuedAt)
    .setExpirationTime(expiresAt)
    .sign(key.secret);
  return { token, expiresAt: expiresAt * 1000 };
}

/** The key id a session token names, or undefined if it has none. */
export function sessionKeyId(token: string): string | undefined {
  try {
    const kid = decodeProtectedHeader(token).kid;
    return typeof kid === "string" && kid.length > 0 ? kid : undefined;
  } catch {
    return undefined;
  }
}

// The key imported for WebCrypto once per key rather than on every verification (jose imports raw bytes on
// each call: about two thirds of a verification's CPU, measured).
type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;
const importedKeys = new WeakMap<SessionKey, Promise<HmacKey>>();
function cryptoKey(key: SessionKey): Promise<HmacKey> {
  let imported = importedKeys.get(key);
  if (!imported) {
    imported = crypto.subtle.importKey("raw", key.secret as Uint8Array<ArrayBuffer>, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    importedKeys.set(key, imported);
  }
  return imported;
}

export type SessionCheck = { ok: true; session: MemberSession } | { ok: false; problem: string };

/** Verifies a session token against the tenant's current key (undefined when the tenant has none). */
export async function verifyMemberSession(token: string, key: SessionKey | undefined, nowMs: number): Promise<SessionCheck> {
  if (!key || sessionKeyId(token) !== key.id) return { ok: false, problem: "member session was signed with a key that is no longer valid (rotated)" };
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, await cryptoKey(key), { algorithms: ["HS256"], issuer: MEMBER_SESSION_ISSUER, currentDate: new Date(nowMs), requiredClaims: ["exp", "sub"] }));
  } catch (error) {
    return { ok: false, problem: `invalid member session: ${(error as Error).message}` };
  }
  const tenantId = payload["tenant_id"];
  const definitionId = payload["definition_id"];
  if (typeof tenantId !== "string" || typeof payload.sub !== "string" || payload.sub.length === 0) return { ok: false, problem: "member session lacks its claims" };
  if (definitionId !== undefined && typeof definitionId !== "string") return { ok: false, problem: "member session has a malformed definition_id" };
  return { ok: true, session: { tenantId, memberExternalId: payload.sub, definitionId } };
}
