import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { DateTime } from "luxon";
import {
  advance, applyActivity, initialState, recompute, repair, windowFor, milestoneKey,
} from "../../src/domain/index.ts";
import type { ActivityInput, MemberStreakState, StreakRules, StreakEffect, PauseInterval } from "../../src/domain/index.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2025, 2, 4); // spans the March DST changes in both hemispheres' zones below

/** Case counts, reported by the final test so the closing note can quote them. */
export const RUNS = { a: 3000, bSweepZones: 0, bSweepWindows: 0, bRandom: 5000, c: 2000, d: 2000, e: 2000 };

const zoneArb = fc.constantFrom("UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago");

const rulesArb: fc.Arbitrary<StreakRules> = fc
  .record({
    rolling: fc.boolean(),
    period: fc.constantFrom("DAILY", "DAILY", "WEEKLY"),
    zone: zoneArb,
    reset: fc.constantFrom("00:00", "02:30", "04:00", "23:30"),
    cond: fc.constantFrom<StreakRules["condition"]>({ type: "COUNT", min: 1 }, { type: "COUNT", min: 2 }, { type: "SUM", min: 7.5 }, { type: "DISTINCT", min: 2 }),
    grace: fc.constantFrom(0, 2 * 3600, 30 * 3600),
    completion: fc.constantFrom(0, 0, 4),
    freezes: fc.integer({ min: 0, max: 1 }),
    repairSec: fc.constantFrom(0, 3 * 86400),
  })
  .map(({ rolling, period, zone, reset, cond, grace, completion, freezes, repairSec }) => ({
    window: rolling
      ? { type: "ROLLING" as const, minSpacingSeconds: 20 * 3600, maxGapSeconds: 36 * 3600 }
      : { type: "CALENDAR" as const, period: period, timezone: zone, resetTime: reset, weekStart: 1 + (reset.length % 7) },
    condition: cond,
    graceSeconds: grace,
    completionTarget: completion,
    freezePolicy: { maxHeld: 2, initial: freezes },
    repairWindowSeconds: repairSec,
    milestones: [{ threshold: 2 }, { threshold: 3, repeatable: true }, { threshold: 5, reward: { kind: "FREEZE" as const, value: 1 } }],
  }));

const historyArb = fc.array(
  fc.record({
    hour: fc.integer({ min: 0, max: 24 * 24 }),
    minute: fc.integer({ min: 0, max: 59 }),
    value: fc.integer({ min: 0, max: 6 }),
    key: fc.constantFrom("a", "b", "c"),
    delay: fc.double({ min: 0, max: 0.999, noNaN: true }),
  }),
  { minLength: 1, maxLength: 24 },
);

interface Arrival {
  readonly activity: ActivityInput;
  readonly arrive: number;
}

/** Arrival times anywhere inside each event's grace horizon, processed in arrival order. */
interface HistoryItem {
  readonly hour: number;
  readonly minute: number;
  readonly value: number;
  readonly key: string;
  readonly delay: number;
}

function arrivals(rules: StreakRules, history: readonly HistoryItem[]): Arrival[] {
  const grace = (rules.graceSeconds ?? 0) * 1000;
  return history
    .map((h, i) => {
      const at = T0 + h.hour * HOUR + h.minute * 60_000;
      const w = rules.window;
      const horizon = w.type === "CALENDAR" ? windowFor(w, at, w.timezone).endMs + grace - at : grace;
      return { activity: { id: `e${i}`, occurredAt: at, value: h.value, distinctKey: h.key }, arrive: at + Math.floor(h.delay * horizon) };
    })
    .sort((x: Arrival, y: Arrival) => x.arrive - y.arrive);
}

function applyAll(rules: StreakRules, list: readonly Arrival[], pauses?: readonly PauseInterval[]) {
  let state = initialState(rules);
  const steps: { before: MemberStreakState; after: MemberStreakState; effects: readonly StreakEffect[]; kind: string }[] = [];
  for (const a of list) {
    const r = applyActivity(rules, state, a.activity, { now: a.arrive, pausedIntervals: pauses });
    steps.push({ before: state, after: r.state, effects: r.effects, kind: r.outcome.kind });
    state = r.state;
  }
  return { state, steps };
}

describe("properties", () => {
  it("(a) incremental state in any arrival order inside the grace horizon equals recompute from sorted history", () => {
    fc.assert(
      fc.property(rulesArb, historyArb, fc.integer({ min: 0, max: 6 * 24 }), fc.option(fc.integer({ min: 0, max: 20 * 24 })), (rules, history, extraHours, pauseAt) => {
        const pauses: PauseInterval[] = pauseAt === null ? [] : [{ from: T0 + pauseAt * HOUR, to: T0 + pauseAt * HOUR + 40 * HOUR }];
        const list = arrivals(rules, history);
        const { state, steps } = applyAll(rules, list, pauses);
        expect(steps.every((s) => s.kind === "APPLIED")).toBe(true);
        const end = Math.max(...list.map((a) => a.arrive)) + extraHours * HOUR;
        const incremental = advance(rules, state, end, { pausedIntervals: pauses }).state;
        const full = recompute(rules, list.map((a) => a.activity), end, { pausedIntervals: pauses });
        expect(incremental).toEqual(full);
      }),
      { numRuns: RUNS.a },
    );
  });

  it("(c) the count rises by at most 1 per counted window and longest >= current always", () => {
    fc.assert(
      fc.property(rulesArb, historyArb, (rules, history) => {
        const list = arrivals(rules, history);
        const { steps } = applyAll(rules, list);
        const w = rules.window;
        const windowsWithActivity = new Set(
          list.map((a) => (w.type === "CALENDAR" ? windowFor(w, a.activity.occurredAt, w.timezone).key : a.activity.id)),
        );
        for (const s of steps) {
          expect(s.after.longest).toBeGreaterThanOrEqual(s.after.current);
          expect(s.after.longest).toBeGreaterThanOrEqual(s.before.longest);
          expect(s.after.current - s.before.current).toBeLessThanOrEqual(s.after.increments - s.before.increments);
          expect(s.after.increments).toBeLessThanOrEqual(windowsWithActivity.size);
          const credited = s.effects.filter((e) => e.type === "streak.incremented");
          for (const e of credited) if (e.type === "streak.incremented") expect(e.count - e.previousCount).toBeLessThanOrEqual(e.increments);
        }
      }),
      { numRuns: RUNS.c },
    );
  });

  it("(d) a duplicate activity never changes state", () => {
    fc.assert(
      fc.property(rulesArb, historyArb, fc.nat(), fc.integer({ min: 0, max: 72 }), (rules, history, pick, laterHours) => {
        const list = arrivals(rules, history);
        const { state } = applyAll(rules, list);
        const dup = list[pick % list.length] as Arrival;
        const now = Math.max(...list.map((a) => a.arrive)) + laterHours * HOUR;
        const r = applyActivity(rules, state, dup.activity, { now });
        if (r.outcome.kind === "DUPLICATE") {
          expect(r.state).toBe(state);
          expect(r.effects).toEqual([]);
        } else {
          // Only an activity whose window is already final can be forgotten; it is then refused, changing nothing.
          expect(r.outcome).toEqual({ kind: "NOT_APPLIED", reason: "TOO_LATE" });
          expect(r.state).toEqual(advance(rules, state, now).state);
        }
      }),
      { numRuns: RUNS.d },
    );
  });

  it("(e) a repair never grants a milestone twice", () => {
    fc.assert(
      fc.property(rulesArb, historyArb, fc.array(fc.integer({ min: 0, max: 24 * 24 }), { maxLength: 4 }), (rules0, history, repairHours) => {
        const rules = { ...rules0, repairWindowSeconds: 4 * 86400 };
        const events = arrivals(rules, history).map((a) => ({ t: a.arrive, a: a }));
        const all = [...events, ...repairHours.map((h) => ({ t: T0 + h * HOUR, a: null }))].sort((x, y) => x.t - y.t);
        let state = initialState(rules);
        const granted: string[] = [];
        for (const step of all) {
          const r = step.a === null ? repair(rules, state, step.t) : applyActivity(rules, state, step.a.activity, { now: step.t });
          const before = new Set(state.earned.map(milestoneKey));
          for (const e of r.effects) {
            if (e.type !== "streak.milestone_reached") continue;
            const key = milestoneKey(e);
            expect(before.has(key)).toBe(false);
            granted.push(key);
          }
          // Nothing earned is ever taken back (a repair joins the run since the break, even one still in grace).
          const after = new Set(r.state.earned.map(milestoneKey));
          for (const key of before) expect(after.has(key)).toBe(true);
          state = r.state;
        }
        expect(new Set(granted).size).toBe(granted.length);
        expect(new Set(state.earned.map(milestoneKey)).size).toBe(state.earned.length);
      }),
      { numRuns: RUNS.e },
    );
  });
});

describe("(b) windows in every IANA zone with DST", () => {
  const year = 2025;
  const start = Date.UTC(year, 0, 1);
  const end = Date.UTC(year + 1, 0, 1);
  const offsetAt = (zone: string, t: number) => DateTime.fromMillis(t, { zone }).offset;
  const dstZones = Intl.supportedValuesOf("timeZone").filter((z) => {
    const offsets = new Set(Array.from({ length: 12 }, (_, m) => offsetAt(z, Date.UTC(year, m, 15))));
    return offsets.size > 1;
  });
  const resets = ["00:00", "01:30", "02:00", "02:30", "03:00", "23:30"];

  it("sweep: each zone's daily windows over a whole year touch, cover every instant once, last 23/24/25 h", () => {
    let windows = 0;
    const odd: string[] = [];
    dstZones.forEach((zone, i) => {
      const spec = { type: "CALENDAR" as const, period: "DAILY" as const, timezone: zone, resetTime: resets[i % resets.length] as string, weekStart: 1 };
      let w = windowFor(spec, start, zone);
      while (w.startMs < end) {
        const next = windowFor(spec, w.endMs, zone);
        expect(next.startMs).toBe(w.endMs);
        expect(next.key > w.key).toBe(true);
        expect(windowFor(spec, w.endMs - 1, zone).key).toBe(w.key);
        const hours = (w.endMs - w.startMs) / HOUR;
        expect(Math.abs(w.endMs - w.startMs - DAY)).toBeLessThanOrEqual(2 * HOUR);
        if (![23, 24, 25].includes(hours)) odd.push(`${zone}:${hours}`);
        windows++;
        w = next;
      }
    });
    RUNS.bSweepZones = dstZones.length;
    RUNS.bSweepWindows = windows;
    // Only zones whose clocks move by something other than one hour may differ (Lord Howe 30 min, Troll 2 h).
    expect([...new Set(odd.map((o) => o.split(":")[0]))].sort()).toEqual(
      dstZones.filter((z) => z === "Australia/Lord_Howe" || z === "Antarctica/Troll").sort(),
    );
    expect(dstZones.length).toBeGreaterThan(50);
  });

  it("random: any instant, period, reset time and week start falls in exactly one window and neighbours touch", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...dstZones),
        fc.integer({ min: start, max: end - 1 }),
        fc.constantFrom("DAILY", "WEEKLY", "MONTHLY"),
        fc.constantFrom(...resets),
        fc.integer({ min: 1, max: 7 }),
        (zone, t, period, resetTime, weekStart) => {
          const spec = { type: "CALENDAR" as const, period: period, timezone: zone, resetTime, weekStart };
          const w = windowFor(spec, t, zone);
          expect(w.startMs).toBeLessThanOrEqual(t);
          expect(t).toBeLessThan(w.endMs);
          expect(windowFor(spec, w.startMs, zone)).toEqual(w);
          expect(windowFor(spec, w.startMs - 1, zone).endMs).toBe(w.startMs);
          expect(windowFor(spec, w.endMs, zone).startMs).toBe(w.endMs);
          const hours = (w.endMs - w.startMs) / HOUR;
          if (period === "DAILY" && zone !== "Australia/Lord_Howe" && zone !== "Antarctica/Troll") expect([23, 24, 25]).toContain(hours);
          if (period === "WEEKLY") expect(Math.abs(hours - 168)).toBeLessThanOrEqual(2);
        },
      ),
      { numRuns: RUNS.bRandom },
    );
  });

  it("reports case counts", () => {
    console.log(`property cases: ${JSON.stringify(RUNS)}`);
  });
});
