import type { Milestone, StreakRules } from "./rules.ts";
import type { StreakStatus } from "./streak-status.ts";

/** A window that was counted: its bounds and the event time at which it became satisfied. */
export interface CreditedWindow {
  readonly key: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly at: number;
}

/**
 * One grant of a milestone. (cycle, threshold, occurrence) identifies it: a non-repeatable milestone is granted
 * once per completion cycle (occurrence 1), a repeatable one once per multiple of its threshold per cycle. A
 * break never resets this, so rebuilding or repairing a streak can never grant the same milestone twice.
 */
export interface EarnedMilestone {
  readonly threshold: number;
  readonly occurrence: number;
  readonly cycle: number;
  /** Streak count at which it was reached (threshold × occurrence, or higher after a repair). */
  readonly count: number;
  readonly windowKey: string;
  /** Event time of the activity that satisfied the window reaching it, or the repair time. */
  readonly earnedAt: number;
  readonly viaRepair: boolean;
}

export interface BreakRecord {
  /** The count the streak had when it broke (Loyalteez `previousStreak`). */
  readonly previousStreak: number;
  /** The missed window that broke it. */
  readonly windowKey: string;
  /** When the break took effect: the missed window's close plus grace. */
  readonly brokenAt: number;
  readonly cycle: number;
  readonly repaired: boolean;
}

/** The counting part of a member streak: everything folds of windows produce. Plain JSON. */
export interface ChainState {
  readonly current: number;
  readonly longest: number;
  readonly status: StreakStatus;
  /** Completion cycle, from 1; a new cycle starts with the first window counted after a completion. */
  readonly cycle: number;
  readonly completions: number;
  /** Windows ever counted, across runs (Loyalteez `totalStreakDays`). */
  readonly increments: number;
  readonly breaks: number;
  readonly freezesHeld: number;
  readonly freezesUsed: number;
  readonly repairs: number;
  readonly earned: readonly EarnedMilestone[];
  readonly lastCredited: CreditedWindow | null;
  /** Key of the window that started the current run; null while the count is 0. */
  readonly runStartKey: string | null;
  readonly lastBreak: BreakRecord | null;
  /** Set when a run starts after a break (Loyalteez `wasReset` / `previousStreak`). */
  readonly lastReset: { readonly runStartKey: string; readonly previousStreak: number } | null;
  /** Key of the last window bridged by a freeze. */
  readonly lastFreezeKey: string | null;
}

export function initialChain(rules: StreakRules): ChainState {
  return {
    current: 0,
    longest: 0,
    status: "NOT_STARTED",
    cycle: 1,
    completions: 0,
    increments: 0,
    breaks: 0,
    freezesHeld: rules.freezePolicy?.initial ?? 0,
    freezesUsed: 0,
    repairs: 0,
    earned: [],
    lastCredited: null,
    runStartKey: null,
    lastBreak: null,
    lastReset: null,
    lastFreezeKey: null,
  };
}

export function milestoneKey(m: Pick<EarnedMilestone, "cycle" | "threshold" | "occurrence">): string {
  return `${m.cycle}:${m.threshold}:${m.occurrence}`;
}

/** Whether the run is live, i.e. a missed window would cost a freeze or break it. */
export function isAlive(ch: ChainState): boolean {
  return ch.current > 0 && ch.status === "IN_PROGRESS";
}

function freezeCap(rules: StreakRules): number {
  return rules.freezePolicy?.maxHeld ?? Number.MAX_SAFE_INTEGER;
}

/** Milestones reached by counts up to `count` in `cycle` that are not yet earned, in count order. */
export function dueMilestones(
  rules: StreakRules,
  earned: readonly EarnedMilestone[],
  cycle: number,
  fromCountExclusive: number,
  toCount: number,
): { milestone: Milestone; occurrence: number; count: number }[] {
  const have = new Set(earned.map(milestoneKey));
  const due: { milestone: Milestone; occurrence: number; count: number }[] = [];
  for (const m of rules.milestones ?? []) {
    const maxOccurrence = m.repeatable === true ? Math.floor(toCount / m.threshold) : toCount >= m.threshold ? 1 : 0;
    for (let occurrence = 1; occurrence <= maxOccurrence; occurrence++) {
      if (have.has(milestoneKey({ cycle, threshold: m.threshold, occurrence }))) continue;
      // Counts at or below the range start were already examined; anything missing from there is not ours to grant.
      const count = Math.max(m.threshold * occurrence, fromCountExclusive + 1);
      due.push({ milestone: m, occurrence, count: Math.min(count, toCount) });
    }
  }
  return due.sort((a, b) => a.count - b.count || a.milestone.threshold - b.milestone.threshold);
}

function grant(
  rules: StreakRules,
  ch: ChainState,
  fromCountExclusive: number,
  windowKey: string,
  earnedAt: number,
  viaRepair: boolean,
): ChainState {
  const due = dueMilestones(rules, ch.earned, ch.cycle, fromCountExclusive, ch.current);
  if (due.length === 0) return ch;
  let freezes = ch.freezesHeld;
  const earned = [...ch.earned];
  for (const d of due) {
    earned.push({
      threshold: d.milestone.threshold,
      occurrence: d.occurrence,
      cycle: ch.cycle,
      count: d.count,
      windowKey,
      earnedAt,
      viaRepair,
    });
    if (d.milestone.reward?.kind === "FREEZE") freezes = Math.min(freezeCap(rules), freezes + (d.milestone.reward.value ?? 1));
  }
  return { ...ch, earned, freezesHeld: freezes };
}

function completeIfDue(rules: StreakRules, ch: ChainState): ChainState {
  const target = rules.completionTarget ?? 0;
  if (target > 0 && ch.current >= target) return { ...ch, status: "COMPLETED", completions: ch.completions + 1 };
  return ch;
}

/** A window was satisfied and its predecessors are settled: the streak grows by one. */
export function credit(rules: StreakRules, ch: ChainState, w: CreditedWindow): ChainState {
  let next: ChainState;
  if (ch.status === "COMPLETED") {
    next = { ...ch, cycle: ch.cycle + 1, current: 1, runStartKey: w.key };
  } else if (ch.current === 0) {
    const lastReset =
      ch.status === "BROKEN" && ch.lastBreak !== null
        ? { runStartKey: w.key, previousStreak: ch.lastBreak.previousStreak }
        : ch.lastReset;
    next = { ...ch, current: 1, runStartKey: w.key, lastReset };
  } else {
    next = { ...ch, current: ch.current + 1 };
  }
  next = {
    ...next,
    status: "IN_PROGRESS",
    increments: ch.increments + 1,
    longest: Math.max(ch.longest, next.current),
    lastCredited: w,
  };
  next = grant(rules, next, next.current - 1, w.key, w.at, false);
  return completeIfDue(rules, next);
}

export type MissKind = "NONE" | "NEUTRAL" | "FREEZE" | "BREAK";

/** A window closed (plus grace) unsatisfied. Only a live run is affected. */
export function miss(
  ch: ChainState,
  windowKey: string,
  neutral: boolean,
  finalAt: number,
): { chain: ChainState; kind: MissKind } {
  if (!isAlive(ch)) return { chain: ch, kind: "NONE" };
  if (neutral) return { chain: ch, kind: "NEUTRAL" };
  if (ch.freezesHeld > 0) {
    return {
      chain: { ...ch, freezesHeld: ch.freezesHeld - 1, freezesUsed: ch.freezesUsed + 1, lastFreezeKey: windowKey },
      kind: "FREEZE",
    };
  }
  return {
    chain: {
      ...ch,
      current: 0,
      status: "BROKEN",
      breaks: ch.breaks + 1,
      runStartKey: null,
      lastBreak: { previousStreak: ch.current, windowKey, brokenAt: finalAt, cycle: ch.cycle, repaired: false },
    },
    kind: "BREAK",
  };
}

/**
 * Joins the broken run with the run since the break: the restored count is the count at the break plus the
 * windows `ch` has counted since. Milestones reached by the joined count are granted now unless already earned.
 * `repair` passes the final (base) chain. Windows of the new run that are not final yet are counted on top of it
 * when the tail is folded again, and they grant their milestones then.
 */
export function restore(rules: StreakRules, ch: ChainState, repairWindowKey: string, at: number): ChainState {
  const lb = ch.lastBreak;
  if (lb === null) return ch;
  const since = ch.current;
  const restoredCount = lb.previousStreak + since;
  let next: ChainState = {
    ...ch,
    current: restoredCount,
    status: "IN_PROGRESS",
    longest: Math.max(ch.longest, restoredCount),
    repairs: ch.repairs + 1,
    lastBreak: { ...lb, repaired: true },
    lastReset: null,
    runStartKey: ch.runStartKey ?? repairWindowKey,
  };
  next = grant(rules, next, lb.previousStreak, repairWindowKey, at, true);
  return completeIfDue(rules, next);
}

export function grantFreezeCount(rules: StreakRules, ch: ChainState, n: number): ChainState {
  return { ...ch, freezesHeld: Math.min(freezeCap(rules), ch.freezesHeld + Math.max(0, Math.floor(n))) };
}

/** The highest tier whose minimum the count reaches; 1 when none does. */
export function multiplierFor(rules: StreakRules, count: number): number {
  let best = 1;
  let bestMin = -1;
  for (const t of rules.multiplierTiers ?? []) {
    if (count >= t.minCount && t.minCount > bestMin) {
      best = t.multiplier;
      bestMin = t.minCount;
    }
  }
  return best;
}
