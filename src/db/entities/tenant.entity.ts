import { defineEntity, p } from "@mikro-orm/core";

/** End-user JWT verification settings of a tenant (PRODUCT §2: tenant and member resolved from the token). */
export interface EndUserJwtConfig {
  readonly algorithm: "HS256" | "RS256" | "ES256";
  /** HS256 shared secret, or the PEM public key for RS256/ES256. */
  readonly key: string;
  readonly issuer?: string;
  readonly audience?: string;
  /** The claim holding the member's external id; `sub` when absent. */
  readonly memberClaim?: string;
  /** When the configuration was last set, epoch ms. */
  readonly updatedAt?: number;
  /** The longest lifetime (exp - iat) a token may have, ms; DEFAULT_MAX_TOKEN_LIFETIME_MS when absent. */
  readonly maxTokenLifetimeMs?: number;
}

/** A tenant's end-user tokens live at most this long unless its configuration says otherwise. */
export const DEFAULT_MAX_TOKEN_LIFETIME_MS = 24 * 60 * 60 * 1000;

const TenantSchema = defineEntity({
  name: "Tenant",
  tableName: "tenant",
  properties: {
    id: p.uuid().primary(),
    name: p.string().length(256),
    jwtConfig: p.json<EndUserJwtConfig>().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});

export class Tenant extends TenantSchema.class {}
TenantSchema.setClass(Tenant);
export { TenantSchema };
