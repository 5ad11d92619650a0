import { defineEntity, p } from "@mikro-orm/core";

/** A tenant's leaderboard settings (migration 0009); read and written on `pg` by src/engine/history/leaderboard.ts. */
const TenantLeaderboardSettingsSchema = defineEntity({
  name: "TenantLeaderboardSettings",
  tableName: "tenant_leaderboard_settings",
  properties: {
    tenantId: p.uuid().primary(),
    /** End users (JWTs, member sessions) may not read the tenant's leaderboards. */
    hiddenFromEndUsers: p.boolean().default(false),
    updatedAt: p.datetime(),
  },
});

export class TenantLeaderboardSettings extends TenantLeaderboardSettingsSchema.class {}
TenantLeaderboardSettingsSchema.setClass(TenantLeaderboardSettings);
export { TenantLeaderboardSettingsSchema };
