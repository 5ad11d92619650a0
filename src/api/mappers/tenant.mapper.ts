// Tenants, API keys and JWT settings -> kindling.v1 messages. Secrets (API key hashes, the HS256 secret) never
// leave through here.
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ApiKeyRole, ApiKeySchema, EndUserJwtConfigSchema, JwtAlgorithm, TenantSchema, type ApiKey as ApiKeyMessage, type EndUserJwtConfig as JwtConfigMessage, type Tenant as TenantMessage } from "../../gen/kindling/v1/tenant_pb.js";
import { DEFAULT_MAX_TOKEN_LIFETIME_MS, type ApiKey, type ApiKeyRole as StoredRole, type EndUserJwtConfig, type Tenant } from "../../db/entities/index.ts";

export const apiKeyRoles: Record<StoredRole, ApiKeyRole> = { ADMIN: ApiKeyRole.ADMIN, SERVICE: ApiKeyRole.SERVICE };
export const jwtAlgorithms: Record<EndUserJwtConfig["algorithm"], JwtAlgorithm> = {
  HS256: JwtAlgorithm.HS256,
  RS256: JwtAlgorithm.RS256,
  ES256: JwtAlgorithm.ES256,
};

export function apiKeyMessage(k: ApiKey): ApiKeyMessage {
  return create(ApiKeySchema, {
    id: k.keyId,
    name: k.name,
    role: apiKeyRoles[k.role],
    createTime: timestampFromMs(k.createdAt.getTime()),
    revokeTime: k.revokedAt ? timestampFromMs(k.revokedAt.getTime()) : undefined,
    lastUseTime: k.lastUsedAt ? timestampFromMs(k.lastUsedAt.getTime()) : undefined,
  });
}

export function jwtConfigMessage(c: EndUserJwtConfig): JwtConfigMessage {
  return create(EndUserJwtConfigSchema, {
    algorithm: jwtAlgorithms[c.algorithm],
    publicKeyPem: c.algorithm === "HS256" ? "" : c.key,
    issuer: c.issuer ?? "",
    audience: c.audience ?? "",
    memberClaim: c.memberClaim || "sub",
    updateTime: c.updatedAt === undefined ? undefined : timestampFromMs(c.updatedAt),
    maxTokenLifetime: durationFromMs(c.maxTokenLifetimeMs ?? DEFAULT_MAX_TOKEN_LIFETIME_MS),
  });
}

export function tenantMessage(t: Tenant): TenantMessage {
  return create(TenantSchema, {
    id: t.id,
    name: t.name,
    endUserJwtConfig: t.jwtConfig ? jwtConfigMessage(t.jwtConfig) : undefined,
    createTime: timestampFromMs(t.createdAt.getTime()),
  });
}
