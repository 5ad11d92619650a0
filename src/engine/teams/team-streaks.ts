// Team streaks (issue 14, part 3) on PostgreSQL: teams, their membership stretches and each member's activities
// in open team windows (migration 0014), and the team path of recording an activity. The semantics are the
// domain's (src/domain/team-streak.ts); this module only loads and stores what it needs.
//
// Concurrency: every write to a team (an activity of any member, a membership change) locks the team row first
// (SELECT … FOR UPDATE), so the team's chain and its member windows change one writer at a time. An activity
// locks its member's own streak row before the team row (activity-ingestor.ts); membership changes lock only
// the team row; so no two writers wait on each other in opposite orders.
import { IF_MEMBER_ABSENT, memberIdFor } from "../../db/member-id.ts";
import { randomUUID } from "node:crypto";
import type { Pool, PoolClient } from "pg";
import {
  addMembership, advanceTeam, applyTeamActivity, createMemberships, grantTeamFreezes, initialTeamState, removeMembership, repairTeam,
  rosterAt, teamAwards, teamChainRules, teamProgress, validateTeamRule,
  type TeamConfig, type TeamMembership, type TeamRule, type TeamStreakState, type TeamWindowView,
} from "../../domain/team-streak.ts";
import { DomainError } from "../../domain/domain-error.ts";
import { previousWindow, windowFor, type CalendarWindowSpec } from "../../domain/calendar-window.ts";
import type { ActivityEntry } from "../../domain/condition.ts";
import type { ActivityInput, ApplyOutcome, Bridge, MemberStreakState, StreakEffect, WindowRecord } from "../../domain/streak-machine.ts";
import { streakProjection } from "../ingest/streak-projection.ts";
import { eventsForEffects, type PlannedEvent } from "../ingest/streak-events.ts";
import { insertEvents, insertRewardsAndOutbox } from "../ingest/streak-persistence.ts";
import type { CatalogDefinition, DefinitionCatalog } from "../definitions/definition-catalog.ts";
import type { StreakDefinition as StreakDefinitionMessage } from "../../gen/kindling/v1/definition_pb.js";
import { EngineError, notFoundError } from "../engine-error.ts";
import { planRewards, type PlannedReward } from "../rewards/reward-plan.ts";
import { inTransaction, sqlState } from "../transaction.ts";
import { REPAIR_REASONS } from "../members/member-store.ts";

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

export interface LoadedTeam {
  readonly id: string;
  readonly definitionId: string;
  readonly name: string;
  readonly createdAt: number;
  readonly config: TeamConfig;
  readonly state: TeamStreakState;
}

type Query = Pick<PoolClient, "query">;

/** The team with its memberships and open member windows (`config.rule` is empty: callers take the definition's). */
export async function loadTeam(client: Query, tenantId: string, teamId: string, def: CatalogDefinition | undefined, lock: boolean): Promise<LoadedTeam | null> {
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

/**
 * Writes the team chain with the deadlines the team sweeps index on (the individual projection of the team chain,
 * streak-projection.ts), and its open member windows (the state holds only windows that are not final).
 */
export async function saveTeam(client: Query, tenantId: string, def: CatalogDefinition, rule: TeamRule, teamId: string, state: TeamStreakState, now: number): Promise<void> {
  const spec = def.rules.window;
  if (spec.type !== "CALENDAR") throw new Error("team streaks need calendar windows");
  const c = state.chain;
  const d = streakProjection(teamChainRules(def.rules, rule), c, { pausedIntervals: def.pauses });
  const ms = (v: number | null) => (v === null ? null : new Date(v));
  await client.query(
    `update team set state = $2, status = $3, current_count = $4, longest_count = $5, updated_at = $6,
       window_close_at = $7, at_risk_at = $8, break_at = $9, break_kind = $10, break_window_key = $11
     where id = $1`,
    [teamId, JSON.stringify(c), c.status, c.current, c.longest, new Date(now), ms(d.windowCloseAt), ms(d.atRiskAt), ms(d.breakAt), d.breakKind, d.breakWindowKey],
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
    if (sqlState(error) === "23505") {
      throw new EngineError("FAILED_PRECONDITION", "ALREADY_TEAM_MEMBER", "a member is already on another team of this definition");
    }
    throw error;
  }
}

/** Member ids for external ids, creating members on first sight (as recording activity does). */
async function memberIds(client: Query, tenantId: string, externalIds: readonly string[]): Promise<Map<string, string>> {
  await client.query(
    `insert into member (id, tenant_id, external_id, points_balance, created_at, updated_at)
     select x.id, $1, x.external_id, 0, now(), now() from unnest($2::text[], $3::uuid[]) as x(external_id, id)
     ${IF_MEMBER_ABSENT}`,
    [tenantId, externalIds, externalIds.map((x) => memberIdFor(tenantId, x))],
  );
  const { rows } = await client.query<{ id: string; external_id: string }>(
    "select id, external_id from member where tenant_id = $1 and external_id = any($2::text[])",
    [tenantId, externalIds],
  );
  return new Map(rows.map((r) => [r.external_id, r.id]));
}

/**
 * Stores the team windows a transition finalised (team_window, migration 0015) and a repair's rewrite of the
 * history it restored, as saveStreakHistory does for a member streak (streak-history.ts): a window is stored once
 * by its start (a writer that folds it again writes the same row); missed windows since the break become BRIDGED
 * at the restored count, and the run since counts on from it.
 */
export async function saveTeamHistory(
  client: Query,
  tenantId: string,
  definitionId: string,
  teamId: string,
  change: { readonly finalised?: readonly WindowRecord[]; readonly bridge?: Bridge },
  now: number,
): Promise<void> {
  const insert = (windows: readonly WindowRecord[], keep: boolean) =>
    client.query(
      `insert into team_window (team_id, start_at, window_key, tenant_id, definition_id, end_at, outcome, count_after, finalised_at)
       select $1::uuid, x.start_at, x.window_key, $2::uuid, $3::uuid, x.end_at, x.outcome, x.count_after, $5::timestamptz
         from jsonb_to_recordset($4::jsonb) as x(start_at timestamptz, window_key varchar, end_at timestamptz, outcome varchar, count_after int)
       on conflict (team_id, start_at) do ${keep ? "nothing" : "update set window_key = excluded.window_key, end_at = excluded.end_at, outcome = excluded.outcome, count_after = excluded.count_after"}`,
      [teamId, tenantId, definitionId, JSON.stringify(windows.map((w) => ({
        start_at: new Date(w.startMs).toISOString(), window_key: w.key, end_at: new Date(w.endMs).toISOString(), outcome: w.outcome, count_after: w.countAfter,
      }))), new Date(now)],
    );
  if ((change.finalised?.length ?? 0) > 0) await insert(change.finalised!, false);
  const bridge = change.bridge;
  if (bridge === undefined) return;
  await client.query(
    `update team_window set outcome = case when count_after = 0 then 'BRIDGED' else outcome end, count_after = count_after + $4
      where team_id = $1 and start_at >= $2 and start_at < $3`,
    [teamId, new Date(bridge.fromMs), new Date(bridge.untilMs), bridge.previousStreak],
  );
  if (bridge.windows.length > 0) await insert(bridge.windows, true);
}

/** External ids of the team's members, past and present. */
export async function externalIds(client: Query, tenantId: string, memberships: readonly TeamMembership[]): Promise<Map<string, string>> {
  const ids = [...new Set(memberships.map((m) => m.memberId))];
  const { rows } = await client.query<{ id: string; external_id: string }>("select id, external_id from member where tenant_id = $1 and id = any($2::uuid[])", [tenantId, ids]);
  return new Map(rows.map((r) => [r.id, r.external_id]));
}

/** The window of `key` at or before `fromMs` (walking back); null when none within `limit` windows. */
function windowByKey(spec: CalendarWindowSpec, key: string, fromMs: number, limit = 5000) {
  let w = windowFor(spec, fromMs, spec.timezone);
  for (let i = 0; i < limit && w.key !== key; i++) w = previousWindow(spec, w, spec.timezone);
  return w.key === key ? w : null;
}

/** Start of the window a team effect is about: its own window, or the window of `now` for a repair or completion. */
function effectWindowStart(spec: CalendarWindowSpec, e: StreakEffect, now: number): number {
  switch (e.type) {
    case "streak.milestone_reached":
      return windowFor(spec, e.earnedAt, spec.timezone).startMs;
    case "streak.incremented":
    case "streak.broken":
    case "streak.freeze_used":
      return (windowByKey(spec, e.windowKey, e.type === "streak.broken" ? e.brokenAt : now) ?? windowFor(spec, now, spec.timezone)).startMs;
    case "streak.completed":
    case "streak.repaired":
      return windowFor(spec, now, spec.timezone).startMs;
  }
}

/** Whose team event: the team and one member on it (dedupe keys are per team and member). */
export const teamEventOwnerKey = (teamId: string, memberId: string) => `team:${teamId}:${memberId}`;

/**
 * The team chain's effects as events, one per member on the roster of the window each is about (a brand notifies
 * people, and every one of them keeps this streak), each naming the team (`team_id`). The dedupe keys are the
 * individual ones with the team and member as owner, so the sweep and a lazy advance on read or write of the
 * same window insert each event once. `rewards` are the members' planned rewards of the same effects.
 */
export function teamEvents(
  def: CatalogDefinition,
  tenantId: string,
  teamId: string,
  memberships: readonly TeamMembership[],
  names: ReadonlyMap<string, string>,
  effects: readonly StreakEffect[],
  rewards: readonly PlannedReward[],
  now: number,
  context: { activityId?: string | null; wasReset?: boolean } = {},
): PlannedEvent[] {
  const spec = def.rules.window;
  if (spec.type !== "CALENDAR") return [];
  const out: PlannedEvent[] = [];
  for (const effect of effects) {
    for (const memberId of rosterAt(memberships, effectWindowStart(spec, effect, now))) {
      const owner = {
        tenantId, memberId, memberExternalId: names.get(memberId) ?? "", definitionId: def.id, memberStreakId: teamEventOwnerKey(teamId, memberId),
        activityId: context.activityId ?? null, wasReset: context.wasReset,
      };
      for (const e of eventsForEffects(owner, [effect], rewards.filter((r) => r.memberId === memberId), now)) {
        out.push(e.type.startsWith("streak.") ? { ...e, payload: { ...e.payload, team_id: teamId } } : e);
      }
    }
  }
  return out;
}

/** Each roster member's rewards for the milestones among `effects` (reward_grant_once keeps each at once). */
export function teamRewards(def: CatalogDefinition, tenantId: string, config: TeamConfig, effects: readonly StreakEffect[], activityId: string | null, now: number): PlannedReward[] {
  return effects.flatMap((effect) =>
    teamAwards(def.rules, config, [effect]).flatMap((a) => planRewards(def, { tenantId, memberId: a.memberId, memberStreakId: "", activityId }, [effect], now)),
  );
}

/**
 * Saves a team transition and what it produced (members' rewards and outbox rows, the team's events per member),
 * as recording activity does; for the sweeps and the admin operations.
 */
export async function persistTeamTransition(
  client: PoolClient,
  def: CatalogDefinition,
  tenantId: string,
  teamId: string,
  config: TeamConfig,
  state: TeamStreakState,
  effects: readonly StreakEffect[],
  now: number,
  history: { readonly finalised?: readonly WindowRecord[]; readonly bridge?: Bridge } = {},
): Promise<void> {
  await saveTeam(client, tenantId, def, config.rule, teamId, state, now);
  await saveTeamHistory(client, tenantId, def.id, teamId, history, now);
  if (effects.length === 0) return;
  const rewards = teamRewards(def, tenantId, config, effects, null, now);
  await insertRewardsAndOutbox(client, rewards);
  await insertEvents(client, teamEvents(def, tenantId, teamId, config.memberships, await externalIds(client, tenantId, config.memberships), effects, rewards, now));
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
  /** The team's events (teamEvents), for the recording transaction to insert with the member's own. */
  readonly events: readonly PlannedEvent[];
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
  if (r.outcome.kind !== "DUPLICATE") {
    await saveTeam(client, tenantId, def, rule, teamId, r.state, now);
    await saveTeamHistory(client, tenantId, def.id, teamId, r, now);
  }
  // Each milestone the team reached, once per member on its roster (reward_grant_once keeps it at once).
  const rewards = teamRewards(def, tenantId, config, r.effects, activityId, now);
  const wasReset = r.outcome.kind === "APPLIED" && r.outcome.wasReset;
  const events = r.effects.length === 0
    ? []
    : teamEvents(def, tenantId, teamId, config.memberships, await externalIds(client, tenantId, config.memberships), r.effects, rewards, now, { activityId, wasReset });
  return { teamId, outcome: r.outcome, effects: r.effects, rewards, events };
}

export interface TeamStore {
  create(tenantId: string, definitionId: string, name: string, memberExternalIds: readonly string[]): Promise<TeamView>;
  addMember(tenantId: string, teamId: string, memberExternalId: string): Promise<TeamView>;
  removeMember(tenantId: string, teamId: string, memberExternalId: string): Promise<TeamView>;
  get(tenantId: string, teamId: string): Promise<TeamView>;
  /** The member's team on `def` in the current window, or null (not a team definition, or on no team now). */
  progressForMember(tenantId: string, def: CatalogDefinition, memberExternalId: string): Promise<TeamView | null>;
  /** Adds freezes to the team, capped by the team freeze policy (MemberStore.grantFreezes for a team). */
  grantFreezes(tenantId: string, teamId: string, count: number): Promise<{ granted: number; team: TeamView }>;
  /** Restores the team's broken streak (MemberStore.repair for a team); nothing is written on refusal. */
  repair(tenantId: string, teamId: string): Promise<{ restoredCount: number; team: TeamView }>;
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

  /** Locks the team and runs `op` on it with its definition; `op` returns the new state and its effects. */
  async function locked<T>(
    tenantId: string,
    teamId: string,
    op: (t: { def: CatalogDefinition; rule: TeamRule; config: TeamConfig; state: TeamStreakState; now: number }) => {
      state: TeamStreakState; effects: readonly StreakEffect[]; finalised?: readonly WindowRecord[]; bridge?: Bridge; result: T;
    },
  ): Promise<T & { team: TeamView }> {
    return inTransaction(pool, async (client) => {
      const team = await loadTeam(client, tenantId, teamId, undefined, true);
      if (!team) throw notFoundError("team", { team_id: teamId });
      const { def, rule } = await teamDefinition(tenantId, team.definitionId);
      const now = deps.now();
      const config: TeamConfig = { rule, memberships: team.config.memberships };
      const r = op({ def, rule, config, state: team.state, now });
      await persistTeamTransition(client, def, tenantId, teamId, config, r.state, r.effects, now, r);
      return { ...r.result, team: await view(client, tenantId, { ...team, state: r.state }, def, rule, now) };
    });
  }

  return {
    grantFreezes: (tenantId, teamId, count) =>
      locked(tenantId, teamId, ({ def, rule, config, state, now }) => {
        if (((rule.freezePolicy ?? def.rules.freezePolicy)?.maxHeld ?? 0) <= 0) {
          throw new EngineError("FAILED_PRECONDITION", "FREEZES_DISABLED", "the team's freeze policy allows no freezes", { team_id: teamId });
        }
        const opts = { pausedIntervals: def.pauses };
        const before = advanceTeam(def.rules, config, state, now, opts).state.chain.freezesHeld;
        const r = grantTeamFreezes(def.rules, config, state, count, now, opts);
        return { ...r, result: { granted: Math.max(0, r.outcome.freezesHeld - before) } };
      }),

    repair: (tenantId, teamId) =>
      locked(tenantId, teamId, ({ def, config, state, now }) => {
        const r = repairTeam(def.rules, config, state, now, { pausedIntervals: def.pauses });
        if (r.outcome.kind === "NOT_REPAIRABLE") {
          // Thrown inside the transaction: nothing is written (the finalisation repair did in memory is the sweeps').
          throw new EngineError("FAILED_PRECONDITION", REPAIR_REASONS[r.outcome.reason], `the team streak cannot be repaired (${r.outcome.reason.toLowerCase()})`, { team_id: teamId });
        }
        return { ...r, result: { restoredCount: r.outcome.restoredCount } };
      }),

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
