// The widget's view model (web/src/view.ts): what the member sees for each state, condition and reward, computed
// from a progress message without a browser.
import { describe, expect, it } from "vitest";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { MemberStreakProgressSchema, MemberStreakState, type MemberStreakProgress } from "../../src/gen/kindling/v1/member_streak_pb.js";
import { CalendarPeriod, ConditionType, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { memberOfToken } from "../../web/src/client.ts";
import { claimRefusalText, countUnit, describeCountdown, formatAmount, formatCountdown, statusOf, streakView, windowView } from "../../web/src/view.ts";

function progress(init: Exclude<MessageInitShape<typeof MemberStreakProgressSchema>, MemberStreakProgress> = {}): MemberStreakProgress {
  return create(MemberStreakProgressSchema, {
    definitionName: "Daily visit",
    state: MemberStreakState.IN_PROGRESS,
    currentCount: 3,
    longestCount: 5,
    window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC" } } },
    condition: { type: ConditionType.COUNT, min: 2 },
    currentWindowProgress: { count: 1 },
    ...init,
  });
}

describe("widget view", () => {
  it.each([
    ["not_started", { state: MemberStreakState.NOT_STARTED, currentCount: 0 }, "not-started"],
    ["in_progress/window_satisfied", { currentWindowSatisfied: true }, "in-progress"],
    ["at_risk/running_and_window_unsatisfied", { currentWindowSatisfied: false }, "at-risk"],
    ["at_risk/server_flag", { currentWindowSatisfied: true, atRisk: true }, "at-risk"],
    ["in_progress/count_zero_is_not_at_risk", { currentCount: 0, currentWindowSatisfied: false }, "in-progress"],
    ["broken", { state: MemberStreakState.BROKEN }, "broken"],
    ["completed", { state: MemberStreakState.COMPLETED }, "completed"],
  ] as const)("widget_view/status_%s", (_name, init, expected) => {
    expect(statusOf(progress(init))).toBe(expected);
  });

  it("widget_view/sum_is_money_with_the_currencys_decimals", () => {
    expect(formatAmount(20.5, { lang: "en", currency: "USD" })).toBe("$20.50");
    expect(formatAmount(1234.5, { lang: "en", currency: "JPY" })).toBe("¥1,235");
    expect(formatAmount(1.5, { lang: "en", currency: "KWD" }).replace(/\s/g, " ")).toBe("KWD 1.500");
    expect(formatAmount(20.5, { lang: "de", currency: "EUR" }).replace(/\s/g, " ")).toBe("20,50 €");
    expect(formatAmount(20.5, { lang: "en" })).toBe("20.5");
    expect(formatAmount(20.5, { lang: "en", currency: "NOT-A-CODE" })).toBe("20.5");
    const sum = progress({ condition: { type: ConditionType.SUM, min: 50 }, currentWindowProgress: { sum: 20.5 } });
    expect(windowView(sum, { lang: "en", currency: "USD" })).toEqual({ text: "$20.50 of $50.00", value: 20.5, target: 50, satisfied: false });
  });

  it("widget_view/count_and_distinct_progress", () => {
    expect(windowView(progress(), { lang: "en" })?.text).toBe("1 of 2 this period");
    const distinct = progress({ condition: { type: ConditionType.DISTINCT, min: 3 }, currentWindowProgress: { count: 4, distinctKeys: ["a", "b"] } });
    expect(windowView(distinct, { lang: "en" })).toMatchObject({ text: "2 of 3 different", value: 2, target: 3 });
  });

  it("widget_view/countdown_only_while_the_window_can_still_be_won", () => {
    expect(streakView(progress({ secondsUntilWindowClose: 90n }), { lang: "en" }).secondsToClose).toBe(90);
    expect(streakView(progress({ state: MemberStreakState.BROKEN, secondsUntilWindowClose: 90n }), { lang: "en" }).secondsToClose).toBeUndefined();
    expect(streakView(progress({ secondsUntilWindowClose: 0n }), { lang: "en" }).secondsToClose).toBeUndefined();
    expect(formatCountdown(59)).toBe("00:59");
    expect(formatCountdown(3 * 3600 + 4 * 60 + 5)).toBe("03:04:05");
    expect(formatCountdown(2 * 86_400 + 3 * 3600 + 4 * 60 + 5)).toBe("2d 03:04:05");
    expect(formatCountdown(-3)).toBe("00:00");
    expect(describeCountdown(2 * 86_400 + 3600 + 60)).toBe("2 days 1 hour 1 minute");
    expect(describeCountdown(61)).toBe("1 minute 1 second");
  });

  it("widget_view/milestone_badges_rewards_and_labels", () => {
    const v = streakView(
      progress({
        nextMilestone: { threshold: 7 },
        periodsToNextMilestone: 4,
        badges: [{ milestoneThreshold: 1, name: "First", earned: true }, { milestoneThreshold: 7, name: "Week", earned: false }],
        freezesHeld: 2,
        unclaimedMilestones: [{ threshold: 3, rewardId: "r1", kind: RewardKind.POINTS, points: 1500 }, { threshold: 5, rewardId: "r2", kind: RewardKind.COUPON, value: "5% off" }],
        display: { title: "Visite", inProgressLabel: "En cours", message: "Bravo" },
      }),
      { lang: "en" },
    );
    expect(v).toMatchObject({ title: "Visite", statusLabel: "At risk", message: "Bravo", count: 3, unit: "days", longest: 5, freezes: 2 });
    expect(v.nextMilestone).toEqual({ threshold: 7, name: "7-day streak", periodsToGo: 4 });
    expect(v.badges.map((b) => [b.name, b.earned])).toEqual([["First", true], ["Week", false]]);
    expect(v.rewards).toEqual([{ rewardId: "r1", threshold: 3, label: "1,500 points" }, { rewardId: "r2", threshold: 5, label: "Coupon: 5% off" }]);
    expect(streakView(progress({ currentWindowSatisfied: true, display: { inProgressLabel: "En cours" } }), { lang: "fr" }).statusLabel).toBe("En cours");
    expect(countUnit(progress({ currentCount: 1 }))).toBe("day");
    expect(countUnit(progress({ window: { kind: { case: "rolling", value: {} } } }))).toBe("periods");
  });

  it("widget_view/claim_refusals_are_typed_text", () => {
    expect(claimRefusalText("ALREADY_CLAIMED", "x")).toBe("Already claimed.");
    expect(claimRefusalText("REWARD_EXPIRED", "x")).toBe("This reward has expired.");
    expect(claimRefusalText("STREAK_TOO_SHORT", "x")).toMatch(/not long enough/);
    expect(claimRefusalText(undefined, "network down")).toBe("Could not claim: network down");
  });

  it("widget_view/member_from_the_tokens_sub_claim", () => {
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    expect(memberOfToken(`${part({ alg: "HS256" })}.${part({ sub: "ana-ü/1", tenant_id: "t" })}.sig`)).toBe("ana-ü/1");
    expect(memberOfToken(`${part({ alg: "HS256" })}.${part({ tenant_id: "t" })}.sig`)).toBeUndefined();
    expect(memberOfToken("key.secret")).toBeUndefined();
    expect(memberOfToken("not a token")).toBeUndefined();
  });
});
