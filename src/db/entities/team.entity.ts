import { defineEntity, p } from "@mikro-orm/core";
import { TEAM_MEMBER_OPEN_INDEX } from "../migrations/0014-team-streaks.migration.ts";
import { chainDeadlineProperties } from "./member-streak.entity.ts";

/**
 * A team keeping one team streak on a team definition (migration 0014). `state` is the team chain's domain
 * MemberStreakState; the counts and status are its projections. Written on `pg` by src/engine/teams/team-streaks.ts.
 */
const TeamSchema = defineEntity({
  name: "Team",
  tableName: "team",
  indexes: [
    { properties: ["tenantId", "definitionId"] },
    // The team sweeps' pages (migration 0015), as member_streak's (migration 0013).
    { name: "team_break_page", expression: `create index "team_break_page" on "team" ("definition_id", "break_at", "id") where "break_at" is not null` },
    { name: "team_at_risk_page", expression: `create index "team_at_risk_page" on "team" ("definition_id", "at_risk_at", "id") where "at_risk_at" is not null` },
  ],
  properties: {
    id: p.uuid().primary(),
    tenantId: p.uuid(),
    definitionId: p.uuid(),
    name: p.string().length(256),
    state: p.json<Record<string, unknown>>(),
    status: p.string().length(16),
    currentCount: p.integer().default(0),
    longestCount: p.integer().default(0),
    /** The team chain's deadlines, for the team sweeps (migration 0015). */
    ...chainDeadlineProperties(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
});

export class Team extends TeamSchema.class {}
TeamSchema.setClass(Team);
export { TeamSchema };

/** A stretch of membership, in window starts: the member counts in windows starting in [effectiveFrom, effectiveTo). */
const TeamMemberSchema = defineEntity({
  name: "TeamMember",
  tableName: "team_member",
  indexes: [{ name: "team_member_open_per_definition", expression: TEAM_MEMBER_OPEN_INDEX }],
  properties: {
    teamId: p.uuid().primary(),
    memberId: p.uuid().primary(),
    effectiveFrom: p.datetime().primary(),
    tenantId: p.uuid(),
    definitionId: p.uuid(),
    effectiveTo: p.datetime().nullable(),
    createdAt: p.datetime(),
  },
});

export class TeamMember extends TeamMemberSchema.class {}
TeamMemberSchema.setClass(TeamMember);
export { TeamMemberSchema };

/** A member's activities in one team window that is not final yet (their window aggregate for the team). */
const TeamMemberWindowSchema = defineEntity({
  name: "TeamMemberWindow",
  tableName: "team_member_window",
  properties: {
    teamId: p.uuid().primary(),
    memberId: p.uuid().primary(),
    windowKey: p.string().length(64).primary(),
    tenantId: p.uuid(),
    windowEndAt: p.datetime(),
    entries: p.json<unknown[]>(),
    updatedAt: p.datetime(),
  },
});

export class TeamMemberWindow extends TeamMemberWindowSchema.class {}
TeamMemberWindowSchema.setClass(TeamMemberWindow);
export { TeamMemberWindowSchema };

/** One finalised window of a team's streak (migration 0015): its outcome and the team's count after it. */
const TeamWindowSchema = defineEntity({
  name: "TeamWindow",
  tableName: "team_window",
  properties: {
    teamId: p.uuid().primary(),
    startAt: p.datetime().primary(),
    windowKey: p.string().length(64),
    tenantId: p.uuid(),
    definitionId: p.uuid(),
    endAt: p.datetime(),
    outcome: p.string().length(16),
    countAfter: p.integer(),
    finalisedAt: p.datetime(),
  },
});

export class TeamWindow extends TeamWindowSchema.class {}
TeamWindowSchema.setClass(TeamWindow);
export { TeamWindowSchema };
