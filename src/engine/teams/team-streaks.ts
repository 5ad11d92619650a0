// Team streaks (issue 14, part 3) on PostgreSQL: teams, their membership stretches and each member's activities
// in open team windows (migration 0014), and the team path of recording an activity. The semantics are the
// domain's (src/domain/team-streak.ts); this module only loads and stores what it needs.
//
// Concurrency: every write to a team (an activity of any member, a membership change) locks the team row first
// (SELECT … FOR UPDATE), so the team's chain and its member windows change one writer at a time. An activity
// locks its member's own streak row before the team row (activity-ingestor.ts); membership changes lock only
// the team row; so no two writers wait on each other in opposite orders.
import { randomUUID } from "node:crypto";
import type { Pool, PoolClient } from "pg";
import {
  addMembership, applyTeamActivity, createMemberships, initialTeamState, removeMembership, teamAwards, teamProgress,
  validateTeamRule, type TeamConfig, type TeamMembership, type TeamRule, type TeamStreakState, type TeamWindowView,
} from "../../domain/team-streak.ts";
import { DomainError } from "../../domain/domain-error.ts";
import { windowFor } from "../../domain/calendar-window.ts";
import type { ActivityEntry } from "../../domain/condition.ts";
import type { ActivityInput, ApplyOutcome, MemberStreakState, StreakEffect } from "../../domain/streak-machine.ts";
import type { CatalogDefinition, DefinitionCatalog } from "../definitions/definition-catalog.ts";
import type { StreakDefinition as StreakDefinitionMessage } from "../../gen/kindling/v1/definition_pb.js";
import { EngineError, notFoundError } from "../engine-error.ts";
import { planRewards, type PlannedReward } from "../rewards/reward-plan.ts";
import { inTransaction } from "../transaction.ts";

const teamRules = new WeakMap<CatalogDefinition, TeamRule | null>();

/** The definition's team rule, or null for an individual streak. */
export function teamRuleOf(def: CatalogDefinition): TeamRule | null {
  if (teamRules.has(def)) return teamRules.get(def)!;
  const rule = teamRuleFromMessage(def.message);
  teamRules.set(def, rule);
  return rule;
}

/** kindling.v1.TeamRule -> the domain's TeamRule; null when the definition is not a team streak. */
export function teamRuleFromMessage(m: StreakDefinitionMessage): TeamRule | null {
  const t = m.team;
  if (!t) return null;
  return {
    ...(t.minMembersSatisfied > 0 ? { minMembersSatisfied: t.minMembersSatisfied } : {}),
    ...(t.freezePolicy ? { freezePolicy: { maxHeld: t.freezePolicy.maxHeld, initial: t.freezePolicy.initialGrant } } : {}),
  };
}

export interface TeamMemberView {
  readonly memberExternalId: string;
  readonly effectiveFrom: number;
  readonly effectiveTo: number | null;
}

export interface TeamView {
  readonly id: string;
  readonly definitionId: string;
  readonly name: string;
  readonly createdAt: number;
  readonly members: readonly TeamMemberView[];
  /** The window view with member ids turned into external ids. */
  readonly progress: TeamWindowView;
}

interface LoadedTeam {
  readonly id: string;
  readonly definitionId: string;
  readonly name: string;
  readonly createdAt: number;
  readonly config: TeamConfig;
  readonly state: TeamStreakState;
}

type Query = Pick<PoolClient, "query">;

async function loadTeam(client: Query, tenantId: string, teamId: string, def: CatalogDefinition | undefined, lock: boolean): Promise<LoadedTeam | null> {
  const { rows } = await client.query<{ id: string; definition_id: string; name: string; state: MemberStreakState; created_at: Date }>(
    `select id, definition_id, name, state, created_at from team where tenant_id = $1 and id = $2${lock ? " for update" : ""}`,
    [tenantId, teamId],
  );
  const row = rows[0];
  if (!row || (def !== undefined && row.definition_id !== def.id)) return null;
  const memberships = await client.query<{ member_id: string; effective_from: Date; effective_to: Date | null }>(
    "select member_id, effective_from, effective_to from team_member where team_id = $1 order by effective_from, member_id",
    [teamId],
  );
  const windows = await client.query<{ member_id: string; entries: ActivityEntry[] }>(
    "select member_id, entries from team_member_window where team_id = $1 order by member_id, window_end_at",
    [teamId],
  );
  const members: Record<string, ActivityEntry[]> = {};
  for (const w of windows.rows) (members[w.member_id] ??= []).push(...w.entries);
  return {
    id: row.id,
    definitionId: row.definition_id,
    name: row.name,
    createdAt: row.created_at.getTime(),
    config: {
      rule: {},
      memberships: memberships.rows.map((m): TeamMembership => ({
        memberId: m.member_id, fromMs: m.effective_from.getTime(), toMs: m.effective_to?.getTime() ?? null,
      })),
    },
    state: { version: 1, chain: row.state, members },
  };
}

/** Writes the team chain and its open member windows (the state holds only windows that are not final). */
async function saveTeam(client: Query, tenantId: string, def: CatalogDefinition, teamId: string, state: TeamStreakState, now: number): Promise<void> {
  const spec = def.rules.window;
  if (spec.type !== "CALENDAR") throw new Error("team streaks need calendar windows");
  const c = state.chain;
  await client.query(
    "update team set state = $2, status = $3, current_count = $4, longest_count = $5, updated_at = $6 where id = $1",
    [teamId, JSON.stringify(c), c.status, c.current, c.longest, new Date(now)],
  );
  const rows: { member_id: string; window_key: string; window_end_at: string; entries: ActivityEntry[] }[] = [];
  for (const [memberId, entries] of Object.entries(state.members)) {
    const byWindow = new Map<string, { end: number; entries: ActivityEntry[] }>();
    for (const e of entries) {
      const w = windowFor(spec, e.at, spec.timezone);
      const g = byWindow.get(w.key) ?? { end: w.endMs, entries: [] };
      g.entries.push(e);
      byWindow.set(w.key, g);
    }
    for (const [key, g] of byWindow) rows.push({ member_id: memberId, window_key: key, window_end_at: new Date(g.end).toISOString(), entries: g.entries });
  }
  // Two statements: an insert beside a delete in one statement does not see that delete (same snapshot).
  await client.query("delete from team_member_window where team_id = $1", [teamId]);
  await client.query(
    `insert into team_member_window (team_id, member_id, window_key, tenant_id, window_end_at, entries, updated_at)
     select $1::uuid, x.member_id, x.window_key, $2::uuid, x.window_end_at, x.entries, $4::timestamptz
       from jsonb_to_recordset($3::jsonb) as x(member_id uuid, window_key varchar, window_end_at timestamptz, entries jsonb)`,
    [teamId, tenantId, JSON.stringify(rows), new Date(now)],
  );
}

async function saveMemberships(client: Query, tenantId: string, definitionId: string, teamId: string, memberships: readonly TeamMembership[], now: number): Promise<void> {
  try {
    await client.query("delete from team_member where team_id = $1", [teamId]);
    await client.query(
      `insert into team_member (team_id, member_id, effective_from, tenant_id, definition_id, effective_to, created_at)
       select $1::uuid, x.member_id, x.effective_from, $2::uuid, $3::uuid, x.effective_to, $5::timestamptz
         from jsonb_to_recordset($4::jsonb) as x(member_id uuid, effective_from timestamptz, effective_to timestamptz)`,
      [teamId, tenantId, definitionId, JSON.stringify(memberships.map((m) => ({
        member_id: m.memberId, effective_from: new Date(m.fromMs).toISOString(), effective_to: m.toMs === null ? null : new Date(m.toMs).toISOString(),
      }))), new Date(now)],
    );
  } catch (error) {
    if ((error as { code?: string }).code === "23505") {
      throw new EngineError("FAILED_PRECONDITION", "ALREADY_TEAM_MEMBER", "a member is already on another team of this definition");
    }
    throw error;
  }
}

/** Member ids for external ids, creating members on first sight (as recording activity does). */
async function memberIds(client: Query, tenantId: string, externalIds: readonly string[]): Promise<Map<string, string>> {
  await client.query(
    `insert into member (id, tenant_id, external_id, points_balance, created_at, updated_at)
     select gen_random_uuid(), $1, x, 0, now(), now() from unnest($2::text[]) as x
     on conflict (tenant_id, external_id) do nothing`,
    [tenantId, externalIds],
  );
  const { rows } = await client.query<{ id: string; external_id: string }>(
    "select id, external_id from member where tenant_id = $1 and external_id = any($2::text[])",
    [tenantId, externalIds],
  );
  return new Map(rows.map((r) => [r.external_id, r.id]));
}

function domainFailure(error: unknown): never {
  if (error instanceof DomainError) throw new EngineError("FAILED_PRECONDITION", error.reason, error.message);
  throw error;
}

/** The outcome of a member's activity for their team, inside the recording transaction. */
export interface TeamActivityResult {
  readonly teamId: string;
  readonly outcome: ApplyOutcome;
  readonly effects: readonly StreakEffect[];
  /** Rewards of team milestones, one per member on the roster of the window the milestone was reached in. */
  readonly rewards: readonly PlannedReward[];
}

/**
 * The team path of recording: when the member is on a team of `def` for the activity's window, applies the
 * activity to that team (its member window and the team chain) in the caller's transaction, and plans each
 * roster member's rewards for the milestones the team reached. Returns null when the member is on no team then.
 */
export async function applyTeamActivityInTransaction(
  client: PoolClient,
  def: CatalogDefinition,
  tenantId: string,
  memberId: string,
  activity: ActivityInput,
  activityId: string,
  now: number,
  futureToleranceMs: number,
): Promise<TeamActivityResult | null> {
  const rule = teamRuleOf(def);
  const spec = def.rules.window;
  if (rule === null || spec.type !== "CALENDAR") return null;
  const windowStart = windowFor(spec, activity.occurredAt, spec.timezone).startMs;
  const found = await client.query<{ team_id: string }>(
    `select team_id from team_member where tenant_id = $1 and definition_id = $2 and member_id = $3
        and effective_from <= $4 and (effective_to is null or effective_to > $4)
      order by effective_from desc limit 1`,
    [tenantId, def.id, memberId, new Date(windowStart)],
  );
  const teamId = found.rows[0]?.team_id;
  if (teamId === undefined) return null;
  const team = (await loadTeam(client, tenantId, teamId, def, true))!;
  const config: TeamConfig = { rule, memberships: team.config.memberships };
  const r = applyTeamActivity(def.rules, config, team.state, memberId, activity, { now, pausedIntervals: def.pauses, futureToleranceMs });
  if (r.outcome.kind !== "DUPLICATE") await saveTeam(client, tenantId, def, teamId, r.state, now);
  // Each milestone the team reached, once per member on its roster (reward_grant_once keeps it at once).
  const rewards = r.effects.flatMap((effect) =>
    teamAwards(def.rules, config, [effect]).flatMap((a) => planRewards(def, { tenantId, memberId: a.memberId, memberStreakId: "", activityId }, [effect], now)),
  );
  return { teamId, outcome: r.outcome, effects: r.effects, rewards };
}

export interface TeamStore {
  create(tenantId: string, definitionId: string, name: string, memberExternalIds: readonly string[]): Promise<TeamView>;
  addMember(tenantId: string, teamId: string, memberExternalId: string): Promise<TeamView>;
  removeMember(tenantId: string, teamId: string, memberExternalId: string): Promise<TeamView>;
  get(tenantId: string, teamId: string): Promise<TeamView>;
  /** The member's team on `def` in the current window, or null (not a team definition, or on no team now). */
  progressForMember(tenantId: string, def: CatalogDefinition, memberExternalId: string): Promise<TeamView | null>;
}

export function createTeamStore(deps: { pool: Pool; catalog: DefinitionCatalog; now: () => number }): TeamStore {
  const { pool, catalog } = deps;

  async function teamDefinition(tenantId: string, definitionId: string): Promise<{ def: CatalogDefinition; rule: TeamRule }> {
    const def = await catalog.get(tenantId, definitionId);
    if (!def) throw notFoundError("definition", { definition_id: definitionId });
    const rule = teamRuleOf(def);
    if (rule === null) throw new EngineError("INVALID_ARGUMENT", "NOT_A_TEAM_DEFINITION", "the definition has no team rule", {}, "definition_id");
    const [problem] = validateTeamRule(def.rules, rule);
    if (problem) throw new EngineError("INVALID_ARGUMENT", problem.reason, problem.message, {}, problem.field);
    return { def, rule };
  }

  async function view(client: Query, tenantId: string, team: LoadedTeam, def: CatalogDefinition, rule: TeamRule, now: number): Promise<TeamView> {
    const config: TeamConfig = { rule, memberships: team.config.memberships };
    const p = teamProgress(def.rules, config, team.state, now, { pausedIntervals: def.pauses });
    const ids = [...new Set(team.config.memberships.map((m) => m.memberId))];
    const { rows } = await client.query<{ id: string; external_id: string }>("select id, external_id from member where tenant_id = $1 and id = any($2::uuid[])", [tenantId, ids]);
    const ext = new Map(rows.map((r) => [r.id, r.external_id]));
    const name = (id: string) => ext.get(id) ?? "";
    return {
      id: team.id,
      definitionId: team.definitionId,
      name: team.name,
      createdAt: team.createdAt,
      members: team.config.memberships.map((m) => ({ memberExternalId: name(m.memberId), effectiveFrom: m.fromMs, effectiveTo: m.toMs })),
      // Done in the order they did it; pending by external id.
      progress: { ...p, doneMembers: p.doneMembers.map(name), pendingMembers: p.pendingMembers.map(name).sort() },
    };
  }

  async function change(tenantId: string, teamId: string, memberExternalId: string, op: typeof addMembership): Promise<TeamView> {
    return inTransaction(pool, async (client) => {
      const locked = await loadTeam(client, tenantId, teamId, undefined, true);
      if (!locked) throw notFoundError("team", { team_id: teamId });
      const { def, rule } = await teamDefinition(tenantId, locked.definitionId);
      const now = deps.now();
      const ids = await memberIds(client, tenantId, [memberExternalId]);
      let memberships: TeamMembership[];
      try {
        memberships = op(def.rules, locked.config.memberships, ids.get(memberExternalId)!, now);
      } catch (error) {
        domainFailure(error);
      }
      await saveMemberships(client, tenantId, def.id, teamId, memberships, now);
      return view(client, tenantId, { ...locked, config: { rule, memberships } }, def, rule, now);
    });
  }

  return {
    async create(tenantId, definitionId, name, memberExternalIds) {
      const { def, rule } = await teamDefinition(tenantId, definitionId);
      return inTransaction(pool, async (client) => {
        const now = deps.now();
        const ids = await memberIds(client, tenantId, memberExternalIds);
        let memberships: TeamMembership[];
        try {
          memberships = createMemberships(def.rules, memberExternalIds.map((x) => ids.get(x)!), now);
        } catch (error) {
          domainFailure(error);
        }
        const id = randomUUID();
        const state = initialTeamState(def.rules, rule);
        await client.query(
          `insert into team (id, tenant_id, definition_id, name, state, status, current_count, longest_count, created_at, updated_at)
           values ($1, $2, $3, $4, $5, $6, 0, 0, $7, $7)`,
          [id, tenantId, def.id, name, JSON.stringify(state.chain), state.chain.status, new Date(now)],
        );
        await saveMemberships(client, tenantId, def.id, id, memberships, now);
        return view(client, tenantId, { id, definitionId: def.id, name, createdAt: now, config: { rule, memberships }, state }, def, rule, now);
      });
    },

    addMember: (tenantId, teamId, memberExternalId) => change(tenantId, teamId, memberExternalId, addMembership),
    removeMember: (tenantId, teamId, memberExternalId) => change(tenantId, teamId, memberExternalId, removeMembership),

    async get(tenantId, teamId) {
      const team = await loadTeam(pool, tenantId, teamId, undefined, false);
      if (!team) throw notFoundError("team", { team_id: teamId });
      const { def, rule } = await teamDefinition(tenantId, team.definitionId);
      return view(pool, tenantId, team, def, rule, deps.now());
    },

    async progressForMember(tenantId, def, memberExternalId) {
      const rule = teamRuleOf(def);
      const spec = def.rules.window;
      if (rule === null || spec.type !== "CALENDAR") return null;
      const now = deps.now();
      const { rows } = await pool.query<{ team_id: string }>(
        `select tm.team_id from team_member tm join member m on m.id = tm.member_id and m.tenant_id = $1 and m.external_id = $3
          where tm.tenant_id = $1 and tm.definition_id = $2 and tm.effective_from <= $4 and (tm.effective_to is null or tm.effective_to > $4)
          order by tm.effective_from desc limit 1`,
        [tenantId, def.id, memberExternalId, new Date(windowFor(spec, now, spec.timezone).startMs)],
      );
      if (!rows[0]) return null;
      const team = await loadTeam(pool, tenantId, rows[0].team_id, def, false);
      return team === null ? null : view(pool, tenantId, team, def, rule, now);
    },
  };
}
