// Look-ups the auth interceptor needs, as plain reads on a fresh EntityManager fork each time, and the key's last use.
import type { EntityManager } from "@mikro-orm/postgresql";
import { ApiKey, Tenant, type EndUserJwtConfig } from "../entities/index.ts";
import type { SessionKey } from "../../auth/member-session.ts";

/** What the API's auth interceptor reads (src/api/interceptors/auth.interceptor.ts). */
export interface CredentialStore {
  findApiKey(keyId: string): Promise<{ tenantId: string; role: "ADMIN" | "SERVICE"; secretHash: string; revoked: boolean } | undefined>;
  /** Records that the key authenticated a call at `at` (a minute boundary); never moves the time back. */
  touchApiKey(keyId: string, at: Date): Promise<void>;
  findTenantJwtConfig(tenantId: string): Promise<EndUserJwtConfig | null | undefined>;
  tenantExists(tenantId: string): Promise<boolean>;
  /** The tenant's member-session key; `kid` is the key id the token names (see BrowserAccess.sessionKey). */
  findSessionKey(tenantId: string, kid: string): Promise<SessionKey | undefined>;
}

export function createCredentialStore(em: () => EntityManager, findSessionKey: CredentialStore["findSessionKey"]): CredentialStore {
  return {
    findSessionKey,
    async findApiKey(keyId) {
      const key = await em().findOne(ApiKey, { keyId });
      return key ? { tenantId: key.tenantId, role: key.role, secretHash: key.secretHash, revoked: key.revokedAt !== null } : undefined;
    },
    async touchApiKey(keyId, at) {
      // Only forward: processes writing the same minute, or one that is behind, leave a later time alone.
      await em().nativeUpdate(ApiKey, { keyId, $or: [{ lastUsedAt: null }, { lastUsedAt: { $lt: at } }] }, { lastUsedAt: at });
    },
    async findTenantJwtConfig(tenantId) {
      const tenant = await em().findOne(Tenant, { id: tenantId });
      return tenant?.jwtConfig;
    },
    async tenantExists(tenantId) {
      return (await em().count(Tenant, { id: tenantId })) > 0;
    },
  };
}
