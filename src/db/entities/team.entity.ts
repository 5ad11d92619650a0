import { defineEntity, p } from "@mikro-orm/core";
import { TEAM_MEMBER_OPEN_INDEX } from "../migrations/0014-team-streaks.migration.ts";

/**
 * A team keeping one team streak on a team definition (migration 0014). `state` is the team chain's domain
 * MemberStreakState; the counts and status are its projections. Written on `pg` by src/engine/teams/team-streaks.ts.
 */
const TeamSchema = defineEntity({
  name: "Team",
  tableName: "team",
  indexes: [{ properties: ["tenantId", "definitionId"] }],
  properties: {
    id: p.uuid().primary(),
    tenantId: p.uuid(),
    definitionId: p.uuid(),
    name: p.string().length(256),
    state: p.json<Record<string, unknown>>(),
    status: p.string().length(16),
    currentCount: p.integer().default(0),
    longestCount: p.integer().default(0),
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
