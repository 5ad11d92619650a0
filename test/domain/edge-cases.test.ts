import { describe, expect } from "vitest";
import { t, play, daily, ms, types, DAY, HOUR } from "./helpers.ts";
import {
  windowFor, deadlines, advance, repair, grantFreezes, progressView, initialState, applyActivity, atRisk,
  validateRules, assertValidRules, DomainError, recompute, effectiveZone, LOYALTEEZ_DAILY_RULES,
} from "../../src/domain/index.ts";
import type { CalendarWindowSpec, StreakRules } from "../../src/domain/index.ts";

const cal = (period: CalendarWindowSpec["period"], timezone: string, resetTime = "00:00", weekStart = 1): CalendarWindowSpec => ({
  type: "CALENDAR", period, timezone, resetTime, weekStart,
});
const NY = "America/New_York";

describe("windows", () => {
  t("windows/daily_key_is_local_date", () => {
    const w = windowFor(cal("DAILY", "Asia/Tokyo"), ms("2025-01-15T23:30:00Z"), "Asia/Tokyo");
    expect(w.key).toBe("2025-01-16");
    expect(w.startMs).toBe(ms("2025-01-16T00:00", "Asia/Tokyo"));
  });
  t("windows/weekly_key_is_week_start_date_sunday_start", () => {
    const w = windowFor(cal("WEEKLY", "UTC", "00:00", 7), ms("2025-01-15T12:00"), "UTC");
    expect(w.key).toBe("2025-01-12");
    expect(w.endMs - w.startMs).toBe(7 * DAY);
  });
  t("windows/monthly_key_is_year_month", () => {
    const w = windowFor(cal("MONTHLY", "UTC"), ms("2025-02-28T23:59"), "UTC");
    expect(w).toEqual({ key: "2025-02", startMs: ms("2025-02-01T00:00"), endMs: ms("2025-03-01T00:00") });
  });
  t("dst/spring_forward_day_lasts_23_hours", () => {
    const w = windowFor(cal("DAILY", NY), ms("2025-03-09T12:00", NY), NY);
    expect(w.key).toBe("2025-03-09");
    expect(w.endMs - w.startMs).toBe(23 * HOUR);
  });
  t("dst/fall_back_day_lasts_25_hours", () => {
    const w = windowFor(cal("DAILY", NY), ms("2025-11-02T12:00", NY), NY);
    expect(w.endMs - w.startMs).toBe(25 * HOUR);
  });
  t("reset_time/nonexistent_reset_time_shifts_forward_by_the_gap", () => {
    const spec = cal("DAILY", NY, "02:30");
    const w = windowFor(spec, ms("2025-03-09T12:00", NY), NY);
    expect(w.key).toBe("2025-03-09");
    expect(w.startMs).toBe(ms("2025-03-09T07:30:00Z"));
    expect(w.startMs - windowFor(spec, w.startMs - 1, NY).startMs).toBe(24 * HOUR);
    expect(w.endMs - w.startMs).toBe(23 * HOUR);
    expect(windowFor(spec, w.startMs - 1, NY).key).toBe("2025-03-08");
  });
  t("reset_time/repeated_reset_time_uses_first_occurrence", () => {
    const spec = cal("DAILY", NY, "01:30");
    const w = windowFor(spec, ms("2025-11-02T12:00", NY), NY);
    expect(w.startMs).toBe(ms("2025-11-02T05:30:00Z"));
    expect(w.endMs - w.startMs).toBe(25 * HOUR);
  });
  t("reset_time/activity_before_reset_counts_for_previous_day", () => {
    const rules = daily("Europe/London", {}, "04:00");
    const r = play(rules, [{ at: ms("2025-01-15T23:00", "Europe/London") }, { at: ms("2025-01-17T03:59", "Europe/London") }]);
    expect(r.outcomes.map((o) => (o.kind === "APPLIED" ? o.windowKey : null))).toEqual(["2025-01-15", "2025-01-16"]);
    expect(r.state.current).toBe(2);
  });
  t("windows/member_timezone_used_when_definition_says_so", () => {
    const rules: StreakRules = { ...daily("UTC"), window: { ...cal("DAILY", "UTC"), useMemberTimezone: true } };
    const s = applyActivity(rules, initialState(rules), { id: "x", occurredAt: ms("2025-01-15T23:30:00Z"), memberTimezone: "Asia/Tokyo" }, { now: ms("2025-01-15T23:30:00Z") });
    expect(s.outcome).toMatchObject({ windowKey: "2025-01-16" });
    expect(s.state.zone).toBe("Asia/Tokyo");
    expect(effectiveZone(cal("DAILY", "UTC"), "Asia/Tokyo")).toBe("UTC");
  });
});

describe("validation", () => {
  t("rules/invalid_values_report_stable_reasons", () => {
    const bad: StreakRules = {
      window: { type: "CALENDAR", period: "DAILY", timezone: "Mars/Olympus", resetTime: "24:00", weekStart: 0 },
      condition: { type: "COUNT", min: 0 },
      graceSeconds: -1,
      milestones: [{ threshold: 0 }, { threshold: 3 }, { threshold: 3 }],
      multiplierTiers: [{ minCount: 1, multiplier: 0 }],
      completionTarget: 1.5,
      freezePolicy: { maxHeld: 1, initial: 2 },
      repairWindowSeconds: -5,
      atRiskLeadSeconds: 0.5,
      display: { defaultLanguage: "??", texts: { en: { brokenLabel: "x".repeat(33) } }, valueDecimals: 9 },
    };
    expect(validateRules(bad).map((e) => e.reason)).toEqual([
      "INVALID_TIMEZONE", "INVALID_RESET_TIME", "INVALID_WEEK_START", "INVALID_CONDITION", "INVALID_GRACE",
      "INVALID_MILESTONE", "INVALID_MILESTONE", "INVALID_MULTIPLIER_TIER", "INVALID_COMPLETION_TARGET",
      "INVALID_FREEZE_POLICY", "INVALID_REPAIR_WINDOW", "INVALID_AT_RISK_LEAD", "INVALID_DISPLAY", "INVALID_DISPLAY", "INVALID_DISPLAY",
    ]);
    expect(() => assertValidRules(bad)).toThrow(DomainError);
    expect(validateRules({ ...LOYALTEEZ_DAILY_RULES, window: { type: "ROLLING", minSpacingSeconds: 10, maxGapSeconds: 5 } })[0]?.reason).toBe("INVALID_ROLLING_WINDOW");
    expect(validateRules(LOYALTEEZ_DAILY_RULES)).toEqual([]);
  });
});

describe("state machine edge cases", () => {
  t("rolling/two_check_ins_at_the_same_instant_are_both_applied", () => {
    // Loyalteez rules: grace 0, so the first check-in is final the moment it arrives. A second one with the same
    // event time (two events of one purchase, or a batch sharing an occurTime) is accepted like any check-in inside
    // the minimum spacing: applied, not counted again — not refused as too late.
    const at = ms("2025-03-19T20:50");
    const first = applyActivity(LOYALTEEZ_DAILY_RULES, initialState(LOYALTEEZ_DAILY_RULES), { id: "a", occurredAt: at, value: 0 }, { now: at });
    const second = applyActivity(LOYALTEEZ_DAILY_RULES, first.state, { id: "b", occurredAt: at, value: 0 }, { now: at });
    expect(first.outcome).toMatchObject({ kind: "APPLIED", isNewActivity: true });
    expect(second.outcome).toMatchObject({ kind: "APPLIED", isNewActivity: false, windowKey: null });
    expect(second.state.current).toBe(1);
    expect(second.state.activityCount).toBe(2);
    expect(second.state).toEqual(recompute(LOYALTEEZ_DAILY_RULES, [{ id: "a", occurredAt: at, value: 0 }, { id: "b", occurredAt: at, value: 0 }], at));
    // One millisecond earlier is before the credited check-in, so it is final: too late.
    const earlier = applyActivity(LOYALTEEZ_DAILY_RULES, second.state, { id: "c", occurredAt: at - 1, value: 0 }, { now: at });
    expect(earlier.outcome).toMatchObject({ kind: "NOT_APPLIED", reason: "TOO_LATE" });
  });
  const graceful = daily("UTC", { graceSeconds: 2 * 3600 });

  t("late/event_in_grace_counts_for_closed_window", () => {
    const r = play(graceful, [{ at: ms("2025-01-13T10:00") }, { at: ms("2025-01-14T23:00"), arrive: ms("2025-01-15T01:00") }]);
    expect(r.state.current).toBe(2);
    expect(r.outcomes[1]).toMatchObject({ kind: "APPLIED", windowKey: "2025-01-14" });
  });

  t("late/event_after_grace_is_not_applied", () => {
    const r = play(graceful, [{ at: ms("2025-01-13T10:00") }, { at: ms("2025-01-14T23:00"), arrive: ms("2025-01-15T02:00") }]);
    expect(r.outcomes[1]).toEqual({ kind: "NOT_APPLIED", reason: "TOO_LATE" });
    expect(r.state.current).toBe(0);
    expect(r.state.status).toBe("BROKEN");
  });

  t("late/today_waits_for_yesterday_in_grace_then_both_count", () => {
    const r = play(graceful, [
      { at: ms("2025-01-13T10:00") },
      { at: ms("2025-01-15T00:30") },
    ]);
    expect(r.state.current).toBe(1);
    expect(progressView(graceful, r.state, ms("2025-01-15T00:40")).pendingWindowKey).toBe("2025-01-14");
    expect(deadlines(graceful, r.state)).toMatchObject({ breakAt: ms("2025-01-15T02:00"), breakKind: "SETTLE" });
    const late = play(graceful, [{ at: ms("2025-01-14T22:00"), arrive: ms("2025-01-15T01:00") }], undefined, undefined, r.state);
    expect(late.state.current).toBe(3);
    const missed = advance(graceful, r.state, ms("2025-01-15T02:00"));
    expect(missed.state.current).toBe(1);
    expect(types(missed.effects)).toEqual(["streak.broken", "streak.incremented"]);
  });

  t("breaks/missed_window_after_grace", () => {
    const r = play(graceful, [{ at: ms("2025-01-13T10:00") }, { at: ms("2025-01-14T10:00") }]);
    expect(deadlines(graceful, r.state)).toEqual({ windowCloseAt: ms("2025-01-16T00:00"), atRiskAt: null, breakAt: ms("2025-01-16T02:00"), breakKind: "BREAK" });
    expect(advance(graceful, r.state, ms("2025-01-16T01:59")).state.current).toBe(2);
    const broken = advance(graceful, r.state, ms("2025-01-16T02:00"));
    expect(broken.state).toMatchObject({ current: 0, status: "BROKEN", longest: 2 });
    expect(broken.effects).toEqual([{ type: "streak.broken", finalCount: 2, windowKey: "2025-01-15", brokenAt: ms("2025-01-16T02:00") }]);
    expect(advance(graceful, broken.state, ms("2025-01-20T00:00")).effects).toEqual([]);
  });

  t("reads/progress_reports_broken_without_any_timer", () => {
    const r = play(graceful, [{ at: ms("2025-01-13T10:00") }]);
    const v = progressView(graceful, r.state, ms("2025-01-20T00:00"));
    expect(v).toMatchObject({ current: 0, status: "BROKEN", longest: 1 });
    expect(v.display.statusLabel).toBe("Broken");
    expect(r.state.current).toBe(1);
  });

  t("pause/window_closing_during_pause_is_neutral", () => {
    const pauses = [{ from: ms("2025-01-14T20:00"), to: ms("2025-01-15T12:00") }];
    const r = play(daily(), [{ at: ms("2025-01-13T10:00") }, { at: ms("2025-01-15T14:00") }], ms("2025-01-15T15:00"), pauses);
    expect(r.state.current).toBe(2);
    const unpaused = play(daily(), [{ at: ms("2025-01-13T10:00") }, { at: ms("2025-01-15T14:00") }], ms("2025-01-15T15:00"));
    expect(unpaused.state.current).toBe(1);
    const ongoing = advance(daily(), play(daily(), [{ at: ms("2025-01-13T10:00") }]).state, ms("2025-02-01T00:00"), { pausedIntervals: [{ from: ms("2025-01-14T00:00"), to: null }] });
    expect(ongoing.state.current).toBe(1);
  });

  t("freeze/missed_window_consumes_a_freeze_instead_of_breaking", () => {
    const rules = daily("UTC", { freezePolicy: { maxHeld: 2, initial: 1 } });
    const r = play(rules, [{ at: ms("2025-01-13T10:00") }, { at: ms("2025-01-15T10:00") }]);
    expect(r.state).toMatchObject({ current: 2, freezesHeld: 0, freezesUsed: 1 });
    expect(types(r.effects)).toContain("streak.freeze_used");
    expect(deadlines(rules, play(rules, [{ at: ms("2025-01-13T10:00") }]).state).breakKind).toBe("FREEZE");
  });

  t("freeze/milestone_reward_grants_freeze_capped_at_max_held", () => {
    const rules = daily("UTC", { freezePolicy: { maxHeld: 1 }, milestones: [{ threshold: 2, repeatable: true, reward: { kind: "FREEZE", value: 1 } }] });
    const r = play(rules, Array.from({ length: 4 }, (_, i) => ({ at: ms("2025-01-13T10:00") + i * DAY })));
    expect(r.state.freezesHeld).toBe(1);
    expect(r.state.earned.map((e) => [e.threshold, e.occurrence])).toEqual([[2, 1], [2, 2]]);
    const granted = grantFreezes(rules, r.state, 5, ms("2025-01-16T12:00"));
    expect(granted.outcome.freezesHeld).toBe(1);
  });

  t("repair/restores_within_window_without_regranting_milestones", () => {
    const rules = daily("UTC", { repairWindowSeconds: 3 * 86400, milestones: [{ threshold: 2 }, { threshold: 4 }] });
    const r = play(rules, [{ at: ms("2025-01-10T10:00") }, { at: ms("2025-01-11T10:00") }, { at: ms("2025-01-14T10:00") }]);
    expect(r.state).toMatchObject({ current: 1, status: "IN_PROGRESS" });
    expect(r.state.lastBreak?.previousStreak).toBe(2);
    const fixed = repair(rules, r.state, ms("2025-01-14T12:00"));
    expect(fixed.outcome).toEqual({ kind: "REPAIRED", restoredCount: 3 });
    expect(fixed.state.current).toBe(3);
    expect(types(fixed.effects)).toEqual(["streak.repaired"]);
    const next = play(rules, [{ at: ms("2025-01-15T10:00") }], undefined, undefined, fixed.state);
    expect(next.state.current).toBe(4);
    expect(next.state.earned.map((e) => e.threshold)).toEqual([2, 4]);
    expect(repair(rules, next.state, ms("2025-01-15T12:00")).outcome).toEqual({ kind: "NOT_REPAIRABLE", reason: "ALREADY_REPAIRED" });
  });

  t("repair/refused_after_repair_window", () => {
    const rules = daily("UTC", { repairWindowSeconds: 86400 });
    const r = play(rules, [{ at: ms("2025-01-10T10:00") }], ms("2025-01-12T00:00"));
    expect(repair(rules, r.state, ms("2025-01-13T00:00")).outcome).toMatchObject({ kind: "REPAIRED" });
    expect(repair(rules, r.state, ms("2025-01-13T00:01")).outcome).toMatchObject({ reason: "WINDOW_EXPIRED" });
    expect(repair(daily(), r.state, ms("2025-01-12T00:00")).outcome).toMatchObject({ reason: "REPAIR_DISABLED" });
    expect(repair(rules, initialState(rules), ms("2025-01-12T00:00")).outcome).toMatchObject({ reason: "NOT_BROKEN" });
  });

  t("repair/rolling_streak_reopens_now", () => {
    const rules = { ...LOYALTEEZ_DAILY_RULES, repairWindowSeconds: 86400 };
    const t0 = ms("2025-01-10T10:00");
    const r = play(rules, [{ at: t0 }, { at: t0 + DAY }], t0 + 4 * DAY);
    expect(r.state.status).toBe("BROKEN");
    const fixed = repair(rules, r.state, t0 + 3 * DAY);
    expect(fixed.state.current).toBe(2);
    expect(play(rules, [{ at: t0 + 3 * DAY + HOUR }], undefined, undefined, fixed.state).state.current).toBe(3);
  });

  t("completion/completed_streak_does_not_break_and_next_window_starts_cycle_2", () => {
    const rules = daily("UTC", { completionTarget: 2 });
    const r = play(rules, [{ at: ms("2025-01-10T10:00") }, { at: ms("2025-01-11T10:00") }], ms("2025-02-01T00:00"));
    expect(r.state).toMatchObject({ status: "COMPLETED", current: 2, cycle: 1 });
    expect(deadlines(rules, r.state).breakAt).toBeNull();
    const again = play(rules, [{ at: ms("2025-02-01T10:00") }], undefined, undefined, r.state);
    expect(again.state).toMatchObject({ status: "IN_PROGRESS", current: 1, cycle: 2, longest: 2 });
  });

  t("at_risk/reminder_due_before_close_when_unsatisfied", () => {
    const rules = daily("UTC", { atRiskLeadSeconds: 4 * 3600 });
    const r = play(rules, [{ at: ms("2025-01-13T10:00") }]);
    expect(deadlines(rules, r.state).atRiskAt).toBe(ms("2025-01-14T20:00"));
    expect(atRisk(rules, r.state, ms("2025-01-14T19:59"))).toBe(false);
    expect(atRisk(rules, r.state, ms("2025-01-14T20:00"))).toBe(true);
    expect(progressView(rules, r.state, ms("2025-01-14T21:00")).atRisk).toBe(true);
    expect(atRisk(rules, r.state, ms("2025-01-13T21:00"))).toBe(false);
  });

  t("duplicate/same_id_is_reported_and_changes_nothing", () => {
    const r = play(daily(), [{ at: ms("2025-01-13T10:00"), id: "order-1" }]);
    const again = applyActivity(daily(), r.state, { id: "order-1", occurredAt: ms("2025-01-13T10:00") }, { now: ms("2025-01-13T11:00") });
    expect(again.outcome).toEqual({ kind: "DUPLICATE" });
    expect(again.state).toBe(r.state);
  });

  t("not_applied/future_and_invalid_values", () => {
    const s = initialState(daily());
    expect(applyActivity(daily(), s, { id: "f", occurredAt: ms("2025-01-13T10:00") }, { now: ms("2025-01-13T09:00") }).outcome).toEqual({ kind: "NOT_APPLIED", reason: "IN_FUTURE" });
    expect(applyActivity(daily(), s, { id: "n", occurredAt: ms("2025-01-13T10:00"), value: -1 }, { now: ms("2025-01-13T10:00") }).outcome).toEqual({ kind: "NOT_APPLIED", reason: "INVALID_VALUE" });
  });

  t("recompute/equals_incremental_for_a_simple_history", () => {
    const steps = [{ at: ms("2025-01-13T10:00"), id: "a" }, { at: ms("2025-01-14T10:00"), id: "b" }];
    const inc = play(graceful, steps, ms("2025-01-20T00:00")).state;
    expect(recompute(graceful, steps.map((s) => ({ id: s.id, occurredAt: s.at, value: 1 })), ms("2025-01-20T00:00"))).toEqual(inc);
  });
});
