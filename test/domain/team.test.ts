import { describe, expect, it } from "vitest";
import {
  addMembership, applyTeamActivity, createMemberships, grantTeamFreezes, initialTeamState, removeMembership,
  repairTeam, rosterAt, teamAtRiskRecipients, teamAwards, teamDeadlines, teamProgress, validateTeamRule,
} from "../../src/domain/index.ts";
import type { StreakEffect, StreakRules, TeamConfig, TeamRule, TeamStreakState } from "../../src/domain/index.ts";
import { daily, HOUR, ms, types } from "./helpers.ts";

const DAY1 = "2025-06-02";
const DAY2 = "2025-06-03";
const DAY3 = "2025-06-04";
const at = (day: string, time: string) => ms(`${day}T${time}`);

let seq = 0;

/** Applies `[member, event time, arrival?]` steps; returns the final state, all effects and the last outcome. */
function run(rules: StreakRules, team: TeamConfig, steps: readonly [string, number, number?][], from?: TeamStreakState) {
  let state = from ?? initialTeamState(rules, team.rule);
  const effects: StreakEffect[] = [];
  let last = null as ReturnType<typeof applyTeamActivity>["outcome"] | null;
  for (const [memberId, t, arrive] of steps) {
    const r = applyTeamActivity(rules, team, state, memberId, { id: `a${++seq}`, occurredAt: t, value: 1 }, { now: arrive ?? t });
    state = r.state;
    effects.push(...r.effects);
    last = r.outcome;
  }
  return { state, effects, last };
}

function trio(rules: StreakRules, rule: TeamRule = {}): TeamConfig {
  return { rule, memberships: createMemberships(rules, ["ana", "ben", "sam"], at(DAY1, "00:00")) };
}

describe("team progress view", () => {
  it("team/view_two_of_three_done_names_who_has_not: Ana and Ben checked in, Sam has not", () => {
    const rules = daily();
    const team = trio(rules);
    const { state } = run(rules, team, [["ben", at(DAY1, "10:00")], ["ana", at(DAY1, "09:00")]]);
    const v = teamProgress(rules, team, state, at(DAY1, "12:00"));
    expect(v).toMatchObject({
      windowKey: DAY1,
      rosterSize: 3,
      required: 3,
      doneMembers: ["ana", "ben"],
      pendingMembers: ["sam"],
      teamSatisfied: false,
      current: 0,
    });
  });

  it("team/every_member_needed_by_default: the window counts when the last member checks in, at their time", () => {
    const rules = daily();
    const team = trio(rules);
    const { state, effects, last } = run(rules, team, [["ana", at(DAY1, "09:00")], ["ben", at(DAY1, "10:00")], ["sam", at(DAY1, "13:00")]]);
    expect(last).toMatchObject({ kind: "APPLIED", isNewActivity: true, windowKey: DAY1 });
    expect(types(effects)).toEqual(["streak.incremented"]);
    expect(state.chain.current).toBe(1);
    expect(state.chain.lastCredited?.at).toBe(at(DAY1, "13:00"));
    const v = teamProgress(rules, team, state, at(DAY1, "14:00"));
    expect(v).toMatchObject({ doneMembers: ["ana", "ben", "sam"], pendingMembers: [], teamSatisfied: true, current: 1 });
  });

  it("team/k_of_n_counts_at_kth_member: with K = 2 the window counts at the second member's check-in", () => {
    const rules = daily();
    const team = trio(rules, { minMembersSatisfied: 2 });
    const one = run(rules, team, [["sam", at(DAY1, "08:00")]]);
    expect(one.state.chain.current).toBe(0);
    const two = run(rules, team, [["ana", at(DAY1, "11:00")]], one.state);
    expect(two.state.chain.current).toBe(1);
    expect(two.state.chain.lastCredited?.at).toBe(at(DAY1, "11:00"));
    expect(teamProgress(rules, team, two.state, at(DAY1, "12:00"))).toMatchObject({ required: 2, teamSatisfied: true, pendingMembers: ["ben"] });
  });

  it("team/a_second_check_in_is_not_new_for_the_member", () => {
    const rules = daily();
    const team = trio(rules);
    const { last } = run(rules, team, [["ana", at(DAY1, "09:00")], ["ana", at(DAY1, "10:00")]]);
    expect(last).toMatchObject({ kind: "APPLIED", isNewActivity: false });
  });
});

describe("team membership", () => {
  it("team/new_member_counts_from_next_window: Zoe added today is not needed today, and is needed tomorrow", () => {
    const rules = daily();
    const t0 = trio(rules);
    const team: TeamConfig = { rule: {}, memberships: addMembership(rules, t0.memberships, "zoe", at(DAY1, "12:00")) };
    const day1 = run(rules, team, [["ana", at(DAY1, "13:00")], ["ben", at(DAY1, "13:00")], ["sam", at(DAY1, "13:00")], ["zoe", at(DAY1, "13:00")]]);
    expect(day1.state.chain.current).toBe(1);
    expect(teamProgress(rules, team, day1.state, at(DAY1, "14:00")).rosterSize).toBe(3);
    const day2 = run(rules, team, [["ana", at(DAY2, "09:00")], ["ben", at(DAY2, "09:00")], ["sam", at(DAY2, "09:00")]], day1.state);
    const v = teamProgress(rules, team, day2.state, at(DAY2, "10:00"));
    expect(v).toMatchObject({ rosterSize: 4, pendingMembers: ["zoe"], teamSatisfied: false });
  });

  it("team/removed_member_still_counts_this_window: Sam removed today is still needed today, not tomorrow", () => {
    const rules = daily();
    const t0 = trio(rules);
    const team: TeamConfig = { rule: {}, memberships: removeMembership(rules, t0.memberships, "sam", at(DAY1, "12:00")) };
    expect(rosterAt(team.memberships, at(DAY1, "00:00"))).toEqual(["ana", "ben", "sam"]);
    expect(rosterAt(team.memberships, at(DAY2, "00:00"))).toEqual(["ana", "ben"]);
    const day1 = run(rules, team, [["ana", at(DAY1, "13:00")], ["ben", at(DAY1, "13:00")]]);
    expect(teamProgress(rules, team, day1.state, at(DAY1, "14:00"))).toMatchObject({ pendingMembers: ["sam"], teamSatisfied: false });
    const day2 = run(rules, team, [["ana", at(DAY2, "09:00")], ["ben", at(DAY2, "09:00")]], day1.state);
    expect(day2.state.chain.current).toBe(1);
  });

  it("team/membership_errors_are_typed_and_change_nothing", () => {
    const rules = daily();
    const now = at(DAY1, "12:00");
    expect(() => createMemberships(rules, ["ana"], now)).toThrow(expect.objectContaining({ reason: "INVALID_TEAM_SIZE" }));
    expect(() => createMemberships(rules, ["ana", "ana"], now)).toThrow(expect.objectContaining({ reason: "INVALID_TEAM_SIZE" }));
    const pair = createMemberships(rules, ["ana", "ben"], now);
    expect(() => addMembership(rules, pair, "ana", now)).toThrow(expect.objectContaining({ reason: "ALREADY_TEAM_MEMBER" }));
    expect(() => removeMembership(rules, pair, "sam", now)).toThrow(expect.objectContaining({ reason: "NOT_TEAM_MEMBER" }));
    expect(() => removeMembership(rules, pair, "ana", now)).toThrow(expect.objectContaining({ reason: "INVALID_TEAM_SIZE" }));
    expect(pair).toEqual(createMemberships(rules, ["ana", "ben"], now));
    // Added and removed in the same window: the membership never takes effect; removed then re-added: it just stays.
    const withZoe = addMembership(rules, pair, "zoe", now);
    expect(removeMembership(rules, withZoe, "zoe", now + HOUR)).toEqual(pair);
    const trioM = createMemberships(rules, ["ana", "ben", "sam"], now);
    expect(addMembership(rules, removeMembership(rules, trioM, "sam", now), "sam", now + HOUR)).toEqual(trioM);
  });

  it("team/validate_rejects_rolling_member_zones_and_bad_k", () => {
    const rolling: StreakRules = { window: { type: "ROLLING", minSpacingSeconds: 3600, maxGapSeconds: 7200 }, condition: { type: "COUNT", min: 1 } };
    expect(validateTeamRule(rolling, {}).map((e) => e.field)).toEqual(["window"]);
    const memberZones: StreakRules = { ...daily(), window: { ...(daily().window as Extract<StreakRules["window"], { type: "CALENDAR" }>), useMemberTimezone: true } };
    expect(validateTeamRule(memberZones, {}).map((e) => e.field)).toEqual(["window.useMemberTimezone"]);
    expect(validateTeamRule(daily(), { minMembersSatisfied: 0 }).map((e) => e.reason)).toEqual(["INVALID_TEAM_RULE"]);
    expect(validateTeamRule(daily(), { freezePolicy: { maxHeld: 1, initial: 2 } }).map((e) => e.field)).toEqual(["team.freezePolicy"]);
    expect(validateTeamRule(daily(), { minMembersSatisfied: 2, freezePolicy: { maxHeld: 2 } })).toEqual([]);
    expect(() => initialTeamState(rolling, {})).toThrow(expect.objectContaining({ reason: "INVALID_TEAM_RULE" }));
  });
});

describe("team semantics shared with individual streaks", () => {
  it("team/late_event_in_grace_counts_the_closed_window: Sam's 23:00 check-in arriving at 01:00 counts yesterday", () => {
    const rules = daily("UTC", { graceSeconds: 2 * 3600 });
    const team = trio(rules);
    const { state, last } = run(rules, team, [["ana", at(DAY1, "09:00")], ["ben", at(DAY1, "10:00")], ["sam", at(DAY1, "23:00"), at(DAY2, "01:00")]]);
    expect(last).toMatchObject({ kind: "APPLIED", windowKey: DAY1 });
    expect(state.chain.current).toBe(1);
    const tooLate = applyTeamActivity(rules, team, state, "sam", { id: "late", occurredAt: at(DAY1, "23:30") }, { now: at(DAY2, "02:00") });
    expect(tooLate.outcome).toEqual({ kind: "NOT_APPLIED", reason: "TOO_LATE" });
  });

  it("team/refuses_future_and_invalid_values", () => {
    const rules = daily();
    const team = trio(rules);
    const s = initialTeamState(rules, team.rule);
    const now = at(DAY1, "09:00");
    expect(applyTeamActivity(rules, team, s, "ana", { id: "f", occurredAt: now + HOUR }, { now }).outcome).toEqual({ kind: "NOT_APPLIED", reason: "IN_FUTURE" });
    expect(applyTeamActivity(rules, team, s, "ana", { id: "v", occurredAt: now, value: -1 }, { now }).outcome).toEqual({ kind: "NOT_APPLIED", reason: "INVALID_VALUE" });
  });

  it("team/team_freeze_policy_bridges_a_missed_window: the team's own freeze, not the definition's", () => {
    const rules = daily("UTC", { freezePolicy: { maxHeld: 0 } });
    const team = trio(rules, { minMembersSatisfied: 1, freezePolicy: { maxHeld: 1, initial: 1 } });
    const d1 = run(rules, team, [["ana", at(DAY1, "09:00")]]);
    expect(d1.state.chain.freezesHeld).toBe(1);
    const d3 = run(rules, team, [["ben", at(DAY3, "09:00")]], d1.state);
    expect(types(d3.effects)).toEqual(["streak.freeze_used", "streak.incremented"]);
    expect(d3.state.chain.current).toBe(2);
    const granted = grantTeamFreezes(rules, team, d3.state, 5, at(DAY3, "10:00"));
    expect(granted.outcome).toEqual({ kind: "GRANTED", freezesHeld: 1 });
  });

  it("team/repair_restores_the_team_streak", () => {
    const rules = daily("UTC", { repairWindowSeconds: 2 * 86400 });
    const team = trio(rules, { minMembersSatisfied: 1 });
    const d1 = run(rules, team, [["ana", at(DAY1, "09:00")]]);
    const r = repairTeam(rules, team, d1.state, at(DAY3, "08:00"));
    expect(types(r.effects)).toEqual(["streak.broken", "streak.repaired"]);
    expect(r.outcome).toEqual({ kind: "REPAIRED", restoredCount: 1 });
    const again = repairTeam(rules, team, r.state, at(DAY3, "09:00"));
    expect(again.outcome).toEqual({ kind: "NOT_REPAIRABLE", reason: "ALREADY_REPAIRED" });
  });

  it("team/milestone_awards_each_roster_member_once", () => {
    const rules = daily("UTC", { milestones: [{ threshold: 2, reward: { kind: "POINTS", value: 50 } }] });
    const team = trio(rules, { minMembersSatisfied: 2 });
    const { effects } = run(rules, team, [
      ["ana", at(DAY1, "09:00")], ["ben", at(DAY1, "09:00")],
      ["ana", at(DAY2, "09:00")], ["sam", at(DAY2, "10:00")], ["ben", at(DAY2, "11:00")],
    ]);
    const awards = teamAwards(rules, team, effects);
    expect(awards.map((a) => a.memberId)).toEqual(["ana", "ben", "sam"]);
    expect(new Set(awards.map((a) => a.awardKey)).size).toBe(3);
    expect(awards[0]?.milestone.reward).toEqual({ kind: "POINTS", value: 50 });
  });

  it("team/at_risk_reminders_go_to_members_who_have_not_acted", () => {
    const rules = daily("UTC", { atRiskLeadSeconds: 4 * 3600 });
    const team = trio(rules);
    const d1 = run(rules, team, [["ana", at(DAY1, "09:00")], ["ben", at(DAY1, "09:00")], ["sam", at(DAY1, "09:00")]]);
    const d2 = run(rules, team, [["ana", at(DAY2, "12:00")]], d1.state);
    expect(teamAtRiskRecipients(rules, team, d2.state, at(DAY2, "15:00"))).toEqual([]);
    expect(teamAtRiskRecipients(rules, team, d2.state, at(DAY2, "21:00"))).toEqual(["ben", "sam"]);
    expect(teamProgress(rules, team, d2.state, at(DAY2, "21:00")).atRisk).toBe(true);
    expect(teamDeadlines(rules, team, d2.state)).toMatchObject({ windowCloseAt: at(DAY3, "00:00"), breakKind: "BREAK" });
    // Nobody is reminded about a team that has no live run.
    expect(teamAtRiskRecipients(rules, team, initialTeamState(rules, team.rule), at(DAY2, "21:00"))).toEqual([]);
  });
});
