import { nextWindow, windowFor } from "./calendar-window.ts";
import type { CalendarWindowSpec, WindowBounds } from "./calendar-window.ts";
import { compareEntries, evaluateCondition } from "./condition.ts";
import type { ActivityEntry } from "./condition.ts";
import { DomainError } from "./domain-error.ts";
import { milestoneKey } from "./streak-chain.ts";
import {
  advance, atRisk, deadlines, frontierOf, grantFreezes, initialState, recompute, repair, withTail,
} from "./streak-machine.ts";
import type {
  ActivityInput, ApplyContext, ApplyOutcome, Bridge, Deadlines, EvalOptions, MemberStreakState, NotAppliedReason,
  RepairOutcome, StreakEffect, WindowRecord,
} from "./streak-machine.ts";
import type { FreezePolicy, Milestone, StreakRules } from "./rules.ts";

/**
 * Team streaks, composed from the individual machinery. Each member's own satisfaction of a window is computed
 * exactly as for an individual streak (the definition's condition over that member's activities in the window).
 * A team window counts when at least K members of that window's roster satisfied it, at the instant the K-th of
 * them did. The team's streak is an ordinary streak chain fed with one "window satisfied" entry per counted team
 * window (id `team:<window key>`, event time = that instant), so grace, late events, freezes, pauses, repair,
 * completion and milestones are the individual semantics unchanged.
 *
 * Team windows are the definition's calendar windows in the definition's zone (a team shares one clock), so
 * rolling windows and `useMemberTimezone` are refused for team definitions.
 */

export const MIN_TEAM_MEMBERS = 2;
export const MAX_TEAM_MEMBERS = 100;

export interface TeamRule {
  /** K: a team window counts when at least this many roster members satisfied it; absent = every member. */
  readonly minMembersSatisfied?: number;
  /** The team's own freeze policy (freezes the team holds); absent = the definition's. */
  readonly freezePolicy?: FreezePolicy;
}

/** One stretch of membership, in window starts: the member counts in windows starting in `[fromMs, toMs)`. */
export interface TeamMembership {
  readonly memberId: string;
  readonly fromMs: number;
  /** null while still a member. */
  readonly toMs: number | null;
}

export interface TeamConfig {
  readonly rule: TeamRule;
  readonly memberships: readonly TeamMembership[];
}

/** A team streak as stored: the team chain plus each member's activities whose windows are not final yet. */
export interface TeamStreakState {
  readonly version: 1;
  readonly chain: MemberStreakState;
  /** Per member, in event-time order; entries of final windows are dropped (they can no longer change). */
  readonly members: Readonly<Record<string, readonly ActivityEntry[]>>;
}

export interface TeamTransition<O> {
  readonly state: TeamStreakState;
  readonly outcome: O;
  /** The team chain's effects (`streak.*`), for the team as a whole. */
  readonly effects: readonly StreakEffect[];
  /** The team windows this transition finalised, oldest first: the team's history to store with the state. */
  readonly finalised?: readonly WindowRecord[];
  /** Set by a repair: the team windows it bridged (as for an individual repair). */
  readonly bridge?: Bridge;
}

/** Every reason `rules` + `rule` cannot be a team streak; empty when they can. */
export function validateTeamRule(rules: StreakRules, rule: TeamRule): DomainError[] {
  const errors: DomainError[] = [];
  if (rules.window.type !== "CALENDAR") {
    errors.push(new DomainError("INVALID_TEAM_RULE", "window", "team streaks need calendar windows (a team shares one window)"));
  } else if (rules.window.useMemberTimezone === true) {
    errors.push(new DomainError("INVALID_TEAM_RULE", "window.useMemberTimezone", "team windows use the definition's zone, not each member's"));
  }
  const k = rule.minMembersSatisfied;
  if (k !== undefined && !(Number.isInteger(k) && k >= 1 && k <= MAX_TEAM_MEMBERS)) {
    errors.push(new DomainError("INVALID_TEAM_RULE", "team.minMembersSatisfied", `at least K of N needs a whole K from 1 to ${MAX_TEAM_MEMBERS}`));
  }
  const fp = rule.freezePolicy;
  if (fp !== undefined && !(Number.isInteger(fp.maxHeld) && fp.maxHeld >= 0 && fp.maxHeld <= 1000 && Number.isInteger(fp.initial ?? 0) && (fp.initial ?? 0) >= 0 && (fp.initial ?? 0) <= fp.maxHeld)) {
    errors.push(new DomainError("INVALID_TEAM_RULE", "team.freezePolicy", "freeze policy needs whole numbers with 0 <= initial <= maxHeld <= 1000"));
  }
  return errors;
}

function calendarSpec(rules: StreakRules): CalendarWindowSpec {
  const w = rules.window;
  if (w.type !== "CALENDAR") throw new DomainError("INVALID_TEAM_RULE", "window", "team streaks need calendar windows");
  return w;
}

const chainRulesMemo = new WeakMap<StreakRules, WeakMap<TeamRule, StreakRules>>();

/**
 * The rules of the team chain: the definition's, counting a window on one "window satisfied" entry, in the
 * definition's zone, with the team's freeze policy. The same object for the same inputs (folds are memoised by
 * rules identity).
 */
export function teamChainRules(rules: StreakRules, rule: TeamRule): StreakRules {
  let byRule = chainRulesMemo.get(rules);
  if (byRule === undefined) chainRulesMemo.set(rules, (byRule = new WeakMap()));
  let r = byRule.get(rule);
  if (r === undefined) {
    const spec = calendarSpec(rules);
    r = {
      ...rules,
      window: { ...spec, useMemberTimezone: false },
      condition: { type: "COUNT", min: 1 },
      freezePolicy: rule.freezePolicy ?? rules.freezePolicy,
    };
    byRule.set(rule, r);
  }
  return r;
}

/** Start of the window a membership change made at `now` takes effect in: the next one. */
export function membershipEffectiveFrom(rules: StreakRules, now: number): number {
  const spec = calendarSpec(rules);
  return nextWindow(spec, windowFor(spec, now, spec.timezone), spec.timezone).startMs;
}

/** The members who count in the window starting at `windowStartMs`, sorted. */
export function rosterAt(memberships: readonly TeamMembership[], windowStartMs: number): string[] {
  const ids = new Set<string>();
  for (const m of memberships) {
    if (m.fromMs <= windowStartMs && (m.toMs === null || m.toMs > windowStartMs)) ids.add(m.memberId);
  }
  return [...ids].sort();
}

/** How many roster members must satisfy a window: K capped at the roster size; an empty roster never counts. */
export function requiredMembers(rule: TeamRule, rosterSize: number): number {
  if (rosterSize === 0) return Number.POSITIVE_INFINITY;
  return Math.min(rule.minMembersSatisfied ?? rosterSize, rosterSize);
}

/** The members a new team starts with: they count from the window the team is created in. */
export function createMemberships(rules: StreakRules, memberIds: readonly string[], now: number): TeamMembership[] {
  const unique = [...new Set(memberIds)];
  if (unique.length !== memberIds.length || unique.length < MIN_TEAM_MEMBERS || unique.length > MAX_TEAM_MEMBERS) {
    throw new DomainError("INVALID_TEAM_SIZE", "memberIds", `a team has ${MIN_TEAM_MEMBERS} to ${MAX_TEAM_MEMBERS} distinct members`);
  }
  const spec = calendarSpec(rules);
  const from = windowFor(spec, now, spec.timezone).startMs;
  return unique.map((memberId) => ({ memberId, fromMs: from, toMs: null }));
}

/** Adds a member from the next window. A member removed effective that same window simply stays. */
export function addMembership(rules: StreakRules, memberships: readonly TeamMembership[], memberId: string, now: number): TeamMembership[] {
  const eff = membershipEffectiveFrom(rules, now);
  if (memberships.some((m) => m.memberId === memberId && m.toMs === null)) {
    throw new DomainError("ALREADY_TEAM_MEMBER", "memberId", `${memberId} is already on the team`);
  }
  if (rosterAt(memberships, eff).length + 1 > MAX_TEAM_MEMBERS) {
    throw new DomainError("INVALID_TEAM_SIZE", "memberId", `a team has at most ${MAX_TEAM_MEMBERS} members`);
  }
  // Removed from a window not started yet (at `eff` or later): the removal is undone instead.
  const resumed = memberships.findIndex((m) => m.memberId === memberId && m.toMs !== null && m.toMs >= eff);
  if (resumed >= 0) return memberships.map((m, i) => (i === resumed ? { ...m, toMs: null } : m));
  return [...memberships, { memberId, fromMs: eff, toMs: null }];
}

/** Removes a member from the next window; they still count in the current one. Keeps at least two members. */
export function removeMembership(rules: StreakRules, memberships: readonly TeamMembership[], memberId: string, now: number): TeamMembership[] {
  const eff = membershipEffectiveFrom(rules, now);
  const open = memberships.findIndex((m) => m.memberId === memberId && m.toMs === null);
  if (open < 0) throw new DomainError("NOT_TEAM_MEMBER", "memberId", `${memberId} is not on the team`);
  if (rosterAt(memberships, eff).length - 1 < MIN_TEAM_MEMBERS) {
    throw new DomainError("INVALID_TEAM_SIZE", "memberId", `a team keeps at least ${MIN_TEAM_MEMBERS} members`);
  }
  const m = memberships[open] as TeamMembership;
  // Added in this window and not counting yet: the membership never takes effect.
  if (m.fromMs >= eff) return memberships.filter((_, i) => i !== open);
  return memberships.map((x, i) => (i === open ? { ...x, toMs: eff } : x));
}

export function initialTeamState(rules: StreakRules, rule: TeamRule): TeamStreakState {
  return { version: 1, chain: initialState(teamChainRules(rules, rule)), members: {} };
}

function graceMs(rules: StreakRules): number {
  return (rules.graceSeconds ?? 0) * 1000;
}

interface WindowMembers {
  readonly w: WindowBounds;
  readonly byMember: Map<string, ActivityEntry[]>;
}

function groupByWindow(spec: CalendarWindowSpec, members: Readonly<Record<string, readonly ActivityEntry[]>>): WindowMembers[] {
  const windows = new Map<string, WindowMembers>();
  for (const [memberId, entries] of Object.entries(members)) {
    for (const e of entries) {
      const w = windowFor(spec, e.at, spec.timezone);
      let g = windows.get(w.key);
      if (g === undefined) windows.set(w.key, (g = { w, byMember: new Map() }));
      const list = g.byMember.get(memberId);
      if (list === undefined) g.byMember.set(memberId, [e]);
      else list.push(e);
    }
  }
  return [...windows.values()].sort((a, b) => a.w.startMs - b.w.startMs);
}

/** Per roster member: the event time at which they satisfied the window, or null. Entries are in event-time order. */
function memberSatisfaction(rules: StreakRules, roster: readonly string[], byMember: ReadonlyMap<string, readonly ActivityEntry[]>) {
  return roster.map((memberId) => ({
    memberId,
    satisfiedAt: evaluateCondition(rules.condition, byMember.get(memberId) ?? []).satisfiedAt,
  }));
}

/** The team chain's entries: one per team window that at least K roster members satisfied. */
function teamEntries(rules: StreakRules, team: TeamConfig, members: Readonly<Record<string, readonly ActivityEntry[]>>): ActivityEntry[] {
  const spec = calendarSpec(rules);
  const out: ActivityEntry[] = [];
  for (const g of groupByWindow(spec, members)) {
    const roster = rosterAt(team.memberships, g.w.startMs);
    const need = requiredMembers(team.rule, roster.length);
    const times = memberSatisfaction(rules, roster, g.byMember)
      .map((s) => s.satisfiedAt)
      .filter((t): t is number => t !== null)
      .sort((a, b) => a - b);
    if (times.length >= need) out.push({ id: `team:${g.w.key}`, at: times[need - 1] as number, value: 1, key: null });
  }
  return out;
}

/** Drops member entries whose window is final at `now`: nothing can change them, and the chain has absorbed them. */
function pruneFinal(rules: StreakRules, members: Readonly<Record<string, readonly ActivityEntry[]>>, now: number) {
  const spec = calendarSpec(rules);
  const grace = graceMs(rules);
  const out: Record<string, readonly ActivityEntry[]> = {};
  for (const [memberId, entries] of Object.entries(members)) {
    const open = entries.filter((e) => now < windowFor(spec, e.at, spec.timezone).endMs + grace);
    if (open.length > 0) out[memberId] = open;
  }
  return out;
}

/** Finalises the team chain at `now` (breaks, freezes, settles) and forgets member entries of final windows. */
export function advanceTeam(rules: StreakRules, team: TeamConfig, state: TeamStreakState, now: number, opts: EvalOptions = {}): TeamTransition<null> {
  const a = advance(teamChainRules(rules, team.rule), state.chain, now, opts);
  return { state: { version: 1, chain: a.state, members: pruneFinal(rules, state.members, now) }, outcome: null, effects: a.effects, finalised: a.finalised ?? [] };
}

/** Re-derives the team chain from the member entries (state already advanced to `now`). */
function rederive(
  rules: StreakRules,
  team: TeamConfig,
  s: TeamStreakState,
  members: Readonly<Record<string, readonly ActivityEntry[]>>,
  now: number,
  opts: EvalOptions,
) {
  const chainRules = teamChainRules(rules, team.rule);
  const tail = teamEntries(rules, team, members);
  // Entries of windows already absorbed lie before every tail entry, and a counted window never uncounts
  // (its roster is fixed and entries are only added), so counts and the latest instant follow from the tail.
  const activityCount = s.chain.activityCount - s.chain.tail.length + tail.length;
  const lastActivityAt = tail.length > 0 ? Math.max(...tail.map((e) => e.at)) : s.chain.lastActivityAt;
  const zone = activityCount > 0 ? calendarSpec(rules).timezone : s.chain.zone;
  const t = withTail(chainRules, s.chain, tail, now, opts, { zone, lastActivityAt, activityCount });
  return { state: { version: 1 as const, chain: t.state, members }, effects: t.effects };
}

/**
 * Applies one member's activity to the team streak. `team` is the configuration as of `ctx.now`. The outcome is
 * about the member (isNewActivity: this activity satisfied the window for them; wasReset: it started a new team
 * run); the effects are the team chain's.
 */
export function applyTeamActivity(
  rules: StreakRules,
  team: TeamConfig,
  state: TeamStreakState,
  memberId: string,
  activity: ActivityInput,
  ctx: ApplyContext,
): TeamTransition<ApplyOutcome> {
  if ((state.members[memberId] ?? []).some((e) => e.id === activity.id)) {
    return { state, outcome: { kind: "DUPLICATE" }, effects: [] };
  }
  const advanced = advanceTeam(rules, team, state, ctx.now, ctx);
  const notApplied = (reason: NotAppliedReason): TeamTransition<ApplyOutcome> => ({
    state: advanced.state,
    outcome: { kind: "NOT_APPLIED", reason },
    effects: advanced.effects,
    finalised: advanced.finalised,
  });
  const value = activity.value ?? 0;
  if (!Number.isFinite(value) || value < 0 || !Number.isFinite(activity.occurredAt)) return notApplied("INVALID_VALUE");
  if (activity.occurredAt > ctx.now + (ctx.futureToleranceMs ?? 0)) return notApplied("IN_FUTURE");
  const s = advanced.state;
  const spec = calendarSpec(rules);
  const w = windowFor(spec, activity.occurredAt, spec.timezone);
  const cursor = s.chain.base.cursor;
  if ((cursor !== null && activity.occurredAt < cursor) || ctx.now >= w.endMs + graceMs(rules)) return notApplied("TOO_LATE");

  const entry: ActivityEntry = { id: activity.id, at: activity.occurredAt, value, key: activity.distinctKey ?? null };
  const own = s.members[memberId] ?? [];
  const inWindow = (list: readonly ActivityEntry[]) => list.filter((e) => e.at >= w.startMs && e.at < w.endMs);
  const wasSatisfied = evaluateCondition(rules.condition, inWindow(own)).satisfied;
  const mine = [...own, entry].sort(compareEntries);
  const r = rederive(rules, team, s, { ...s.members, [memberId]: mine }, ctx.now, ctx);
  const before = s.chain;
  const next = r.state.chain;
  const wasReset = next.lastReset !== null && next.lastReset.runStartKey !== before.lastReset?.runStartKey && next.current > 0;
  return {
    state: r.state,
    outcome: {
      kind: "APPLIED",
      isNewActivity: !wasSatisfied && evaluateCondition(rules.condition, inWindow(mine)).satisfied,
      wasReset,
      previousStreak: wasReset && next.lastReset !== null ? next.lastReset.previousStreak : 0,
      windowKey: w.key,
    },
    effects: [...advanced.effects, ...r.effects],
    // Only windows final at `now` are finalised, and advancing finalised them all: the new entry is in a live window.
    finalised: advanced.finalised,
  };
}

/** A member's activity for recompute: who did it, and the activity as applied. */
export interface TeamActivity {
  readonly memberId: string;
  readonly activity: ActivityInput;
}

/**
 * The team streak the full history gives at `now`: the team entries derived from every applied member activity,
 * folded by the individual `recompute`. Equals incremental processing (property-tested), with `team` the current
 * configuration (changes only ever take effect in windows that had not started when they were made).
 */
export function recomputeTeam(
  rules: StreakRules,
  team: TeamConfig,
  activities: readonly TeamActivity[],
  now: number,
  opts: EvalOptions = {},
): TeamStreakState {
  const members = membersOf(activities);
  const facts = teamEntries(rules, team, members).map((e) => ({ id: e.id, occurredAt: e.at, value: e.value }));
  const chain = recompute(teamChainRules(rules, team.rule), facts, now, opts);
  return { version: 1, chain, members: pruneFinal(rules, members, now) };
}

function membersOf(activities: readonly TeamActivity[]): Record<string, ActivityEntry[]> {
  const members: Record<string, ActivityEntry[]> = {};
  const seen = new Set<string>();
  for (const { memberId, activity: a } of activities) {
    const k = JSON.stringify([memberId, a.id]);
    if (seen.has(k)) continue;
    seen.add(k);
    (members[memberId] ??= []).push({ id: a.id, at: a.occurredAt, value: a.value ?? 0, key: a.distinctKey ?? null });
  }
  for (const list of Object.values(members)) list.sort(compareEntries);
  return members;
}

/** The team chain's entries the full history gives: one per counted team window (what `recomputeTeam` folds). */
export function teamChainEntries(rules: StreakRules, team: TeamConfig, activities: readonly TeamActivity[]): ActivityEntry[] {
  return teamEntries(rules, team, membersOf(activities));
}

/** Restores the team's broken streak (the individual `repair` on the team chain). */
export function repairTeam(rules: StreakRules, team: TeamConfig, state: TeamStreakState, now: number, opts: EvalOptions = {}): TeamTransition<RepairOutcome> {
  const r = repair(teamChainRules(rules, team.rule), state.chain, now, opts);
  return {
    state: { version: 1, chain: r.state, members: pruneFinal(rules, state.members, now) }, outcome: r.outcome, effects: r.effects,
    finalised: r.finalised ?? [], ...(r.bridge === undefined ? {} : { bridge: r.bridge }),
  };
}

/** Adds freezes to the team (capped by the team freeze policy). */
export function grantTeamFreezes(rules: StreakRules, team: TeamConfig, state: TeamStreakState, count: number, now: number, opts: EvalOptions = {}) {
  const r = grantFreezes(teamChainRules(rules, team.rule), state.chain, count, now, opts);
  return { state: { version: 1 as const, chain: r.state, members: pruneFinal(rules, state.members, now) }, outcome: r.outcome, effects: r.effects, finalised: r.finalised ?? [] };
}

export function teamDeadlines(rules: StreakRules, team: TeamConfig, state: TeamStreakState, opts: EvalOptions = {}): Deadlines {
  return deadlines(teamChainRules(rules, team.rule), state.chain, opts);
}

/** One per-member award of a team milestone. `awardKey` is unique per (team milestone grant, member). */
export interface TeamAward {
  readonly memberId: string;
  readonly awardKey: string;
  readonly threshold: number;
  readonly milestone: Milestone;
}

/**
 * Rewards are per member: each milestone the team chain reaches is awarded once to every member on the roster
 * of the window it was reached in. The chain never grants a milestone twice, so no member is paid twice.
 */
export function teamAwards(rules: StreakRules, team: TeamConfig, effects: readonly StreakEffect[]): TeamAward[] {
  const spec = calendarSpec(rules);
  const out: TeamAward[] = [];
  for (const e of effects) {
    if (e.type !== "streak.milestone_reached") continue;
    const w = windowFor(spec, e.earnedAt, spec.timezone);
    for (const memberId of rosterAt(team.memberships, w.startMs)) {
      out.push({ memberId, awardKey: `${milestoneKey(e)}:${memberId}`, threshold: e.threshold, milestone: e.milestone });
    }
  }
  return out;
}

/** What each member's progress view shows about the team ("2 of 3 done today; Sam hasn't checked in"). */
export interface TeamWindowView {
  readonly windowKey: string;
  readonly windowStartAt: number;
  readonly windowEndAt: number;
  /** Roster of this window. */
  readonly rosterSize: number;
  /** K for this window (capped at the roster size). */
  readonly required: number;
  /** Roster members who satisfied the window, in the order they did. */
  readonly doneMembers: readonly string[];
  /** Roster members who have not yet, sorted. */
  readonly pendingMembers: readonly string[];
  readonly teamSatisfied: boolean;
  readonly current: number;
  readonly longest: number;
  readonly status: MemberStreakState["status"];
  readonly freezesHeld: number;
  /** The team's run is live and this window is within the at-risk lead of closing unsatisfied. */
  readonly atRisk: boolean;
}

function windowView(rules: StreakRules, team: TeamConfig, s: TeamStreakState, w: WindowBounds, now: number, opts: EvalOptions): TeamWindowView {
  const spec = calendarSpec(rules);
  const g = groupByWindow(spec, s.members).find((x) => x.w.key === w.key);
  const roster = rosterAt(team.memberships, w.startMs);
  const sat = memberSatisfaction(rules, roster, g?.byMember ?? new Map());
  const done = sat
    .filter((x) => x.satisfiedAt !== null)
    .sort((a, b) => (a.satisfiedAt as number) - (b.satisfiedAt as number) || (a.memberId < b.memberId ? -1 : 1))
    .map((x) => x.memberId);
  const required = requiredMembers(team.rule, roster.length);
  return {
    windowKey: w.key,
    windowStartAt: w.startMs,
    windowEndAt: w.endMs,
    rosterSize: roster.length,
    required: Number.isFinite(required) ? required : 0,
    doneMembers: done,
    pendingMembers: sat.filter((x) => x.satisfiedAt === null).map((x) => x.memberId),
    teamSatisfied: roster.length > 0 && done.length >= required,
    current: s.chain.current,
    longest: s.chain.longest,
    status: s.chain.status,
    freezesHeld: s.chain.freezesHeld,
    atRisk: atRisk(teamChainRules(rules, team.rule), s.chain, now, opts),
  };
}

/** The team's progress in the window containing `now`. */
export function teamProgress(rules: StreakRules, team: TeamConfig, state: TeamStreakState, now: number, opts: EvalOptions = {}): TeamWindowView {
  const s = advanceTeam(rules, team, state, now, opts).state;
  const spec = calendarSpec(rules);
  return windowView(rules, team, s, windowFor(spec, now, spec.timezone), now, opts);
}

/**
 * Who gets the at-risk reminder at `now`: when the team's run is at risk, the roster members of the window it
 * waits on (the current one, or the previous one still in grace) who have not satisfied it yet; otherwise nobody.
 */
export function teamAtRiskRecipients(rules: StreakRules, team: TeamConfig, state: TeamStreakState, now: number, opts: EvalOptions = {}): string[] {
  const s = advanceTeam(rules, team, state, now, opts).state;
  const chainRules = teamChainRules(rules, team.rule);
  if (!atRisk(chainRules, s.chain, now, opts)) return [];
  const f = frontierOf(chainRules, s.chain, now, opts).frontier.window;
  if (f === null) return [];
  return [...windowView(rules, team, s, f, now, opts).pendingMembers];
}
