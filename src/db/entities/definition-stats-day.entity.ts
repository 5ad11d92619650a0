import { defineEntity, p } from "@mikro-orm/core";

/**
 * A definition's analytics for one UTC day (migration 0011); written set-based by the definition sweeper and read
 * on `pg` by src/engine/history/definition-stats.ts, which documents each column.
 */
const DefinitionStatsDaySchema = defineEntity({
  name: "DefinitionStatsDay",
  tableName: "definition_stats_day",
  properties: {
    tenantId: p.uuid().primary(),
    definitionId: p.uuid().primary(),
    day: p.date().primary(),
    closed: p.boolean(),
    computedAt: p.datetime(),
    hasState: p.boolean(),
    active: p.integer().default(0),
    /** Active streaks per COUNT_BUCKETS entry (src/engine/history/definition-stats.ts). */
    countHistogram: p.array<number>().columnType("int[]").defaultRaw("'{}'"),
    atRisk: p.integer().default(0),
    broken: p.integer().default(0),
    frozen: p.integer().default(0),
    started: p.integer().default(0),
    /** Milestones reached per threshold: {"7": 12}. */
    milestones: p.json<Record<string, number>>().defaultRaw("'{}'"),
    rewardsIssued: p.integer().default(0),
    rewardsClaimed: p.integer().default(0),
    rewardsExpired: p.integer().default(0),
  },
});

export class DefinitionStatsDay extends DefinitionStatsDaySchema.class {}
DefinitionStatsDaySchema.setClass(DefinitionStatsDay);
export { DefinitionStatsDaySchema };
