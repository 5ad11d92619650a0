import type { DisplayConfig } from "./display-templates.ts";
import { DomainError } from "./domain-error.ts";
import { isValidZone, parseResetTime, type CalendarWindowSpec } from "./calendar-window.ts";
import { isKnownDisplayLanguageTag, validateDisplay } from "./display-templates.ts";

/**
 * Rolling windows are measured from the member's own last increment L: the next window opens at
 * L + minSpacing and closes at L + maxGap (Loyalteez: a check-in counts at most once per 24 h and the
 * streak resets when 36 h pass without one).
 */
export interface RollingWindowSpec {
  readonly type: "ROLLING";
  readonly minSpacingSeconds: number;
  readonly maxGapSeconds: number;
}

export type WindowSpec = CalendarWindowSpec | RollingWindowSpec;

export type ConditionType = "COUNT" | "SUM" | "DISTINCT";

export interface Condition {
  readonly type: ConditionType;
  /** Threshold the window's aggregate must reach (count of activities, sum of values, distinct keys). */
  readonly min: number;
}

export type RewardKind = "POINTS" | "COUPON" | "BADGE" | "FREEZE" | "CUSTOM";

export interface MilestoneReward {
  readonly kind: RewardKind;
  /** Points amount, number of freezes, or a tenant-defined amount. */
  readonly value?: number;
  readonly name?: string;
  readonly description?: string;
}

export interface Badge {
  readonly name: string;
  readonly imageUrl?: string;
}

export interface Milestone {
  /** Streak count (number of consecutive satisfied windows) that reaches the milestone. */
  readonly threshold: number;
  /** Repeatable milestones recur at every multiple of `threshold` (7, 14, 21 …) within a cycle. */
  readonly repeatable?: boolean;
  readonly reward?: MilestoneReward;
  readonly badge?: Badge;
}

export interface MultiplierTier {
  readonly minCount: number;
  readonly multiplier: number;
}

export interface FreezePolicy {
  /** Most freezes a member can hold for this definition; grants and rewards beyond it are dropped. */
  readonly maxHeld: number;
  /** Freezes a member holds when their streak record is created. */
  readonly initial?: number;
}

export interface StreakRules {
  readonly window: WindowSpec;
  readonly condition: Condition;
  /** After a window closes, late events dated inside it still count and the streak is not yet broken. */
  readonly graceSeconds?: number;
  readonly milestones?: readonly Milestone[];
  readonly multiplierTiers?: readonly MultiplierTier[];
  /** Number of periods that completes the streak (Gamopanda `completionTargetValue`); 0/absent = open-ended. */
  readonly completionTarget?: number;
  readonly freezePolicy?: FreezePolicy;
  /** How long after a break an admin/service call may still repair the streak; 0/absent = never. */
  readonly repairWindowSeconds?: number;
  /** How long before an unsatisfied window closes the member is "at risk" (reminder time). */
  readonly atRiskLeadSeconds?: number;
  readonly display?: DisplayConfig;
}

/** Loyalteez's documented defaults: 3 → 1.25x, 7 → 1.5x, 14 → 1.75x, 30 → 2.0x. */
export const LOYALTEEZ_MULTIPLIER_TIERS: readonly MultiplierTier[] = [
  { minCount: 3, multiplier: 1.25 },
  { minCount: 7, multiplier: 1.5 },
  { minCount: 14, multiplier: 1.75 },
  { minCount: 30, multiplier: 2.0 },
];

/** Loyalteez's documented default milestones: 7 → 100, 30 → 500, 100 → 2000, 365 → 10000 LTZ. */
export const LOYALTEEZ_MILESTONES: readonly Milestone[] = [
  { threshold: 7, reward: { kind: "POINTS", value: 100 } },
  { threshold: 30, reward: { kind: "POINTS", value: 500 } },
  { threshold: 100, reward: { kind: "POINTS", value: 2000 } },
  { threshold: 365, reward: { kind: "POINTS", value: 10000 } },
];

/**
 * Loyalteez's daily check-in, exactly: the first check-in starts a 1-day streak, a second one within 24 h is
 * "already checked in" (no increment), and a check-in more than 36 h after the last counted one restarts at 1.
 */
export const LOYALTEEZ_DAILY_RULES: StreakRules = {
  window: { type: "ROLLING", minSpacingSeconds: 24 * 3600, maxGapSeconds: 36 * 3600 },
  condition: { type: "COUNT", min: 1 },
  graceSeconds: 0,
  milestones: LOYALTEEZ_MILESTONES,
  multiplierTiers: LOYALTEEZ_MULTIPLIER_TIERS,
};

const MAX_SECONDS = 10 * 366 * 24 * 3600;

function isNonNegativeInt(n: unknown, max = MAX_SECONDS): n is number {
  return typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= max;
}

/** Every rule violation, in field order; empty when the rules are usable. */
export function validateRules(rules: StreakRules): DomainError[] {
  const errors: DomainError[] = [];
  const fail = (reason: DomainError["reason"], field: string, message: string) =>
    errors.push(new DomainError(reason, field, message));

  const w = rules.window;
  if (w.type === "CALENDAR") {
    if (w.period !== "DAILY" && w.period !== "WEEKLY" && w.period !== "MONTHLY") {
      fail("INVALID_PERIOD", "window.period", `period must be DAILY, WEEKLY or MONTHLY, got ${String(w.period)}`);
    }
    if (!isValidZone(w.timezone)) {
      fail("INVALID_TIMEZONE", "window.timezone", `unknown IANA time zone ${JSON.stringify(w.timezone)}`);
    }
    if (parseResetTime(w.resetTime) === null) {
      fail("INVALID_RESET_TIME", "window.resetTime", `reset time must be HH:MM (00:00-23:59), got ${JSON.stringify(w.resetTime)}`);
    }
    if (!Number.isInteger(w.weekStart) || w.weekStart < 1 || w.weekStart > 7) {
      fail("INVALID_WEEK_START", "window.weekStart", `week start must be 1 (Monday) to 7 (Sunday), got ${String(w.weekStart)}`);
    }
  } else if (w.type === "ROLLING") {
    if (!isNonNegativeInt(w.minSpacingSeconds) || !isNonNegativeInt(w.maxGapSeconds) || w.minSpacingSeconds < 1 || w.maxGapSeconds <= w.minSpacingSeconds) {
      fail("INVALID_ROLLING_WINDOW", "window", "rolling windows need whole seconds with 0 < minSpacingSeconds < maxGapSeconds");
    }
  } else {
    fail("INVALID_PERIOD", "window.type", "window type must be CALENDAR or ROLLING");
  }

  const c = rules.condition;
  if ((c.type !== "COUNT" && c.type !== "SUM" && c.type !== "DISTINCT") || !(typeof c.min === "number" && Number.isFinite(c.min) && c.min > 0)) {
    fail("INVALID_CONDITION", "condition", "condition type must be COUNT, SUM or DISTINCT with min > 0");
  } else if (c.type !== "SUM" && !Number.isInteger(c.min)) {
    fail("INVALID_CONDITION", "condition.min", "COUNT and DISTINCT minimums are whole numbers");
  }

  if (rules.graceSeconds !== undefined && !isNonNegativeInt(rules.graceSeconds)) {
    fail("INVALID_GRACE", "graceSeconds", "grace must be a whole number of seconds >= 0");
  }

  const seen = new Set<number>();
  (rules.milestones ?? []).forEach((m, i) => {
    if (!Number.isInteger(m.threshold) || m.threshold < 1) {
      fail("INVALID_MILESTONE", `milestones[${i}].threshold`, "milestone thresholds are whole numbers >= 1");
    } else if (seen.has(m.threshold)) {
      fail("INVALID_MILESTONE", `milestones[${i}].threshold`, `duplicate milestone threshold ${m.threshold}`);
    }
    seen.add(m.threshold);
    if (m.reward?.kind === "FREEZE" && !(Number.isInteger(m.reward.value ?? 1) && (m.reward.value ?? 1) >= 1)) {
      fail("INVALID_MILESTONE", `milestones[${i}].reward.value`, "a FREEZE reward grants a whole number of freezes >= 1");
    }
  });

  (rules.multiplierTiers ?? []).forEach((t, i) => {
    if (!Number.isInteger(t.minCount) || t.minCount < 0 || !Number.isFinite(t.multiplier) || t.multiplier <= 0) {
      fail("INVALID_MULTIPLIER_TIER", `multiplierTiers[${i}]`, "tiers need a whole minCount >= 0 and a multiplier > 0");
    }
  });

  if (rules.completionTarget !== undefined && !isNonNegativeInt(rules.completionTarget, 100_000)) {
    fail("INVALID_COMPLETION_TARGET", "completionTarget", "completion target is a whole number of periods >= 0");
  }
  const fp = rules.freezePolicy;
  if (fp !== undefined && (!isNonNegativeInt(fp.maxHeld, 1000) || !isNonNegativeInt(fp.initial ?? 0, fp.maxHeld))) {
    fail("INVALID_FREEZE_POLICY", "freezePolicy", "freeze policy needs whole numbers with 0 <= initial <= maxHeld <= 1000");
  }
  if (rules.repairWindowSeconds !== undefined && !isNonNegativeInt(rules.repairWindowSeconds)) {
    fail("INVALID_REPAIR_WINDOW", "repairWindowSeconds", "repair window must be a whole number of seconds >= 0");
  }
  if (rules.atRiskLeadSeconds !== undefined && !isNonNegativeInt(rules.atRiskLeadSeconds)) {
    fail("INVALID_AT_RISK_LEAD", "atRiskLeadSeconds", "at-risk lead must be a whole number of seconds >= 0");
  }
  if (rules.display !== undefined) {
    for (const problem of validateDisplay(rules.display)) fail("INVALID_DISPLAY", problem.field, problem.message);
    const lang = rules.display.defaultLanguage;
    if (lang !== undefined && !isKnownDisplayLanguageTag(lang)) {
      fail("INVALID_DISPLAY", "display.defaultLanguage", `not a language tag: ${JSON.stringify(lang)}`);
    }
  }
  return errors;
}

/** Throws the first violation; for callers (tests, seeds) that hold rules they know are valid. */
export function assertValidRules(rules: StreakRules): void {
  const [first] = validateRules(rules);
  if (first !== undefined) throw first;
}
