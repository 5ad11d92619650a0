import { defineEntity, p } from "@mikro-orm/core";

/**
 * A tenant's browser access (issue 12): its allowed CORS origins and the key its member sessions are signed with.
 * Read and written on `pg` by src/engine/access/browser-access.ts (every API process holds it in memory); the entity
 * keeps the ORM's view of the table in step with migration 0008.
 */
const TenantBrowserAccessSchema = defineEntity({
  name: "TenantBrowserAccess",
  tableName: "tenant_browser_access",
  properties: {
    tenantId: p.uuid().primary(),
    /** Origins as browsers send them (`https://shop.example.com`). */
    origins: p.array().default([]),
    originsUpdatedAt: p.datetime().nullable(),
    /** HS256 key of member sessions; null until the first CreateMemberSession. */
    sessionKey: p.blob().nullable(),
    /** The JWT `kid` of the current key; rotation replaces key and id together. */
    sessionKeyId: p.string().length(64).nullable(),
    sessionKeyRotatedAt: p.datetime().nullable(),
  },
});

export class TenantBrowserAccess extends TenantBrowserAccessSchema.class {}
TenantBrowserAccessSchema.setClass(TenantBrowserAccess);
export { TenantBrowserAccessSchema };
