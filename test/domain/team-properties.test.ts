import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  addMembership, advanceTeam, applyTeamActivity, createMemberships, DomainError, initialState, initialTeamState, milestoneKey,
  recomputeTeam, removeMembership, repairTeam, requiredMembers, rosterAt, teamAwards, teamChainEntries, teamChainRules, unsavedWindows, windowFor,
} from "../../src/domain/index.ts";
import type {
  ActivityInput, CalendarWindowSpec, StreakEffect, StreakRules, TeamActivity, TeamConfig, TeamRule, TeamStreakState, WindowRecord,
} from "../../src/domain/index.ts";

const HOUR = 3_600_000;
const T0 = Date.UTC(2025, 2, 4); // spans the March DST changes of the zones below

export const TEAM_RUNS = { a: 1500, d: 1000, e: 1000, h: 1000, k: 1000, m: 500 };

const MEMBERS = ["ana", "ben", "sam", "zoe", "kit"];

const rulesArb: fc.Arbitrary<StreakRules> = fc
  .record({
    period: fc.constantFrom("DAILY", "DAILY", "WEEKLY"),
    zone: fc.constantFrom("UTC", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"),
    reset: fc.constantFrom("00:00", "02:30", "23:30"),
    cond: fc.constantFrom<StreakRules["condition"]>({ type: "COUNT", min: 1 }, { type: "COUNT", min: 2 }, { type: "SUM", min: 7.5 }, { type: "DISTINCT", min: 2 }),
    grace: fc.constantFrom(0, 2 * 3600, 30 * 3600),
    completion: fc.constantFrom(0, 0, 4),
    freezes: fc.integer({ min: 0, max: 1 }),
  })
  .map(({ period, zone, reset, cond, grace, completion, freezes }) => ({
    window: { type: "CALENDAR" as const, period, timezone: zone, resetTime: reset, weekStart: 1 + (reset.length % 7) },
    condition: cond,
    graceSeconds: grace,
    completionTarget: completion,
    freezePolicy: { maxHeld: 2, initial: freezes },
    repairWindowSeconds: 4 * 86400,
    milestones: [{ threshold: 2 }, { threshold: 3, repeatable: true }, { threshold: 5, reward: { kind: "FREEZE" as const, value: 1 } }],
  }));

const teamRuleArb: fc.Arbitrary<TeamRule> = fc.record({
  minMembersSatisfied: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
  freezePolicy: fc.option(fc.constant({ maxHeld: 1, initial: 1 }), { nil: undefined }),
});

/** Member activities and membership changes, at arrival times anywhere inside each event's grace horizon. */
const opsArb = fc.record({
  size: fc.integer({ min: 2, max: 4 }),
  activities: fc.array(
    fc.record({
      member: fc.integer({ min: 0, max: 4 }),
      hour: fc.integer({ min: 0, max: 16 * 24 }),
      minute: fc.integer({ min: 0, max: 59 }),
      value: fc.integer({ min: 0, max: 6 }),
      key: fc.constantFrom("a", "b", "c"),
      delay: fc.double({ min: 0, max: 0.999, noNaN: true }),
    }),
    { minLength: 1, maxLength: 30 },
  ),
  changes: fc.array(
    fc.record({ add: fc.boolean(), member: fc.integer({ min: 0, max: 4 }), hour: fc.integer({ min: 0, max: 16 * 24 }) }),
    { maxLength: 4 },
  ),
});

type Op =
  | { readonly t: number; readonly kind: "activity"; readonly memberId: string; readonly activity: ActivityInput }
  | { readonly t: number; readonly kind: "change"; readonly add: boolean; readonly memberId: string };

type Ops = typeof opsArb extends fc.Arbitrary<infer O> ? O : never;

function schedule(rules: StreakRules, ops: Ops): Op[] {
  const spec = rules.window as CalendarWindowSpec;
  const grace = (rules.graceSeconds ?? 0) * 1000;
  const list: Op[] = [
    ...ops.activities.map((a, i): Op => {
      const at = T0 + a.hour * HOUR + a.minute * 60_000;
      const horizon = windowFor(spec, at, spec.timezone).endMs + grace - at;
      return {
        t: at + Math.floor(a.delay * horizon),
        kind: "activity",
        memberId: MEMBERS[a.member] as string,
        activity: { id: `e${i}`, occurredAt: at, value: a.value, distinctKey: a.key },
      };
    }),
    ...ops.changes.map((c): Op => ({ t: T0 + c.hour * HOUR + 17 * 60_000, kind: "change", add: c.add, memberId: MEMBERS[c.member] as string })),
  ];
  return list.sort((x, y) => x.t - y.t || (x.kind === y.kind ? 0 : x.kind === "change" ? -1 : 1));
}

interface Played {
  readonly state: TeamStreakState;
  readonly team: TeamConfig;
  readonly applied: TeamActivity[];
  readonly effects: StreakEffect[];
  /** The team windows each step finalised (what the stores write to team_window), in order. */
  readonly finalised: WindowRecord[];
  readonly steps: { readonly before: TeamStreakState; readonly after: TeamStreakState; readonly team: TeamConfig }[];
}

/** Plays the schedule incrementally: each activity with the team as configured at its arrival. */
function play(rules: StreakRules, rule: TeamRule, size: number, ops: readonly Op[]): Played {
  let team: TeamConfig = { rule, memberships: createMemberships(rules, MEMBERS.slice(0, size), T0) };
  let state = initialTeamState(rules, rule);
  const applied: TeamActivity[] = [];
  const effects: StreakEffect[] = [];
  const finalised: WindowRecord[] = [];
  const steps: Played["steps"][number][] = [];
  for (const op of ops) {
    if (op.kind === "change") {
      try {
        const memberships = op.add ? addMembership(rules, team.memberships, op.memberId, op.t) : removeMembership(rules, team.memberships, op.memberId, op.t);
        team = { rule, memberships };
      } catch (e) {
        if (!(e instanceof DomainError)) throw e;
      }
      continue;
    }
    const r = applyTeamActivity(rules, team, state, op.memberId, op.activity, { now: op.t });
    expect(r.outcome.kind).toBe("APPLIED");
    applied.push({ memberId: op.memberId, activity: op.activity });
    effects.push(...r.effects);
    finalised.push(...(r.finalised ?? []));
    steps.push({ before: state, after: r.state, team });
    state = r.state;
  }
  return { state, team, applied, effects, finalised, steps };
}

describe("team streak properties", () => {
  it("team/recompute_equals_incremental: any arrival order of member activities and membership changes gives the state recompute gives", () => {
    fc.assert(
      fc.property(rulesArb, teamRuleArb, opsArb, fc.integer({ min: 0, max: 6 * 24 }), (rules, rule, ops, extraHours) => {
        const list = schedule(rules, ops);
        const p = play(rules, rule, ops.size, list);
        const end = Math.max(...list.map((o) => o.t)) + extraHours * HOUR;
        const incremental = advanceTeam(rules, p.team, p.state, end).state;
        const full = recomputeTeam(rules, p.team, p.applied, end);
        expect(incremental).toEqual(full);
      }),
      { numRuns: TEAM_RUNS.a },
    );
  });

  it("team/history_incremental_windows_equal_one_fold: the team windows finalised along the way and at the end are one fold's of the whole history", () => {
    fc.assert(
      fc.property(rulesArb, teamRuleArb, opsArb, fc.integer({ min: 0, max: 6 * 24 }), (rules, rule, ops, extraHours) => {
        const list = schedule(rules, ops);
        const p = play(rules, rule, ops.size, list);
        const end = Math.max(...list.map((o) => o.t)) + extraHours * HOUR;
        // As team_window stores them: by window start, a window finalised again overwriting the first row.
        const stored = new Map<number, WindowRecord>();
        for (const w of [...p.finalised, ...(advanceTeam(rules, p.team, p.state, end).finalised ?? [])]) stored.set(w.startMs, w);
        const chainRules = teamChainRules(rules, rule);
        const spec = rules.window as CalendarWindowSpec;
        const whole = { ...initialState(chainRules), zone: spec.timezone, tail: teamChainEntries(rules, p.team, p.applied) };
        const oneFold = unsavedWindows(chainRules, whole, end).filter((w) => w.final);
        expect([...stored.values()].sort((a, b) => a.startMs - b.startMs)).toEqual(oneFold);
      }),
      { numRuns: TEAM_RUNS.h },
    );
  });

  it("team/duplicates_inert: replaying a member activity never changes the team state", () => {
    fc.assert(
      fc.property(rulesArb, teamRuleArb, opsArb, fc.nat(), fc.integer({ min: 0, max: 72 }), (rules, rule, ops, pick, laterHours) => {
        const list = schedule(rules, ops);
        const p = play(rules, rule, ops.size, list);
        const dup = p.applied[pick % p.applied.length] as TeamActivity;
        const now = Math.max(...list.map((o) => o.t)) + laterHours * HOUR;
        const r = applyTeamActivity(rules, p.team, p.state, dup.memberId, dup.activity, { now });
        if (r.outcome.kind === "DUPLICATE") {
          expect(r.state).toBe(p.state);
          expect(r.effects).toEqual([]);
        } else {
          // Only an activity whose window is already final is forgotten; it is then refused, changing nothing.
          expect(r.outcome).toEqual({ kind: "NOT_APPLIED", reason: "TOO_LATE" });
          expect(r.state).toEqual(advanceTeam(rules, p.team, p.state, now).state);
        }
      }),
      { numRuns: TEAM_RUNS.d },
    );
  });

  it("team/k_of_n_threshold: a team window counts exactly when at least min(K, roster) roster members satisfied it", () => {
    fc.assert(
      fc.property(rulesArb, teamRuleArb, opsArb, (rules, rule, ops) => {
        const list = schedule(rules, ops);
        const p = play(rules, rule, ops.size, list);
        const spec = rules.window as CalendarWindowSpec;
        // Oracle, written independently of the domain's aggregation: per window and member, the condition by hand.
        const perWindow = new Map<string, { start: number; byMember: Map<string, ActivityInput[]> }>();
        for (const a of p.applied) {
          const w = windowFor(spec, a.activity.occurredAt, spec.timezone);
          const g = perWindow.get(w.key) ?? { start: w.startMs, byMember: new Map<string, ActivityInput[]>() };
          perWindow.set(w.key, g);
          g.byMember.set(a.memberId, [...(g.byMember.get(a.memberId) ?? []), a.activity]);
        }
        const satisfies = (acts: readonly ActivityInput[]) => {
          const c = rules.condition;
          const agg = c.type === "COUNT" ? acts.length : c.type === "SUM" ? acts.reduce((s, a) => s + (a.value ?? 0), 0) : new Set(acts.map((a) => a.distinctKey)).size;
          return agg >= c.min;
        };
        let expected = 0;
        for (const g of perWindow.values()) {
          const roster = rosterAt(p.team.memberships, g.start);
          const done = roster.filter((m) => satisfies(g.byMember.get(m) ?? [])).length;
          const k = Math.min(rule.minMembersSatisfied ?? roster.length, roster.length);
          if (roster.length > 0 && done >= k) expected++;
        }
        const end = Math.max(...list.map((o) => o.t)) + 40 * 24 * HOUR;
        const full = recomputeTeam(rules, p.team, p.applied, end);
        expect(full.chain.activityCount).toBe(expected);
        expect(requiredMembers(rule, 0)).toBe(Number.POSITIVE_INFINITY);
        // Lowering K never counts fewer team windows.
        const lower = recomputeTeam(rules, { ...p.team, rule: { ...rule, minMembersSatisfied: 1 } }, p.applied, end);
        expect(lower.chain.activityCount).toBeGreaterThanOrEqual(full.chain.activityCount);
      }),
      { numRuns: TEAM_RUNS.k },
    );
  });

  it("team/membership_change_effective_next_window: a change never alters the roster of a window that has started", () => {
    fc.assert(
      fc.property(rulesArb, opsArb, (rules, ops) => {
        const spec = rules.window as CalendarWindowSpec;
        let memberships = createMemberships(rules, MEMBERS.slice(0, ops.size), T0);
        // Changes in time order, as a team sees them.
        for (const c of [...ops.changes].sort((x, y) => x.hour - y.hour)) {
          const t = T0 + c.hour * HOUR + 17 * 60_000;
          const memberId = MEMBERS[c.member] as string;
          let next = memberships;
          try {
            next = c.add ? addMembership(rules, memberships, memberId, t) : removeMembership(rules, memberships, memberId, t);
          } catch (e) {
            if (!(e instanceof DomainError)) throw e;
            continue;
          }
          const w = windowFor(spec, t, spec.timezone);
          const following = windowFor(spec, w.endMs, spec.timezone);
          // Every window that had started (this one and all before it) keeps its roster …
          for (let s = w; s.startMs >= T0 - 7 * 24 * HOUR; s = windowFor(spec, s.startMs - 1, spec.timezone)) {
            expect(rosterAt(next, s.startMs)).toEqual(rosterAt(memberships, s.startMs));
          }
          // … and the change shows from the next one on.
          expect(rosterAt(next, following.startMs).includes(memberId)).toBe(c.add);
          memberships = next;
        }
      }),
      { numRuns: TEAM_RUNS.m },
    );
  });

  it("team/no_double_award: with repairs interleaved, each member is awarded each team milestone grant at most once", () => {
    fc.assert(
      fc.property(rulesArb, teamRuleArb, opsArb, fc.array(fc.integer({ min: 0, max: 16 * 24 }), { maxLength: 4 }), (rules, rule, ops, repairHours) => {
        const list = schedule(rules, ops);
        let team: TeamConfig = { rule, memberships: createMemberships(rules, MEMBERS.slice(0, ops.size), T0) };
        let state = initialTeamState(rules, rule);
        const all = [...list.map((o) => ({ t: o.t, op: o })), ...repairHours.map((h) => ({ t: T0 + h * HOUR + 1, op: null }))].sort((x, y) => x.t - y.t);
        const awarded: string[] = [];
        const granted: string[] = [];
        for (const step of all) {
          if (step.op !== null && step.op.kind === "change") {
            const op = step.op;
            try {
              team = { rule, memberships: op.add ? addMembership(rules, team.memberships, op.memberId, op.t) : removeMembership(rules, team.memberships, op.memberId, op.t) };
            } catch (e) {
              if (!(e instanceof DomainError)) throw e;
            }
            continue;
          }
          const r = step.op === null ? repairTeam(rules, team, state, step.t) : applyTeamActivity(rules, team, state, step.op.memberId, step.op.activity, { now: step.t });
          const before = new Set(state.chain.earned.map(milestoneKey));
          for (const e of r.effects) {
            if (e.type !== "streak.milestone_reached") continue;
            expect(before.has(milestoneKey(e))).toBe(false);
            granted.push(milestoneKey(e));
          }
          awarded.push(...teamAwards(rules, team, r.effects).map((a) => a.awardKey));
          state = r.state;
        }
        expect(new Set(awarded).size).toBe(awarded.length);
        expect(new Set(granted).size).toBe(granted.length);
        expect(new Set(granted)).toEqual(new Set(state.chain.earned.map(milestoneKey)));
      }),
      { numRuns: TEAM_RUNS.e },
    );
  });
});
