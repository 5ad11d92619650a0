import { describe, expect } from "vitest";
import { t, ms, HOUR } from "./helpers.ts";
import { advance, applyActivity, initialState, milestoneKey, repair } from "../../src/domain/index.ts";
import type { MemberStreakState, RepairOutcome, StreakEffect, StreakRules } from "../../src/domain/index.ts";

/** One operation, in arrival order: an activity (event time `at`, arriving at `arrive`), a repair, or a read. */
type Op =
  | { readonly op: "activity"; readonly at: number; readonly arrive?: number; readonly value?: number }
  | { readonly op: "repair"; readonly now: number }
  | { readonly op: "advance"; readonly now: number };

interface Case {
  readonly name: string;
  readonly rules: StreakRules;
  readonly ops: readonly Op[];
  readonly restoredCount: number;
  /** `cycle:threshold:occurrence` of every milestone_reached effect, in order; each appears once. */
  readonly granted: readonly string[];
  readonly final: Partial<Pick<MemberStreakState, "current" | "longest" | "status" | "breaks" | "repairs">>;
}

const MILESTONES: StreakRules["milestones"] = [{ threshold: 2 }, { threshold: 3, repeatable: true }, { threshold: 5, reward: { kind: "FREEZE", value: 1 } }];

const dailyUtc = (graceSeconds: number, condition: StreakRules["condition"] = { type: "COUNT", min: 1 }): StreakRules => ({
  window: { type: "CALENDAR", period: "DAILY", timezone: "UTC", resetTime: "00:00", weekStart: 6 },
  condition,
  graceSeconds,
  freezePolicy: { maxHeld: 2, initial: 0 },
  repairWindowSeconds: 4 * 86400,
  milestones: MILESTONES,
});

const R0 = ms("2025-03-10T10:00");

const cases: Case[] = [
  {
    // fast-check seed -388383398, property (e). The run since the break (12th, 13th) is still in the tail when
    // the repair comes, and the 11th is unsatisfied but still in its 30 h grace.
    name: "repair/does_not_duplicate_earned_milestone_when_run_since_break_is_still_in_grace",
    rules: dailyUtc(30 * 3600),
    ops: [
      { op: "activity", at: ms("2025-03-06T00:00") },
      { op: "activity", at: ms("2025-03-12T00:00") }, // the 7th broke the run (final on the 9th at 06:00)
      { op: "activity", at: ms("2025-03-13T00:00") }, // new run reaches 2: milestone 2
      { op: "repair", now: ms("2025-03-13T00:00") }, // 1 + 2 = 3: milestone 3, and 2 is not granted again
      { op: "activity", at: ms("2025-03-13T06:00") },
      // The 11th left grace at 06:00 on the 13th: bridged, it does not break the run. The 14th is in grace until
      // 06:00 on the 16th.
      { op: "advance", now: ms("2025-03-16T00:00") },
    ],
    restoredCount: 3,
    granted: ["1:2:1", "1:3:1"],
    final: { current: 3, longest: 3, status: "IN_PROGRESS", breaks: 1, repairs: 1 },
  },
  {
    name: "repair/does_not_duplicate_earned_milestone_when_run_since_break_keeps_going_after_the_repair",
    rules: dailyUtc(30 * 3600),
    ops: [
      { op: "activity", at: ms("2025-03-06T00:00") },
      { op: "activity", at: ms("2025-03-12T00:00") },
      { op: "activity", at: ms("2025-03-13T00:00") },
      { op: "repair", now: ms("2025-03-13T00:00") },
      { op: "activity", at: ms("2025-03-14T08:00") }, // 4
      { op: "activity", at: ms("2025-03-15T08:00") }, // 5: milestone 5 (+1 freeze)
      { op: "activity", at: ms("2025-03-16T08:00") }, // 6: milestone 3 again (occurrence 2)
      { op: "advance", now: ms("2025-03-17T00:00") },
    ],
    restoredCount: 3,
    granted: ["1:2:1", "1:3:1", "1:5:1", "1:3:2"],
    final: { current: 6, longest: 6, status: "IN_PROGRESS", breaks: 1, repairs: 1 },
  },
  {
    // The 11th has one of the two activities it needs: still in grace, so the new run had skipped it. It is
    // bridged like any other missed window and does not hold or break the joined run.
    name: "repair/skipped_window_in_grace_before_run_since_break_is_bridged",
    rules: dailyUtc(30 * 3600, { type: "COUNT", min: 2 }),
    ops: [
      { op: "activity", at: ms("2025-03-05T09:00") },
      { op: "activity", at: ms("2025-03-05T10:00") },
      { op: "activity", at: ms("2025-03-06T09:00") },
      { op: "activity", at: ms("2025-03-06T10:00") }, // 2: milestone 2
      { op: "activity", at: ms("2025-03-11T09:00") },
      { op: "activity", at: ms("2025-03-12T09:00") },
      { op: "activity", at: ms("2025-03-12T10:00") }, // new run: 1
      { op: "repair", now: ms("2025-03-12T12:00") }, // 2 + 1 = 3: milestone 3
      { op: "advance", now: ms("2025-03-13T12:00") }, // the 11th leaves grace
    ],
    restoredCount: 3,
    granted: ["1:2:1", "1:3:1"],
    final: { current: 3, longest: 3, status: "IN_PROGRESS", breaks: 1, repairs: 1 },
  },
  {
    name: "repair/calendar_run_since_break_already_final_joins_as_before",
    rules: dailyUtc(0),
    ops: [
      { op: "activity", at: ms("2025-03-05T09:00") },
      { op: "activity", at: ms("2025-03-06T09:00") }, // 2: milestone 2
      { op: "activity", at: ms("2025-03-08T09:00") }, // the 7th broke it; new run 1
      { op: "activity", at: ms("2025-03-09T09:00") }, // new run 2 (milestone 2 already earned)
      { op: "repair", now: ms("2025-03-10T12:00") }, // 2 + 2 = 4: milestone 3
      { op: "activity", at: ms("2025-03-10T13:00") }, // 5: milestone 5
    ],
    restoredCount: 4,
    granted: ["1:2:1", "1:3:1", "1:5:1"],
    final: { current: 5, longest: 5, status: "IN_PROGRESS", breaks: 1, repairs: 1 },
  },
  {
    // Rolling, 2 h grace: the check-in since the break is still in the tail. It used to be dropped by the repair,
    // which then reopened a shorter window at the repair time that the next check-in missed.
    name: "repair/rolling_check_in_since_break_still_in_grace_joins_restored_run",
    rules: {
      window: { type: "ROLLING", minSpacingSeconds: 20 * 3600, maxGapSeconds: 36 * 3600 },
      condition: { type: "COUNT", min: 1 },
      graceSeconds: 2 * 3600,
      repairWindowSeconds: 4 * 86400,
      milestones: MILESTONES,
    },
    ops: [
      { op: "activity", at: R0 },
      { op: "activity", at: R0 + 24 * HOUR }, // 2: milestone 2
      { op: "activity", at: R0 + 80 * HOUR }, // the window closing at +60 h broke it at +62 h; new run 1
      { op: "repair", now: R0 + 81 * HOUR }, // 2 + 1 = 3: milestone 3
      { op: "activity", at: R0 + 104 * HOUR }, // 4
      { op: "activity", at: R0 + 128 * HOUR }, // 5: milestone 5
    ],
    restoredCount: 3,
    granted: ["1:2:1", "1:3:1", "1:5:1"],
    final: { current: 5, longest: 5, status: "IN_PROGRESS", breaks: 1, repairs: 1 },
  },
];

describe("repair regressions", () => {
  for (const c of cases) {
    t(c.name, () => {
      let state = initialState(c.rules);
      const effects: StreakEffect[] = [];
      const repairs: RepairOutcome[] = [];
      let n = 0;
      for (const o of c.ops) {
        const r =
          o.op === "activity"
            ? applyActivity(c.rules, state, { id: `e${++n}`, occurredAt: o.at, value: o.value ?? 1 }, { now: o.arrive ?? o.at })
            : o.op === "repair"
              ? repair(c.rules, state, o.now)
              : advance(c.rules, state, o.now);
        if (o.op === "activity") expect(r.outcome).toMatchObject({ kind: "APPLIED" });
        if (o.op === "repair") repairs.push(r.outcome as RepairOutcome);
        // Nothing earned is ever taken back, so nothing can be granted twice.
        const after = new Set(r.state.earned.map(milestoneKey));
        for (const m of state.earned) expect(after.has(milestoneKey(m))).toBe(true);
        expect(after.size).toBe(r.state.earned.length);
        effects.push(...r.effects);
        state = r.state;
      }
      expect(repairs).toEqual([{ kind: "REPAIRED", restoredCount: c.restoredCount }]);
      const granted = effects.flatMap((e) => (e.type === "streak.milestone_reached" ? [milestoneKey(e)] : []));
      expect(granted).toEqual(c.granted);
      expect(state.earned.map(milestoneKey)).toEqual(c.granted);
      expect(state).toMatchObject(c.final);
    });
  }
});
