import { describe, expect } from "vitest";
import { t, play, daily, ms, types, DAY, HOUR } from "./helpers.ts";
import type { Step } from "./helpers.ts";
import { LOYALTEEZ_DAILY_RULES, progressView } from "../../src/domain/index.ts";
import type { StreakRules } from "../../src/domain/index.ts";

const days = (first: string, n: number, value = 1, hour = "12:00", zone = "UTC"): Step[] =>
  Array.from({ length: n }, (_, i) => ({ at: ms(`${first}T${hour}`, zone) + i * DAY, value }));

describe("gamopanda examples", () => {
  const shopper: StreakRules = {
    window: { type: "CALENDAR", period: "DAILY", timezone: "UTC", resetTime: "00:00", weekStart: 1 },
    condition: { type: "SUM", min: 50 },
    completionTarget: 7,
    milestones: [
      { threshold: 3, reward: { kind: "COUPON", name: "5% off" } },
      { threshold: 7, reward: { kind: "CUSTOM", name: "Free shipping for a month" } },
    ],
  };

  t("gamopanda/7_day_shopper/completes_on_day_7_with_milestones_3_and_7", () => {
    const r = play(shopper, days("2025-03-01", 7, 50));
    expect(r.state.current).toBe(7);
    expect(r.state.status).toBe("COMPLETED");
    expect(r.state.earned.map((e) => [e.threshold, e.windowKey])).toEqual([[3, "2025-03-03"], [7, "2025-03-07"]]);
    expect(types(r.effects).filter((x) => x !== "streak.incremented")).toEqual([
      "streak.milestone_reached",
      "streak.milestone_reached",
      "streak.completed",
    ]);
  });

  t("gamopanda/7_day_shopper/spend_below_50_does_not_count_until_topped_up", () => {
    const r1 = play(shopper, [...days("2025-03-01", 3, 50), { at: ms("2025-03-04T09:00"), value: 29.5 }]);
    expect(r1.state.current).toBe(3);
    const v = progressView(shopper, r1.state, ms("2025-03-04T10:00"));
    expect(v.windowProgress.sum).toBe(29.5);
    expect(v.remainingValue).toBe(20.5);
    expect(v.windowSatisfied).toBe(false);
    const r2 = play(shopper, [{ at: ms("2025-03-04T18:00"), value: 20.5 }], undefined, undefined, r1.state);
    expect(r2.state.current).toBe(4);
    expect(r2.outcomes[0]).toMatchObject({ kind: "APPLIED", isNewActivity: true, windowKey: "2025-03-04" });
  });

  t("gamopanda/7_day_shopper/next_cycle_starts_after_completion", () => {
    const r = play(shopper, days("2025-03-01", 9, 60));
    expect(r.state.status).toBe("IN_PROGRESS");
    expect(r.state.cycle).toBe(2);
    expect(r.state.current).toBe(2);
    expect(r.state.longest).toBe(7);
    // A new cycle earns the milestones again.
    const r2 = play(shopper, days("2025-03-10", 1, 60), undefined, undefined, r.state);
    expect(r2.state.earned.filter((e) => e.cycle === 2).map((e) => e.threshold)).toEqual([3]);
  });

  const regular: StreakRules = {
    window: { type: "CALENDAR", period: "WEEKLY", timezone: "UTC", resetTime: "00:00", weekStart: 1 },
    condition: { type: "COUNT", min: 2 },
    completionTarget: 4,
  };

  t("gamopanda/weekly_regular/two_visits_a_week_for_4_weeks_completes", () => {
    const visits: Step[] = [];
    for (let w = 0; w < 4; w++) {
      visits.push({ at: ms("2025-01-06T09:00") + w * 7 * DAY, value: 99 }, { at: ms("2025-01-09T17:00") + w * 7 * DAY, value: 0 });
    }
    const r = play(regular, visits);
    expect(r.state.current).toBe(4);
    expect(r.state.status).toBe("COMPLETED");
    expect(r.outcomes.map((o) => (o.kind === "APPLIED" ? o.windowKey : null))).toEqual([
      "2025-01-06", "2025-01-06", "2025-01-13", "2025-01-13", "2025-01-20", "2025-01-20", "2025-01-27", "2025-01-27",
    ]);
  });

  t("gamopanda/weekly_regular/one_visit_does_not_count_and_week_breaks", () => {
    const r = play(regular, [
      { at: ms("2025-01-06T09:00") },
      { at: ms("2025-01-07T09:00") },
      { at: ms("2025-01-14T09:00") },
    ], ms("2025-01-20T00:00"));
    expect(r.state.status).toBe("BROKEN");
    expect(r.state.current).toBe(0);
    expect(r.state.longest).toBe(1);
  });

  const mover: StreakRules = {
    window: { type: "CALENDAR", period: "MONTHLY", timezone: "Europe/Berlin", resetTime: "00:00", weekStart: 1 },
    condition: { type: "SUM", min: 1500 },
    completionTarget: 3,
    milestones: [
      { threshold: 1, reward: { kind: "COUPON", name: "Premium discount" } },
      { threshold: 3, reward: { kind: "CUSTOM", name: "Free membership" } },
    ],
  };

  t("gamopanda/monthly_mover/1500_minutes_a_month_for_3_months", () => {
    const r = play(mover, [
      { at: ms("2025-01-10T07:00", "Europe/Berlin"), value: 1000 },
      { at: ms("2025-01-31T23:30", "Europe/Berlin"), value: 500 },
      { at: ms("2025-02-15T10:00", "Europe/Berlin"), value: 1600 },
      { at: ms("2025-03-01T00:10", "Europe/Berlin"), value: 1500 },
    ]);
    expect(r.outcomes.map((o) => (o.kind === "APPLIED" ? o.windowKey : null))).toEqual(["2025-01", "2025-01", "2025-02", "2025-03"]);
    expect(r.state.status).toBe("COMPLETED");
    expect(r.state.earned.map((e) => e.threshold)).toEqual([1, 3]);
  });

  const learner: StreakRules = {
    window: { type: "CALENDAR", period: "DAILY", timezone: "Asia/Kolkata", resetTime: "00:00", weekStart: 1 },
    condition: { type: "COUNT", min: 1 },
    completionTarget: 30,
    milestones: [{ threshold: 7 }, { threshold: 14 }, { threshold: 30 }],
  };

  t("gamopanda/daily_learner/milestones_7_14_30_and_completion", () => {
    const r = play(learner, days("2025-06-01", 30, 1, "20:00", "Asia/Kolkata"));
    expect(r.state.earned.map((e) => [e.threshold, e.count])).toEqual([[7, 7], [14, 14], [30, 30]]);
    expect(r.state.status).toBe("COMPLETED");
    const mid = play(learner, days("2025-06-01", 10, 1, "20:00", "Asia/Kolkata"));
    const v = progressView(learner, mid.state, ms("2025-06-10T21:00", "Asia/Kolkata"));
    expect(v.nextMilestone?.threshold).toBe(14);
    expect(v.periodsToNextMilestone).toBe(4);
  });
});

describe("phoenix examples", () => {
  const login: StreakRules = {
    window: { type: "CALENDAR", period: "DAILY", timezone: "UTC", resetTime: "00:00", weekStart: 1 },
    condition: { type: "COUNT", min: 1 },
    milestones: [{ threshold: 7, repeatable: false }, { threshold: 30, repeatable: false }],
  };

  t("phoenix/daily_login/15_days_earned_7_next_30", () => {
    const r = play(login, [...days("2025-01-01", 14, 1, "09:00"), { at: ms("2025-01-15T08:30") }]);
    const v = progressView(login, r.state, ms("2025-01-15T08:00") + HOUR);
    expect(v.current).toBe(15);
    expect(v.windowKey).toBe("2025-01-15");
    expect(v.windowProgress).toEqual({ count: 1, sum: 1, distinct: [] });
    expect(v.windowSatisfied).toBe(true);
    expect(v.lastActivityAt).toBe(ms("2025-01-15T08:30"));
    expect(v.secondsUntilWindowClose).toBe(54000);
    expect(v.earnedThresholds).toEqual([7]);
    expect(v.nextMilestone?.threshold).toBe(30);
  });

  t("phoenix/daily_login/next_milestone_null_after_last", () => {
    const r = play(login, days("2025-01-01", 31));
    expect(progressView(login, r.state, ms("2025-01-31T13:00")).nextMilestone).toBeNull();
  });

  t("phoenix/distinct_game_modes/three_of_five_modes_needs_two_more", () => {
    const modes: StreakRules = { ...login, condition: { type: "DISTINCT", min: 5 } };
    const r = play(modes, [
      { at: ms("2025-01-15T08:00"), key: "arcade" },
      { at: ms("2025-01-15T09:00"), key: "ranked" },
      { at: ms("2025-01-15T10:00"), key: "arcade" },
      { at: ms("2025-01-15T11:00"), key: "casual" },
    ]);
    const v = progressView(modes, r.state, ms("2025-01-15T12:00"));
    expect(v.windowProgress.distinct).toEqual(["arcade", "ranked", "casual"]);
    expect(v.windowProgress.count).toBe(4);
    expect(v.remainingValue).toBe(2);
    expect(v.current).toBe(0);
    const done = play(modes, [{ at: ms("2025-01-15T13:00"), key: "duel" }, { at: ms("2025-01-15T14:00"), key: "coop" }], undefined, undefined, r.state);
    expect(done.state.current).toBe(1);
  });

  t("phoenix/sum_points/350_5_of_500_needs_149_5", () => {
    const points: StreakRules = { ...login, condition: { type: "SUM", min: 500 } };
    const r = play(points, [100, 50.5, 100, 50, 50].map((value, i) => ({ at: ms("2025-01-15T08:00") + i * HOUR, value })));
    const v = progressView(points, r.state, ms("2025-01-15T20:00"));
    expect(v.windowProgress).toMatchObject({ count: 5, sum: 350.5 });
    expect(v.remainingValue).toBe(149.5);
  });
});

describe("loyalteez examples", () => {
  const rules = LOYALTEEZ_DAILY_RULES;
  const t0 = ms("2024-01-10T10:30");

  t("loyalteez/first_checkin_starts_1_day_streak", () => {
    const r = play(rules, [{ at: t0 }]);
    expect(r.state.current).toBe(1);
    expect(r.outcomes[0]).toMatchObject({ isNewActivity: true, wasReset: false, previousStreak: 0 });
  });

  t("loyalteez/second_checkin_same_day_is_not_new", () => {
    const r = play(rules, [{ at: t0 }, { at: t0 + 5 * HOUR }]);
    expect(r.state.current).toBe(1);
    expect(r.outcomes[1]).toMatchObject({ kind: "APPLIED", isNewActivity: false, windowKey: null });
    expect(progressView(rules, r.state, t0 + 6 * HOUR).checkedInThisWindow).toBe(true);
  });

  t("loyalteez/checkin_within_36h_continues", () => {
    const r = play(rules, [{ at: t0 }, { at: t0 + 30 * HOUR }]);
    expect(r.state.current).toBe(2);
  });

  t("loyalteez/no_checkin_within_36h_restarts_at_1_with_previous_streak", () => {
    const r = play(rules, [{ at: t0 }, { at: t0 + 25 * HOUR }, { at: t0 + 25 * HOUR + 36 * HOUR + 1 }]);
    expect(r.state.current).toBe(1);
    expect(r.outcomes[2]).toMatchObject({ isNewActivity: true, wasReset: true, previousStreak: 2 });
    expect(r.state.longest).toBe(2);
  });

  t("loyalteez/multiplier_tiers_3_7_14_30", () => {
    const expected: [number, number][] = [[1, 1], [2, 1], [3, 1.25], [6, 1.25], [7, 1.5], [13, 1.5], [14, 1.75], [29, 1.75], [30, 2], [45, 2]];
    const r = play(rules, Array.from({ length: 45 }, (_, i) => ({ at: t0 + i * DAY })));
    for (const [count, multiplier] of expected) {
      const state = play(rules, Array.from({ length: count }, (_, i) => ({ at: t0 + i * DAY }))).state;
      expect(progressView(rules, state, t0 + (count - 1) * DAY + HOUR).multiplier).toBe(multiplier);
    }
    expect(r.state.current).toBe(45);
  });

  t("loyalteez/day_5_status_next_milestone_7_in_2_days", () => {
    const r = play(rules, Array.from({ length: 5 }, (_, i) => ({ at: t0 + i * DAY })));
    const v = progressView(rules, r.state, t0 + 4 * DAY + HOUR);
    expect(v).toMatchObject({ current: 5, longest: 5, multiplier: 1.25, periodsToNextMilestone: 2, checkedInThisWindow: true });
    expect(v.nextMilestone).toMatchObject({ threshold: 7, reward: { kind: "POINTS", value: 100 } });
    expect(v.totalPeriods).toBe(5);
  });

  t("loyalteez/milestone_7_grants_100_points_once", () => {
    const r = play(rules, Array.from({ length: 8 }, (_, i) => ({ at: t0 + i * DAY })));
    const reached = r.effects.filter((e) => e.type === "streak.milestone_reached");
    expect(reached).toHaveLength(1);
    expect(reached[0]).toMatchObject({ threshold: 7, milestone: { reward: { kind: "POINTS", value: 100 } } });
  });
});

describe("gameball example", () => {
  t("gameball/badges_report_earned_and_earned_at", () => {
    const rules = daily("Africa/Cairo", {
      milestones: [
        { threshold: 3, badge: { name: "Bronze", imageUrl: "https://cdn.example/b.png" }, reward: { kind: "POINTS", value: 50 } },
        { threshold: 10, badge: { name: "Silver" } },
      ],
    });
    const r = play(rules, days("2025-04-01", 4, 1, "12:00", "Africa/Cairo"));
    const v = progressView(rules, r.state, ms("2025-04-04T13:00", "Africa/Cairo"));
    expect(v.badges).toEqual([
      { milestoneDay: 3, name: "Bronze", imageUrl: "https://cdn.example/b.png", earned: true, earnedAt: ms("2025-04-03T12:00", "Africa/Cairo") },
      { milestoneDay: 10, name: "Silver", imageUrl: null, earned: false, earnedAt: null },
    ]);
    expect(v.nextMilestone?.threshold).toBe(10);
    expect(v.longest).toBe(4);
  });
});
