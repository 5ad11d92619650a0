import { defineEntity, p } from "@mikro-orm/core";

export type ApiKeyRole = "ADMIN" | "SERVICE";

const ApiKeySchema = defineEntity({
  name: "ApiKey",
  tableName: "api_key",
  properties: {
    id: p.uuid().primary(),
    tenantId: p.uuid().index(),
    /** Public key id sent as the `apikey` header. */
    keyId: p.string().length(64).unique(),
    /** scrypt hash of the secret; the secret itself is shown once and never stored. */
    secretHash: p.string().length(256),
    role: p.string().length(16).$type<ApiKeyRole>(),
    name: p.string().length(256).default(""),
    createdAt: p.datetime().onCreate(() => new Date()),
    revokedAt: p.datetime().nullable(),
    /** When the key last authenticated a call, floored to the minute (written at most once a minute per process). */
    lastUsedAt: p.datetime().nullable(),
  },
});

export class ApiKey extends ApiKeySchema.class {}
ApiKeySchema.setClass(ApiKey);
export { ApiKeySchema };
