import { defineEntity, p } from "@mikro-orm/core";

export type StreakWindowOutcome = "SATISFIED" | "MISSED" | "FROZEN" | "NEUTRAL" | "BRIDGED";

/**
 * One finalised window of a member streak (migration 0010): written on `pg` by src/engine/history/streak-history.ts in the
 * transaction that finalises it, read by ListStreakWindows.
 */
const StreakWindowSchema = defineEntity({
  name: "StreakWindow",
  tableName: "streak_window",
  properties: {
    memberStreakId: p.uuid().primary(),
    startAt: p.datetime().primary(),
    windowKey: p.string().length(64),
    tenantId: p.uuid(),
    memberId: p.uuid(),
    definitionId: p.uuid(),
    endAt: p.datetime(),
    outcome: p.string().length(16).$type<StreakWindowOutcome>(),
    activityCount: p.integer(),
    valueSum: p.double(),
    /** The window's distinct keys in order of first occurrence. */
    distinctKeys: p.json<string[]>(),
    /** The streak's count once this window was settled. */
    countAfter: p.integer(),
    finalisedAt: p.datetime(),
  },
});

export class StreakWindow extends StreakWindowSchema.class {}
StreakWindowSchema.setClass(StreakWindow);
export { StreakWindowSchema };
