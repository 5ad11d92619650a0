export * from "./tenant.entity.ts";
export * from "./api-key.entity.ts";
export * from "./member.entity.ts";
export * from "./streak-definition.entity.ts";
export * from "./activity.entity.ts";
export * from "./member-streak.entity.ts";
export * from "./reward.entity.ts";
export * from "./streak-event.entity.ts";
export * from "./outbox-message.entity.ts";
export * from "./webhook-subscription.entity.ts";
export * from "./webhook-delivery.entity.ts";
export * from "./reward-code-pool-usage.entity.ts";
export * from "./tenant-browser-access.entity.ts";
export * from "./tenant-leaderboard-settings.entity.ts";
export * from "./member-erasure-tally.entity.ts";
export * from "./definition-stats-day.entity.ts";
export * from "./streak-window.entity.ts";
export * from "./team.entity.ts";
export * from "./retention.entity.ts";

import { ActivityKeySchema, ActivityRetentionHoldSchema, ActivitySchema } from "./activity.entity.ts";
import { ApiKeySchema } from "./api-key.entity.ts";
import { MemberStreakSchema, MemberStreakStateSchema } from "./member-streak.entity.ts";
import { MemberSchema } from "./member.entity.ts";
import { OutboxMessageSchema } from "./outbox-message.entity.ts";
import { RewardSchema } from "./reward.entity.ts";
import { RewardCodePoolUsageSchema } from "./reward-code-pool-usage.entity.ts";
import { StreakDefinitionSchema } from "./streak-definition.entity.ts";
import { StreakEventKeySchema, StreakEventSchema } from "./streak-event.entity.ts";
import { EventRetentionFloorSchema, TenantRetentionSchema } from "./retention.entity.ts";
import { StreakWindowSchema } from "./streak-window.entity.ts";
import { TenantSchema } from "./tenant.entity.ts";
import { TenantBrowserAccessSchema } from "./tenant-browser-access.entity.ts";
import { TenantLeaderboardSettingsSchema } from "./tenant-leaderboard-settings.entity.ts";
import { MemberErasureTallySchema } from "./member-erasure-tally.entity.ts";
import { DefinitionStatsDaySchema } from "./definition-stats-day.entity.ts";
import { TeamMemberSchema, TeamMemberWindowSchema, TeamSchema, TeamWindowSchema } from "./team.entity.ts";
import { WebhookDeliverySchema } from "./webhook-delivery.entity.ts";
import { WebhookSubscriptionSchema } from "./webhook-subscription.entity.ts";

export const allEntities = [
  TenantSchema,
  ApiKeySchema,
  MemberSchema,
  StreakDefinitionSchema,
  ActivitySchema,
  MemberStreakSchema,
  MemberStreakStateSchema,
  RewardSchema,
  StreakEventSchema,
  OutboxMessageSchema,
  WebhookSubscriptionSchema,
  WebhookDeliverySchema,
  RewardCodePoolUsageSchema,
  TenantBrowserAccessSchema,
  TenantLeaderboardSettingsSchema,
  MemberErasureTallySchema,
  DefinitionStatsDaySchema,
  StreakWindowSchema,
  TeamSchema,
  TeamMemberSchema,
  TeamMemberWindowSchema,
  TeamWindowSchema,
  ActivityKeySchema,
  ActivityRetentionHoldSchema,
  StreakEventKeySchema,
  TenantRetentionSchema,
  EventRetentionFloorSchema,
];
