import { windowFor } from "./calendar-window.ts";
import type { CalendarWindowSpec, WindowBounds } from "./calendar-window.ts";
import { evaluateCondition, remainingValue } from "./condition.ts";
import { renderDisplay } from "./display-templates.ts";
import type { PeriodName, RenderedDisplay } from "./display-templates.ts";
import { milestoneKey, multiplierFor } from "./streak-chain.ts";
import type { EarnedMilestone } from "./streak-chain.ts";
import type { StreakStatus } from "./streak-status.ts";
import { advance, deadlines, fold } from "./streak-machine.ts";
import type { Deadlines, EvalOptions, MemberStreakState } from "./streak-machine.ts";
import type { Milestone, MilestoneReward, StreakRules } from "./rules.ts";

export interface NextMilestone {
  readonly threshold: number;
  readonly occurrence: number;
  /** Streak count at which it is reached. */
  readonly count: number;
  readonly reward: MilestoneReward | null;
}

export interface BadgeView {
  /** Streak count at which the badge is awarded (Gameball `milestoneDay`). */
  readonly milestoneDay: number;
  readonly name: string;
  readonly imageUrl: string | null;
  readonly earned: boolean;
  readonly earnedAt: number | null;
}

export interface ProgressOptions extends EvalOptions {
  /** BCP-47 language for labels and messages. */
  readonly language?: string;
}

/** Everything the read API returns about one member streak (a superset of the seeds' progress payloads). */
export interface ProgressView {
  readonly current: number;
  readonly longest: number;
  readonly status: StreakStatus;
  readonly cycle: number;
  readonly completions: number;
  /** Windows ever counted (Loyalteez `totalStreakDays`). */
  readonly totalPeriods: number;
  readonly windowKey: string | null;
  readonly windowStartAt: number | null;
  readonly windowEndAt: number | null;
  readonly windowProgress: { readonly count: number; readonly sum: number; readonly distinct: readonly string[] };
  /** The current window meets the condition (Phoenix `current_window_satisfied`). */
  readonly windowSatisfied: boolean;
  /** Loyalteez `checkedInToday`: the member has already done what this window needs. */
  readonly checkedInThisWindow: boolean;
  /** Until the streak's deadline: the current window's close, or for rolling streaks the latest next check-in. */
  readonly secondsUntilWindowClose: number | null;
  /** Rolling: when the next check-in can count (after the minimum spacing); null otherwise. */
  readonly nextWindowOpensAt: number | null;
  /** A closed window still in grace the current count waits on. */
  readonly pendingWindowKey: string | null;
  readonly atRisk: boolean;
  readonly lastActivityAt: number | null;
  /** Thresholds earned in the current cycle (Phoenix `earned_milestones`). */
  readonly earnedThresholds: readonly number[];
  readonly earnedMilestones: readonly EarnedMilestone[];
  readonly nextMilestone: NextMilestone | null;
  /** Periods still to count before the next milestone (Loyalteez `daysToNextMilestone`). */
  readonly periodsToNextMilestone: number | null;
  /** Amount still needed in the current window (Gamopanda `nextRemainingValue`). */
  readonly remainingValue: number;
  readonly multiplier: number;
  readonly badges: readonly BadgeView[];
  readonly freezesHeld: number;
  /** Until when the last break can still be repaired; null when there is nothing to repair. */
  readonly repairableUntil: number | null;
  readonly deadlines: Deadlines;
  readonly display: RenderedDisplay;
  /** The stored state advanced to `now` (what this view was computed from). */
  readonly state: MemberStreakState;
  /**
   * Until when this view holds: for every instant `t` in [now, validUntil), the view of the same stored state at `t`
   * is this one but for `secondsUntilWindowClose` (which counts down to `countdownTo`) and `state.evaluatedAt`.
   * `now` itself when no such promise is made (rolling windows): the view must be computed again at every instant.
   */
  readonly validUntil: number;
  /** The instant `secondsUntilWindowClose` counts down to (`secondsUntil(countdownTo, t)`); null when it is null. */
  readonly countdownTo: number | null;
}

/** Whole seconds from `now` until `endMs`, rounded up, never negative: the countdown of a view. */
export function secondsUntil(endMs: number, now: number): number {
  return Math.max(0, Math.ceil((endMs - now) / 1000));
}

/**
 * The first instant after `now` at which the view of a calendar streak can change other than by its countdown.
 * Everything the view reads from `now` is a comparison with a window boundary `E` of the streak's zone (`now < E`,
 * `now >= E + grace`: windows opening and closing, closes plus grace settling), with the at-risk instant (a
 * boundary minus the lead), or the window containing `now`. Every boundary after `now` is at or after the end of
 * the window containing `now`; every boundary `E` with `E + grace` after `now` is at or after the end of the
 * window containing `now - grace`. So nothing changes before the earliest of those two instants plus grace and
 * the at-risk instant (when it is still ahead).
 */
function calendarHorizon(spec: CalendarWindowSpec, zone: string, current: WindowBounds, graceMs: number, atRiskAt: number | null, now: number): number {
  let until = current.endMs;
  if (graceMs > 0) until = Math.min(until, windowFor(spec, now - graceMs, zone).endMs + graceMs);
  if (atRiskAt !== null && atRiskAt > now) until = Math.min(until, atRiskAt);
  return until;
}

export function nextMilestoneFor(rules: StreakRules, state: Pick<MemberStreakState, "status" | "current" | "cycle" | "earned">): NextMilestone | null {
  const completed = state.status === "COMPLETED";
  const cycle = completed ? state.cycle + 1 : state.cycle;
  const from = completed ? 0 : state.current;
  const have = new Set(state.earned.map(milestoneKey));
  let best: NextMilestone | null = null;
  const consider = (m: Milestone, occurrence: number) => {
    const count = m.threshold * occurrence;
    if (best === null || count < best.count || (count === best.count && m.threshold < best.threshold)) {
      best = { threshold: m.threshold, occurrence, count, reward: m.reward ?? null };
    }
  };
  for (const m of rules.milestones ?? []) {
    if (m.repeatable === true) {
      let k = Math.floor(from / m.threshold) + 1;
      while (have.has(milestoneKey({ cycle, threshold: m.threshold, occurrence: k }))) k++;
      consider(m, k);
    } else if (m.threshold > from && !have.has(milestoneKey({ cycle, threshold: m.threshold, occurrence: 1 }))) {
      consider(m, 1);
    }
  }
  return best;
}

function periodName(rules: StreakRules): PeriodName {
  return rules.window.type === "ROLLING" ? "ROLLING" : rules.window.period;
}

/**
 * The member streak as of `now`, evaluated lazily: windows that closed (plus grace) are finalised on the fly, so a
 * read is correct even if no timer ever fired. Pure; the stored state is not changed.
 */
export function progressView(rules: StreakRules, stored: MemberStreakState, now: number, opts: ProgressOptions = {}): ProgressView {
  const state = advance(rules, stored, now, opts).state;
  const r = fold(rules, state.zone, state.base, state.tail, now, opts);
  const spec = rules.window;
  let window: WindowBounds | null;
  let secondsUntilClose: number | null;
  let nextOpensAt: number | null = null;
  let pendingKey: string | null = null;
  if (spec.type === "CALENDAR") {
    window = windowFor(spec, now, state.zone ?? spec.timezone);
    secondsUntilClose = secondsUntil(window.endMs, now);
    if (r.frontier.alive && r.frontier.window !== null && r.frontier.window.endMs <= now) pendingKey = r.frontier.window.key;
  } else {
    const f = r.frontier.window;
    const inCooldown = f !== null && f.startMs > now && state.lastCredited !== null;
    window = inCooldown || f === null ? (state.lastCredited === null ? null : { ...state.lastCredited }) : f;
    nextOpensAt = inCooldown && f !== null ? f.startMs : null;
    secondsUntilClose =
      r.frontier.alive && f !== null && f.endMs < Number.MAX_SAFE_INTEGER ? secondsUntil(f.endMs, now) : null;
  }
  const inWindow =
    window === null ? [] : state.tail.filter((e) => e.at >= (window).startMs && e.at < (window).endMs);
  const progress = evaluateCondition(rules.condition, inWindow);
  const counted = window !== null && state.lastCredited?.key === window.key;
  const satisfied = progress.satisfied || counted;
  const next = nextMilestoneFor(rules, state);
  const base = state.status === "COMPLETED" ? 0 : state.current;
  const d = deadlines(rules, state, opts);
  const atRisk =
    d.breakAt !== null && r.frontier.alive && !satisfied && now < d.breakAt && now >= (d.atRiskAt ?? d.windowCloseAt ?? d.breakAt);
  const badges: BadgeView[] = (rules.milestones ?? [])
    .filter((m) => m.badge !== undefined)
    .sort((a, b) => a.threshold - b.threshold)
    .map((m) => {
      const first = state.earned.filter((e) => e.threshold === m.threshold).sort((a, b) => a.earnedAt - b.earnedAt)[0];
      return {
        milestoneDay: m.threshold,
        name: m.badge?.name ?? "",
        imageUrl: m.badge?.imageUrl ?? null,
        earned: first !== undefined,
        earnedAt: first?.earnedAt ?? null,
      };
    });
  const lb = state.lastBreak;
  const repairSec = rules.repairWindowSeconds ?? 0;
  const remaining = satisfied ? 0 : remainingValue(rules.condition, progress);
  const display = renderDisplay(
    rules.display,
    opts.language,
    {
      period: periodName(rules),
      currentProgressValue: state.current,
      nextProgressValue: state.current + 1,
      nextRemainingValue: satisfied ? rules.condition.min : remaining,
      nextRemainingPeriod: next === null ? null : next.count - base,
    },
    {
      status: state.status,
      windowSatisfied: satisfied,
      milestoneJustReached:
        counted && state.earned.some((e) => e.cycle === state.cycle && e.count === state.current && e.windowKey === window?.key),
      nextPeriodIsMilestone: next !== null && next.count === base + 1,
    },
  );
  return {
    current: state.current,
    longest: state.longest,
    status: state.status,
    cycle: state.cycle,
    completions: state.completions,
    totalPeriods: state.increments,
    windowKey: window?.key ?? null,
    windowStartAt: window?.startMs ?? null,
    windowEndAt: window === null || window.endMs >= Number.MAX_SAFE_INTEGER ? null : window.endMs,
    windowProgress: { count: progress.count, sum: progress.sum, distinct: progress.distinct },
    windowSatisfied: satisfied,
    checkedInThisWindow: satisfied,
    secondsUntilWindowClose: secondsUntilClose,
    nextWindowOpensAt: nextOpensAt,
    pendingWindowKey: pendingKey,
    atRisk,
    lastActivityAt: state.lastActivityAt,
    earnedThresholds: [...new Set(state.earned.filter((e) => e.cycle === state.cycle).map((e) => e.threshold))],
    earnedMilestones: state.earned,
    nextMilestone: next,
    periodsToNextMilestone: next === null ? null : next.count - base,
    remainingValue: remaining,
    multiplier: multiplierFor(rules, state.current),
    badges,
    freezesHeld: state.freezesHeld,
    repairableUntil: lb !== null && !lb.repaired && repairSec > 0 && state.status !== "COMPLETED" ? lb.brokenAt + repairSec * 1000 : null,
    deadlines: d,
    display,
    state,
    validUntil: spec.type === "CALENDAR" && window !== null ? calendarHorizon(spec, state.zone ?? spec.timezone, window, (rules.graceSeconds ?? 0) * 1000, d.atRiskAt, now) : now,
    countdownTo: spec.type === "CALENDAR" ? (window?.endMs ?? null) : null,
  };
}
