import { randomUUID } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import { issueCredential } from "../../auth/credentials.ts";
import { ApiKey, Tenant } from "../entities/index.ts";

export async function createTenantWithAdminKey(
  em: EntityManager,
  input: { id: string; name: string },
): Promise<{ tenantId: string; keyId: string; secret: string }> {
  const credential = await issueCredential();
  await em.transactional(async (tx) => {
    tx.create(Tenant, { id: input.id, name: input.name, jwtConfig: null });
    tx.create(ApiKey, { id: randomUUID(), tenantId: input.id, keyId: credential.keyId, secretHash: credential.secretHash, role: "ADMIN", name: "initial admin key" });
  });
  return { tenantId: input.id, keyId: credential.keyId, secret: credential.secret };
}
