import { defineEntity, p } from "@mikro-orm/core";
import { LEADERBOARD_CURRENT_INDEX, LEADERBOARD_LONGEST_INDEX } from "../migrations/0009-leaderboards.migration.ts";
import { OPTED_OUT_COUNTS_INDEX } from "../migrations/0011-definition-stats.migration.ts";
import { ADVANCE_PAGE_INDEX } from "../migrations/0017-advance-page.migration.ts";

export type MemberStreakStatus = "NOT_STARTED" | "IN_PROGRESS" | "COMPLETED" | "BROKEN";

/**
 * One member's streak on one definition. Its domain MemberStreakState document lives in member_streak_state
 * (same id); the scalar columns here are projections of it, kept so that window-close sweeps are set-based SQL
 * over an index (definition_id, break_at) instead of one workflow or one row read per member — and narrow, so a
 * sweep that rewrites a million of them does not rewrite a million documents (migration 0005).
 */
/**
 * A streak chain's deadlines (streak-projection.ts), the columns the window sweeps page by: member_streak's and,
 * for team streaks, team's (migration 0015).
 */
export const chainDeadlineProperties = () => ({
  windowCloseAt: p.datetime().nullable(),
  atRiskAt: p.datetime().nullable(),
  breakAt: p.datetime().nullable(),
  /** What happens at break_at (domain BreakKind): BREAK rows are swept set-based, FREEZE/SETTLE through advance(). */
  breakKind: p.string().length(8).nullable().$type<"BREAK" | "FREEZE" | "SETTLE">(),
  /** Key of the window that closes at window_close_at: the streak.broken / streak.at_risk event is about it. */
  breakWindowKey: p.string().length(64).nullable(),
  /** Window key for which the at-risk reminder was already emitted: it goes out once per streak and window. */
  atRiskNotifiedWindow: p.string().length(64).nullable(),
});

const MemberStreakSchema = defineEntity({
  name: "MemberStreak",
  tableName: "member_streak",
  uniques: [{ properties: ["tenantId", "memberId", "definitionId"] }],
  indexes: [
    // Partial: finished rows (nulls) are never swept, so breaking a row adds no entries here (migration 0004).
    { name: "member_streak_break_page", expression: `create index "member_streak_break_page" on "member_streak" ("definition_id", "break_at", "id") where "break_at" is not null` },
    { name: "member_streak_at_risk_page", expression: `create index "member_streak_at_risk_page" on "member_streak" ("definition_id", "at_risk_at", "id") where "at_risk_at" is not null` },
    // The advance sweep's rows only: due FREEZE / SETTLE rows (migration 0017).
    { name: "member_streak_advance_page", expression: ADVANCE_PAGE_INDEX },
    // Leaderboards in board order, ranked rows only (migration 0009).
    { name: "member_streak_leaderboard_current", expression: LEADERBOARD_CURRENT_INDEX },
    { name: "member_streak_leaderboard_longest", expression: LEADERBOARD_LONGEST_INDEX },
    // With the current board's index, every active streak of a definition: the daily stats (migration 0011).
    { name: "member_streak_opted_out_counts", expression: OPTED_OUT_COUNTS_INDEX },
  ],
  properties: {
    id: p.uuid().primary(),
    tenantId: p.uuid(),
    memberId: p.uuid(),
    definitionId: p.uuid(),
    status: p.string().length(16).$type<MemberStreakStatus>(),
    currentCount: p.integer().default(0),
    longestCount: p.integer().default(0),
    /** Start of the window that closes at window_close_at, so the break sweep can store it as history (migration 0010). */
    windowStartAt: p.datetime().nullable(),
    ...chainDeadlineProperties(),
    lastActivityAt: p.datetime().nullable(),
    /** When current_count took its present value: ties on a leaderboard rank whoever reached the count first. */
    countReachedAt: p.datetime().nullable(),
    /** When longest_count took its present value (ties on the longest-count board). */
    longestReachedAt: p.datetime().nullable(),
    /**
     * The domain's break counter as of the last save (a sweep's break sets the count to 0 and leaves this): with
     * the count, it tells a run from a later one at the same count.
     */
    breaks: p.integer().default(0),
    /** Copy of the member's leaderboard opt-out, so the leaderboard indexes can leave the row out. */
    leaderboardOptOut: p.boolean().default(false),
    version: p.integer().default(1),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});

export class MemberStreak extends MemberStreakSchema.class {}
MemberStreakSchema.setClass(MemberStreak);
export { MemberStreakSchema };

/** The domain's MemberStreakState document of member_streak `memberStreakId`; written with it, in the same statement. */
const MemberStreakStateSchema = defineEntity({
  name: "MemberStreakState",
  tableName: "member_streak_state",
  properties: {
    memberStreakId: p.uuid().primary(),
    /** Its streak's member: the row's shard on Citus, beside its streak (migration 0018). */
    memberId: p.uuid(),
    state: p.json<Record<string, unknown>>(),
  },
});

export class MemberStreakStateRow extends MemberStreakStateSchema.class {}
MemberStreakStateSchema.setClass(MemberStreakStateRow);
export { MemberStreakStateSchema };
