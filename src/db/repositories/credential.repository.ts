// Look-ups the auth interceptor needs, as plain reads on a fresh EntityManager fork each time, and the key's last use.
import type { EntityManager } from "@mikro-orm/postgresql";
import { ApiKey, Tenant } from "../entities/index.ts";
import type { CredentialStore } from "../../api/interceptors/auth.interceptor.ts";

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
