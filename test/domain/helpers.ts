import { it } from "vitest";
import { DateTime } from "luxon";
import { applyActivity, advance, initialState } from "../../src/domain/index.ts";
import type { ActivityInput, MemberStreakState, StreakEffect, StreakRules, ApplyOutcome, PauseInterval } from "../../src/domain/index.ts";

/** Table-driven case: the name states the expectation. */
export const t = (name: string, fn: () => void | Promise<void>) => it(name, fn);

/** Epoch ms of a local wall time in `zone` (ISO without offset) or of an ISO instant with offset/Z. */
export function ms(iso: string, zone = "UTC"): number {
  const dt = DateTime.fromISO(iso, { zone });
  if (!dt.isValid) throw new Error(`bad time ${iso}`);
  return dt.toMillis();
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export interface Step {
  /** Event time. */
  readonly at: number;
  /** Arrival time; defaults to the event time. */
  readonly arrive?: number;
  readonly value?: number;
  readonly key?: string;
  readonly id?: string;
}

export interface Run {
  readonly state: MemberStreakState;
  readonly outcomes: ApplyOutcome[];
  readonly effects: StreakEffect[];
}

let seq = 0;

/** Applies steps in the given order at their arrival times, then advances to `until` when given. */
export function play(
  rules: StreakRules,
  steps: readonly Step[],
  until?: number,
  pausedIntervals?: readonly PauseInterval[],
  from: MemberStreakState = initialState(rules),
): Run {
  let state = from;
  const outcomes: ApplyOutcome[] = [];
  const effects: StreakEffect[] = [];
  for (const s of steps) {
    const activity: ActivityInput = { id: s.id ?? `a${++seq}`, occurredAt: s.at, value: s.value ?? 1, distinctKey: s.key ?? null };
    const r = applyActivity(rules, state, activity, { now: s.arrive ?? s.at, pausedIntervals });
    state = r.state;
    outcomes.push(r.outcome);
    effects.push(...r.effects);
  }
  if (until !== undefined) {
    const r = advance(rules, state, until, { pausedIntervals });
    state = r.state;
    effects.push(...r.effects);
  }
  return { state, outcomes, effects };
}

export function daily(zone = "UTC", extra: Partial<StreakRules> = {}, resetTime = "00:00"): StreakRules {
  return {
    window: { type: "CALENDAR", period: "DAILY", timezone: zone, resetTime, weekStart: 1 },
    condition: { type: "COUNT", min: 1 },
    ...extra,
  };
}

export function types(effects: readonly StreakEffect[]): string[] {
  return effects.map((e) => e.type);
}
