// The columns a member-streak row carries beside its JSON state so window-close sweeps can be set-based SQL
// (see the persistence contract in src/domain/index.ts): the domain's `deadlines()` plus the key of the window
// whose miss happens at `breakAt`. The key is what the streak.broken and streak.at_risk dedupe keys are made of,
// so a sweep that never reads the JSON still writes exactly the event the domain would have produced.
import { deadlines, frontierOf, type BreakKind, type EvalOptions, type MemberStreakState } from "../../domain/streak-machine.ts";
import type { StreakRules } from "../../domain/rules.ts";

export interface StreakProjection {
  readonly windowCloseAt: number | null;
  readonly atRiskAt: number | null;
  readonly breakAt: number | null;
  readonly breakKind: BreakKind | null;
  /** Key of the open window that closes at `windowCloseAt` (the one a break or an at-risk reminder is about). */
  readonly breakWindowKey: string | null;
  /** Start of that window: the break sweep stores the broken window's bounds as history without the JSON. */
  readonly windowStartAt: number | null;
}

export function streakProjection(rules: StreakRules, state: MemberStreakState, opts: EvalOptions = {}): StreakProjection {
  const d = deadlines(rules, state, opts);
  if (d.breakAt === null) return { ...d, breakWindowKey: null, windowStartAt: null };
  const frontier = frontierOf(rules, state, state.evaluatedAt ?? 0, opts).frontier;
  return { ...d, breakWindowKey: frontier.window?.key ?? null, windowStartAt: frontier.window?.startMs ?? null };
}
