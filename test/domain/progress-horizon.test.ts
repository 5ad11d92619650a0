// ProgressView.validUntil: the promise the read cache (src/api/mappers/progress-cache.ts) relies on — for every
// instant in [now, validUntil) the view of the same stored state is the same but for its countdown, which is
// secondsUntil(countdownTo, t). Checked against views computed afresh at instants spread over the span, at its
// edges and just past it, for random calendar definitions (grace, at-risk lead, freezes, completions, pauses,
// member zones, DST) and histories; rolling windows promise nothing.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { applyActivity, initialState } from "../../src/domain/index.ts";
import { progressView, secondsUntil, type ProgressView } from "../../src/domain/progress-view.ts";
import type { MemberStreakState, PauseInterval, StreakRules } from "../../src/domain/index.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2025, 2, 4); // spans the March DST changes in both hemispheres' zones below

const zoneArb = fc.constantFrom("UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata");

const rulesArb: fc.Arbitrary<StreakRules> = fc
  .record({
    rolling: fc.boolean(),
    period: fc.constantFrom("DAILY", "DAILY", "WEEKLY"),
    zone: zoneArb,
    memberZones: fc.boolean(),
    reset: fc.constantFrom("00:00", "02:30", "23:30"),
    cond: fc.constantFrom<StreakRules["condition"]>({ type: "COUNT", min: 1 }, { type: "COUNT", min: 2 }, { type: "SUM", min: 7.5 }),
    grace: fc.constantFrom(0, 0, 2 * 3600, 30 * 3600),
    lead: fc.constantFrom(0, 3 * 3600, 20 * 3600),
    completion: fc.constantFrom(0, 0, 3),
    freezes: fc.integer({ min: 0, max: 1 }),
  })
  .map(({ rolling, period, zone, memberZones, reset, cond, grace, lead, completion, freezes }) => ({
    window: rolling
      ? { type: "ROLLING" as const, minSpacingSeconds: 20 * 3600, maxGapSeconds: 36 * 3600 }
      : { type: "CALENDAR" as const, period, timezone: zone, useMemberTimezone: memberZones, resetTime: reset, weekStart: 1 + (reset.length % 7) },
    condition: cond,
    graceSeconds: grace,
    ...(lead > 0 ? { atRiskLeadSeconds: lead } : {}),
    completionTarget: completion,
    freezePolicy: { maxHeld: 2, initial: freezes },
    repairWindowSeconds: 3 * 86400,
    milestones: [{ threshold: 2 }, { threshold: 3, repeatable: true }, { threshold: 5, reward: { kind: "FREEZE" as const, value: 1 } }],
  }));

const historyArb = fc.array(
  fc.record({ minutes: fc.integer({ min: 0, max: 12 * 24 * 60 }), value: fc.integer({ min: 0, max: 6 }) }),
  { minLength: 0, maxLength: 16 },
);

function stateFrom(rules: StreakRules, history: readonly { minutes: number; value: number }[], zone: string, pauses: readonly PauseInterval[]): { state: MemberStreakState; last: number } {
  let state = initialState(rules);
  let last = T0;
  const sorted = [...history].sort((a, b) => a.minutes - b.minutes);
  sorted.forEach((h, i) => {
    const at = T0 + h.minutes * MINUTE;
    state = applyActivity(rules, state, { id: `e${i}`, occurredAt: at, value: h.value, memberTimezone: zone }, { now: at, pausedIntervals: pauses }).state;
    last = at;
  });
  return { state, last };
}

/** The view without what may differ inside its span: the countdown and the instant the state was evaluated at. */
function comparable(v: ProgressView) {
  const { secondsUntilWindowClose: _countdown, state, ...rest } = v;
  return { ...rest, state: { ...state, evaluatedAt: null } };
}

describe("progress view horizon", () => {
  it("progress/view_is_unchanged_but_for_its_countdown_until_valid_until", () => {
    fc.assert(
      fc.property(
        rulesArb,
        historyArb,
        fc.integer({ min: 0, max: 4 * 24 * 60 }),
        fc.option(fc.integer({ min: 0, max: 14 * 24 })),
        fc.constantFrom("America/Santiago", "Asia/Tokyo"),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { minLength: 4, maxLength: 4 }),
        (rules, history, afterMinutes, pauseAt, memberZone, spots) => {
          const pauses: PauseInterval[] = pauseAt === null ? [] : [{ from: T0 + pauseAt * HOUR, to: T0 + pauseAt * HOUR + 30 * HOUR }];
          const opts = { pausedIntervals: pauses };
          const { state, last } = stateFrom(rules, history, memberZone, pauses);
          const now = last + afterMinutes * MINUTE + 17_123;
          const view = progressView(rules, state, now, opts);
          if (rules.window.type === "ROLLING") {
            expect(view.validUntil).toBe(now);
            return;
          }
          expect(view.validUntil).toBeGreaterThan(now);
          const span = view.validUntil - now;
          const instants = [now + 1, view.validUntil - 1, ...spots.map((f) => now + Math.floor(f * span))];
          for (const t of instants) {
            const later = progressView(rules, state, t, opts);
            expect(comparable(later)).toEqual(comparable(view));
            expect(later.secondsUntilWindowClose).toBe(secondsUntil(view.countdownTo!, t));
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("progress/valid_until_is_the_next_window_grace_or_at_risk_instant", () => {
    const daily = (extra: Partial<StreakRules>): StreakRules => ({
      window: { type: "CALENDAR", period: "DAILY", timezone: "UTC", resetTime: "00:00", weekStart: 1 },
      condition: { type: "COUNT", min: 1 },
      ...extra,
    });
    const day2 = T0 + DAY;
    // Nothing pending: the view holds until midnight.
    const plain = daily({});
    const s1 = applyActivity(plain, initialState(plain), { id: "a", occurredAt: T0 + HOUR }, { now: T0 + HOUR }).state;
    expect(progressView(plain, s1, day2 + 10 * HOUR).validUntil).toBe(day2 + DAY);
    // Yesterday's window still in its 2-hour grace: the view changes when that grace ends.
    const graced = daily({ graceSeconds: 2 * 3600 });
    const s2 = applyActivity(graced, initialState(graced), { id: "a", occurredAt: T0 + HOUR }, { now: T0 + HOUR }).state;
    const inGrace = progressView(graced, s2, day2 + 30 * MINUTE);
    expect(inGrace.validUntil).toBe(day2 + 2 * HOUR);
    // At risk 3 hours before the close of an unsatisfied window.
    const risky = daily({ atRiskLeadSeconds: 3 * 3600 });
    const s3 = applyActivity(risky, initialState(risky), { id: "a", occurredAt: T0 + HOUR }, { now: T0 + HOUR }).state;
    const beforeRisk = progressView(risky, s3, day2 + 10 * HOUR);
    expect(beforeRisk.atRisk).toBe(false);
    expect(beforeRisk.validUntil).toBe(day2 + 21 * HOUR);
    expect(progressView(risky, s3, day2 + 21 * HOUR).atRisk).toBe(true);
  });
});
