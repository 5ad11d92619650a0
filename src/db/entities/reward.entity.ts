import { defineEntity, p } from "@mikro-orm/core";

export type RewardState = "PENDING" | "AVAILABLE" | "CLAIMED" | "ISSUED" | "EXPIRED" | "FAILED";
export type FulfilmentMode = "EXTERNAL" | "PROVIDER" | "CLAIM";

const RewardSchema = defineEntity({
  name: "Reward",
  tableName: "reward",
  // A milestone is granted at most once per cycle (and per repetition for repeatable ones): the database holds it.
  uniques: [{ name: "reward_grant_once", properties: ["tenantId", "memberId", "definitionId", "threshold", "cycle", "repetition"] }],
  indexes: [{ properties: ["tenantId", "memberId", "state"] }],
  properties: {
    id: p.uuid().primary(),
    tenantId: p.uuid(),
    memberId: p.uuid(),
    definitionId: p.uuid(),
    threshold: p.integer(),
    cycle: p.integer().default(0),
    repetition: p.integer().default(0),
    /** The streak count that crossed the milestone, the multiplier at that moment, and the activity that did it. */
    streakCount: p.integer().default(0),
    multiplier: p.double().default(1),
    activityId: p.uuid().nullable(),
    kind: p.string().length(16),
    name: p.string().length(256).default(""),
    value: p.string().length(256).default(""),
    points: p.double().default(0),
    state: p.string().length(16).$type<RewardState>(),
    mode: p.string().length(16).$type<FulfilmentMode>(),
    couponCode: p.string().length(256).nullable(),
    issuedAt: p.datetime().nullable(),
    expiryAt: p.datetime().nullable(),
    claimDeadlineAt: p.datetime().nullable(),
    claimedAt: p.datetime().nullable(),
    failureReason: p.text().nullable(),
    attempts: p.integer().default(0),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});

export class Reward extends RewardSchema.class {}
RewardSchema.setClass(Reward);
export { RewardSchema };
