import { describe, expect } from "vitest";
import { t, play, ms, DAY } from "./helpers.ts";
import { renderDisplay, renderTemplate, GAMOPANDA_DEFAULT_TEXTS, languageChain, progressView, selectMessage } from "../../src/domain/index.ts";
import type { StreakRules, TemplateValues } from "../../src/domain/index.ts";

const example: TemplateValues = { period: "DAILY", currentProgressValue: 3, nextProgressValue: 4, nextRemainingValue: 20.5, nextRemainingPeriod: 2 };
const words = { one: "day", other: "days" };

describe("gamopanda display", () => {
  t("display/worked_example_renders_exactly", () => {
    expect(renderTemplate(GAMOPANDA_DEFAULT_TEXTS.nonMilestoneNextToBeAchievedMessage as string, example, words)).toBe(
      "Shop for $20.50 or more to complete the day 4 streak!",
    );
    expect(renderTemplate(GAMOPANDA_DEFAULT_TEXTS.milestoneNextToBeAchievedMessage as string, example, words)).toBe(
      "Shop for $20.50 or more for 2 days to complete the next milestone!",
    );
    expect(renderTemplate(GAMOPANDA_DEFAULT_TEXTS.milestoneNextToBeAchievedMessage as string, { ...example, nextRemainingPeriod: 1 }, words)).toBe(
      "Shop for $20.50 or more for 1 day to complete the next milestone!",
    );
  });

  t("display/worked_example_from_a_real_streak", () => {
    const rules: StreakRules = {
      window: { type: "CALENDAR", period: "DAILY", timezone: "UTC", resetTime: "00:00", weekStart: 1 },
      condition: { type: "SUM", min: 50 },
      milestones: [{ threshold: 5 }],
    };
    const r = play(rules, [
      { at: ms("2025-03-01T10:00"), value: 50 }, { at: ms("2025-03-02T10:00"), value: 50 }, { at: ms("2025-03-03T10:00"), value: 50 },
      { at: ms("2025-03-04T09:00"), value: 29.5 },
    ]);
    const v = progressView(rules, r.state, ms("2025-03-04T10:00"));
    expect(v.display.messages.nonMilestoneNextToBeAchievedMessage).toBe("Shop for $20.50 or more to complete the day 4 streak!");
    expect(v.display.messages.milestoneNextToBeAchievedMessage).toBe("Shop for $20.50 or more for 2 days to complete the next milestone!");
    expect(v.display.messageKey).toBe("nonMilestoneNextToBeAchievedMessage");
    expect(v.display.statusLabel).toBe("In Progress");
    const r5 = play(rules, [{ at: ms("2025-03-04T18:00"), value: 30 }], undefined, undefined, r.state);
    expect(progressView(rules, r5.state, ms("2025-03-04T19:00")).display.message).toBe(
      "You have completed day 4 streak! Come back next day to shop more to maintain your streak and reach the next milestone!",
    );
    expect(progressView(rules, r5.state, ms("2025-03-05T10:00")).display.messageKey).toBe("milestoneNextToBeAchievedMessage");
    expect(progressView(rules, r5.state, ms("2025-03-07T10:00")).display.messageKey).toBe("brokenStreakMessage");
  });

  t("display/language_fallback_requested_base_default_then_english", () => {
    const display = {
      defaultLanguage: "de",
      texts: {
        fr: { brokenLabel: "Rompue", periodWords: { one: "jour", other: "jours" }, milestoneNextToBeAchievedMessage: "Encore {{nextRemainingPeriod}} {{periodText}}s !" },
        de: { brokenLabel: "Unterbrochen", completedLabel: "Fertig" },
      },
    };
    expect(languageChain("fr-CA", display)).toEqual(["fr-CA", "fr", "de"]);
    const state = { status: "BROKEN" as const, windowSatisfied: false, milestoneJustReached: false, nextPeriodIsMilestone: false };
    const fr = renderDisplay(display, "fr-CA", example, state);
    expect(fr.statusLabel).toBe("Rompue");
    expect(fr.messages.milestoneNextToBeAchievedMessage).toBe("Encore 2 jours !");
    expect(renderDisplay(display, "es", example, state).statusLabel).toBe("Unterbrochen");
    expect(renderDisplay(display, "es", example, { ...state, status: "COMPLETED" }).statusLabel).toBe("Fertig");
    expect(renderDisplay(display, "es", example, { ...state, status: "NOT_STARTED" }).statusLabel).toBe("Not Started");
    expect(renderDisplay(undefined, undefined, example, state).message).toBe(GAMOPANDA_DEFAULT_TEXTS.brokenStreakMessage);
  });

  t("display/message_choice_per_state", () => {
    const base = { status: "IN_PROGRESS" as const, windowSatisfied: false, milestoneJustReached: false, nextPeriodIsMilestone: false };
    expect(selectMessage(base)).toBe("nonMilestoneNextToBeAchievedMessage");
    expect(selectMessage({ ...base, nextPeriodIsMilestone: true })).toBe("milestoneNextToBeAchievedMessage");
    expect(selectMessage({ ...base, windowSatisfied: true })).toBe("nonMilestoneAchievedMessage");
    expect(selectMessage({ ...base, windowSatisfied: true, milestoneJustReached: true })).toBe("milestoneAchievedMessage");
    expect(selectMessage({ ...base, status: "COMPLETED" })).toBe("completedStreakMessage");
    expect(selectMessage({ ...base, status: "BROKEN" })).toBe("brokenStreakMessage");
    expect(renderTemplate("{{ nextRemainingValue }}|{{currentProgressValue}}", { ...example, nextRemainingValue: 20 }, words, 2)).toBe("20.00|3");
    expect(DAY).toBe(86_400_000);
  });
  t("display/rendered_once_per_input_and_never_reused_for_another", () => {
    const display = { defaultLanguage: "en", texts: { en: { nonMilestoneNextToBeAchievedMessage: "{{nextRemainingValue}} more for day {{nextProgressValue}}", title: "Daily" }, fr: { title: "Quotidien" } } };
    const state = { status: "IN_PROGRESS" as const, windowSatisfied: false, milestoneJustReached: false, nextPeriodIsMilestone: false };
    const first = renderDisplay(display, "en", example, state);
    // The same inputs give the same (frozen) object: reads of one state share one rendering.
    expect(renderDisplay(display, "en", { ...example }, { ...state })).toBe(first);
    expect(Object.isFrozen(first) && Object.isFrozen(first.messages)).toBe(true);
    expect(first.message).toBe("20.50 more for day 4");
    // Any input that changes the rendering gives a different one.
    expect(renderDisplay(display, "en", { ...example, nextRemainingValue: 7 }, state).message).toBe("7 more for day 4");
    expect(renderDisplay(display, "en", { ...example, currentProgressValue: 4, nextProgressValue: 5 }, state).message).toBe("20.50 more for day 5");
    expect(renderDisplay(display, "fr", example, state).title).toBe("Quotidien");
    expect(renderDisplay(display, undefined, example, state).title).toBe("Daily");
    expect(renderDisplay(display, "en", example, { ...state, windowSatisfied: true }).messageKey).toBe("nonMilestoneAchievedMessage");
    expect(renderDisplay(display, "en", example, { ...state, status: "BROKEN" }).statusLabel).toBe(GAMOPANDA_DEFAULT_TEXTS.brokenLabel);
    expect(renderDisplay(display, "en", { ...example, period: "WEEKLY" }, { ...state, nextPeriodIsMilestone: true }).messageKey).toBe("milestoneNextToBeAchievedMessage");
    // Another definition's settings (a new object, as a changed definition is) never see this one's texts.
    expect(renderDisplay({ ...display, texts: { en: { title: "Weekly" } } }, "en", example, state).title).toBe("Weekly");
    expect(renderDisplay(undefined, "en", example, state).message).toBe("Shop for $20.50 or more to complete the day 4 streak!");
  });
});
