// TeamService: teams of members keeping one team streak (issue 14, part 3). The store (src/engine/teams/team-streaks.ts)
// does the work; this maps its view to kindling.v1.Team. Only the tenant's backend calls it (ADMIN / SERVICE).
import type { ServiceImpl } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { TeamService } from "../../gen/kindling/v1/team_service_pb.js";
import type { TeamSchema } from "../../gen/kindling/v1/team_pb.js";
import type { TeamProgressSchema } from "../../gen/kindling/v1/member_streak_pb.js";
import { MemberStreakState } from "../../gen/kindling/v1/member_streak_pb.js";
import type { TeamStore, TeamView } from "../../engine/teams/team-streaks.ts";
import { principalOf } from "../context.ts";

export interface TeamServiceDeps {
  readonly teams: TeamStore;
}

const STATES: Record<TeamView["progress"]["status"], MemberStreakState> = {
  NOT_STARTED: MemberStreakState.NOT_STARTED,
  IN_PROGRESS: MemberStreakState.IN_PROGRESS,
  COMPLETED: MemberStreakState.COMPLETED,
  BROKEN: MemberStreakState.BROKEN,
};

/** The team's progress in the current window, as every member's progress view carries it. */
export function teamProgressMessage(t: TeamView): MessageInitShape<typeof TeamProgressSchema> {
  const p = t.progress;
  return {
    teamId: t.id,
    teamName: t.name,
    windowKey: p.windowKey,
    windowStartTime: timestampFromMs(p.windowStartAt),
    windowCloseTime: timestampFromMs(p.windowEndAt),
    memberCount: p.rosterSize,
    requiredCount: p.required,
    doneMemberExternalIds: [...p.doneMembers],
    pendingMemberExternalIds: [...p.pendingMembers],
    windowSatisfied: p.teamSatisfied,
    state: STATES[p.status],
    currentCount: p.current,
    longestCount: p.longest,
    freezesHeld: p.freezesHeld,
    atRisk: p.atRisk,
  };
}

function teamMessage(t: TeamView): MessageInitShape<typeof TeamSchema> {
  return {
    id: t.id,
    definitionId: t.definitionId,
    name: t.name,
    members: t.members.map((m) => ({
      memberExternalId: m.memberExternalId,
      effectiveTime: timestampFromMs(m.effectiveFrom),
      ...(m.effectiveTo === null ? {} : { endTime: timestampFromMs(m.effectiveTo) }),
    })),
    progress: teamProgressMessage(t),
    createTime: timestampFromMs(t.createdAt),
  };
}

export function createTeamService(deps: TeamServiceDeps): ServiceImpl<typeof TeamService> {
  return {
    async createTeam(req, context) {
      const { tenantId } = principalOf(context);
      return { team: teamMessage(await deps.teams.create(tenantId, req.definitionId, req.name, req.memberExternalIds)) };
    },
    async addTeamMember(req, context) {
      const { tenantId } = principalOf(context);
      return { team: teamMessage(await deps.teams.addMember(tenantId, req.teamId, req.memberExternalId)) };
    },
    async removeTeamMember(req, context) {
      const { tenantId } = principalOf(context);
      return { team: teamMessage(await deps.teams.removeMember(tenantId, req.teamId, req.memberExternalId)) };
    },
    async getTeam(req, context) {
      const { tenantId } = principalOf(context);
      return { team: teamMessage(await deps.teams.get(tenantId, req.teamId)) };
    },
    async grantTeamFreezes(req, context) {
      const { tenantId } = principalOf(context);
      const { granted, team } = await deps.teams.grantFreezes(tenantId, req.teamId, req.count);
      return { grantedCount: granted, team: teamMessage(team) };
    },
    async repairTeamStreak(req, context) {
      const { tenantId } = principalOf(context);
      const { restoredCount, team } = await deps.teams.repair(tenantId, req.teamId);
      return { restoredCount, team: teamMessage(team) };
    },
  };
}
