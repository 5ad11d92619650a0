// A tenant's API keys and end-user JWT settings, always read and written within one tenant.
import { randomUUID } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import { ApiKey, Tenant, type ApiKeyRole, type EndUserJwtConfig } from "../entities/index.ts";

export function findTenant(em: EntityManager, tenantId: string): Promise<Tenant | null> {
  return em.findOne(Tenant, { id: tenantId });
}

export async function insertApiKey(
  em: EntityManager,
  input: { tenantId: string; keyId: string; secretHash: string; role: ApiKeyRole; name: string },
): Promise<ApiKey> {
  const key = em.create(ApiKey, { id: randomUUID(), ...input, revokedAt: null });
  await em.flush();
  return key;
}

export function listApiKeys(
  em: EntityManager,
  q: { tenantId: string; includeRevoked: boolean; limit: number; after?: readonly [number, string] | undefined },
): Promise<ApiKey[]> {
  const where: Record<string, unknown> = { tenantId: q.tenantId };
  if (!q.includeRevoked) where["revokedAt"] = null;
  if (q.after) {
    const [ms, id] = q.after;
    where["$or"] = [{ createdAt: { $lt: new Date(ms) } }, { createdAt: new Date(ms), id: { $lt: id } }];
  }
  return em.find(ApiKey, where, { orderBy: { createdAt: "desc", id: "desc" }, limit: q.limit });
}

/** Marks the key revoked (keeping the first revocation time); undefined when the tenant has no such key. */
export async function revokeApiKey(em: EntityManager, tenantId: string, keyId: string, at: Date): Promise<ApiKey | undefined> {
  const key = await em.findOne(ApiKey, { tenantId, keyId });
  if (!key) return undefined;
  if (key.revokedAt === null) {
    key.revokedAt = at;
    await em.flush();
  }
  return key;
}

export async function setJwtConfig(em: EntityManager, tenantId: string, config: EndUserJwtConfig): Promise<Tenant | undefined> {
  const tenant = await em.findOne(Tenant, { id: tenantId });
  if (!tenant) return undefined;
  tenant.jwtConfig = config;
  await em.flush();
  return tenant;
}
