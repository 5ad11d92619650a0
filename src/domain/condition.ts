import type { Condition } from "./rules.ts";

/** An accepted activity as the engine keeps it while its window can still change. */
export interface ActivityEntry {
  readonly id: string;
  readonly at: number;
  readonly value: number;
  readonly key: string | null;
}

/** A window's aggregate (Phoenix `current_window_progress`) and whether it meets the condition. */
export interface WindowProgress {
  readonly count: number;
  readonly sum: number;
  /** Distinct keys in order of first occurrence. */
  readonly distinct: readonly string[];
  readonly satisfied: boolean;
  /** Event time at which the aggregate first reached `min`, in event-time order; null while unsatisfied. */
  readonly satisfiedAt: number | null;
  /** Id of the activity whose event time is `satisfiedAt`. */
  readonly satisfiedBy: string | null;
}

export const EMPTY_PROGRESS: WindowProgress = {
  count: 0,
  sum: 0,
  distinct: [],
  satisfied: false,
  satisfiedAt: null,
  satisfiedBy: null,
};

/** Total order on activities: event time, then id, so every fold sees the same sequence. */
export function compareEntries(a: ActivityEntry, b: ActivityEntry): number {
  return a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export function aggregateValue(condition: Condition, p: Pick<WindowProgress, "count" | "sum" | "distinct">): number {
  switch (condition.type) {
    case "COUNT":
      return p.count;
    case "SUM":
      return p.sum;
    case "DISTINCT":
      return p.distinct.length;
  }
}

/**
 * Aggregates `entries` (already in event-time order) against the condition. Values are summed in event-time
 * order so the floating-point result never depends on arrival order.
 */
export function evaluateCondition(condition: Condition, entries: readonly ActivityEntry[]): WindowProgress {
  let count = 0;
  let sum = 0;
  const distinct: string[] = [];
  const seen = new Set<string>();
  let satisfiedAt: number | null = null;
  let satisfiedBy: string | null = null;
  for (const e of entries) {
    count += 1;
    sum += e.value;
    if (e.key !== null && !seen.has(e.key)) {
      seen.add(e.key);
      distinct.push(e.key);
    }
    if (satisfiedAt === null && aggregateValue(condition, { count, sum, distinct }) >= condition.min) {
      satisfiedAt = e.at;
      satisfiedBy = e.id;
    }
  }
  return { count, sum, distinct, satisfied: satisfiedAt !== null, satisfiedAt, satisfiedBy };
}

/** How much more the window needs (Gamopanda `nextRemainingValue`); 0 once satisfied. */
export function remainingValue(condition: Condition, p: Pick<WindowProgress, "count" | "sum" | "distinct">): number {
  return Math.max(0, condition.min - aggregateValue(condition, p));
}
