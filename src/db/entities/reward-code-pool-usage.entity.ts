import { defineEntity, p } from "@mikro-orm/core";

/**
 * One code of a milestone's CodePoolProvider handed to one reward. The primary key makes a code go out at most
 * once; `rewardId` is unique, so a fulfilment retried after a crash finds the code it already took.
 */
const RewardCodePoolUsageSchema = defineEntity({
  name: "RewardCodePoolUsage",
  tableName: "reward_code_pool_usage",
  uniques: [{ properties: ["rewardId"] }],
  properties: {
    tenantId: p.uuid().primary(),
    definitionId: p.uuid().primary(),
    threshold: p.integer().primary(),
    code: p.string().length(256).primary(),
    rewardId: p.uuid(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

export class RewardCodePoolUsage extends RewardCodePoolUsageSchema.class {}
RewardCodePoolUsageSchema.setClass(RewardCodePoolUsage);
export { RewardCodePoolUsageSchema };
