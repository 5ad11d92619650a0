// Look-ups the auth interceptor needs, as plain reads on a fresh EntityManager fork each time.
import type { EntityManager } from "@mikro-orm/postgresql";
import { ApiKey, Tenant } from "../entities/index.ts";
import type { CredentialStore } from "../../api/interceptors/auth.interceptor.ts";

export function createCredentialStore(em: () => EntityManager): CredentialStore {
  return {
    async findApiKey(keyId) {
      const key = await em().findOne(ApiKey, { keyId });
      return key ? { tenantId: key.tenantId, role: key.role, secretHash: key.secretHash, revoked: key.revokedAt !== null } : undefined;
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
