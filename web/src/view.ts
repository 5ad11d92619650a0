// What the widget shows, computed from one progress read: pure functions of the message and the element's
// options, no DOM, so they are unit-tested on Node (test/unit/widget-view.test.ts) and the element only draws.
import { MemberStreakState, type MemberStreakProgress } from "../../src/gen/kindling/v1/member_streak_pb.js";
import { CalendarPeriod, ConditionType, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";

export type StreakStatus = "not-started" | "in-progress" | "at-risk" | "broken" | "completed";

export interface ViewOptions {
  /** BCP 47 language for numbers and currency; the server renders the message itself. */
  readonly lang: string;
  /** ISO 4217 code: SUM conditions are shown as money with that currency's decimals. */
  readonly currency?: string;
}

export interface WindowView {
  /** "2 of 3 visits", "$20.50 of $50.00", "1 of 2 different". */
  readonly text: string;
  readonly value: number;
  readonly target: number;
  readonly satisfied: boolean;
}

export interface RewardView {
  readonly rewardId: string;
  readonly threshold: number;
  readonly label: string;
}

export interface BadgeView {
  readonly name: string;
  readonly threshold: number;
  readonly imageUrl: string;
  readonly earned: boolean;
}

export interface StreakView {
  readonly title: string;
  readonly status: StreakStatus;
  readonly statusLabel: string;
  readonly count: number;
  /** What the count counts: "days", "week", "periods". */
  readonly unit: string;
  readonly longest: number;
  readonly message: string;
  readonly window: WindowView | undefined;
  /** Seconds from the read until the window closes, when a countdown applies. */
  readonly secondsToClose: number | undefined;
  /** The next milestone with its display name ("Two in a row", else "5-day streak") and the periods still needed. */
  readonly nextMilestone: { readonly threshold: number; readonly name: string; readonly periodsToGo: number } | undefined;
  readonly badges: readonly BadgeView[];
  readonly freezes: number;
  readonly rewards: readonly RewardView[];
}

/**
 * The member's situation. "At risk" is the widget's reading of PRODUCT.md §3: a running streak whose current
 * window is not yet satisfied breaks when that window closes, so it is at risk whether or not the definition's
 * at-risk lead (which drives reminders, and the server's at_risk flag) has been reached.
 */
export function statusOf(p: Pick<MemberStreakProgress, "state" | "atRisk" | "currentCount" | "currentWindowSatisfied">): StreakStatus {
  switch (p.state) {
    case MemberStreakState.BROKEN:
      return "broken";
    case MemberStreakState.COMPLETED:
      return "completed";
    case MemberStreakState.IN_PROGRESS:
      return p.atRisk || (p.currentCount > 0 && !p.currentWindowSatisfied) ? "at-risk" : "in-progress";
    case MemberStreakState.NOT_STARTED:
    default:
      return "not-started";
  }
}

const FALLBACK_LABELS: Record<StreakStatus, string> = {
  "not-started": "Not started",
  "in-progress": "In progress",
  "at-risk": "At risk",
  broken: "Broken",
  completed: "Completed",
};

function statusLabel(p: MemberStreakProgress, status: StreakStatus): string {
  const d = p.display;
  const fromServer =
    status === "broken" ? d?.brokenLabel : status === "completed" ? d?.completedLabel : status === "not-started" ? d?.notStartedLabel : status === "in-progress" ? d?.inProgressLabel : undefined;
  return fromServer || FALLBACK_LABELS[status];
}

/** Digits a currency is written with (2 for USD, 0 for JPY, 3 for KWD), from the platform's own table. */
export function currencyDigits(currency: string): number {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

export function formatAmount(value: number, options: ViewOptions): string {
  if (options.currency) {
    try {
      const digits = currencyDigits(options.currency);
      return new Intl.NumberFormat(options.lang, { style: "currency", currency: options.currency, minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
    } catch {
      // An unknown currency code: plain numbers below.
    }
  }
  return new Intl.NumberFormat(safeLang(options.lang), { maximumFractionDigits: 2 }).format(value);
}

function safeLang(lang: string): string {
  try {
    return Intl.NumberFormat.supportedLocalesOf([lang]).length > 0 ? lang : "en";
  } catch {
    return "en";
  }
}

export function windowView(p: MemberStreakProgress, options: ViewOptions): WindowView | undefined {
  const condition = p.condition;
  if (!condition) return undefined;
  const w = p.currentWindowProgress;
  const target = condition.min;
  const satisfied = p.currentWindowSatisfied;
  if (condition.type === ConditionType.SUM) {
    const value = w?.sum ?? 0;
    return { text: `${formatAmount(value, options)} of ${formatAmount(target, options)}`, value, target, satisfied };
  }
  const n = new Intl.NumberFormat(safeLang(options.lang));
  if (condition.type === ConditionType.DISTINCT) {
    const value = w?.distinctKeys.length ?? 0;
    return { text: `${n.format(value)} of ${n.format(target)} different`, value, target, satisfied };
  }
  const value = w?.count ?? 0;
  return { text: `${n.format(value)} of ${n.format(target)} this period`, value, target, satisfied };
}

function rewardLabel(r: MemberStreakProgress["unclaimedMilestones"][number], options: ViewOptions): string {
  switch (r.kind) {
    case RewardKind.POINTS:
      return `${new Intl.NumberFormat(safeLang(options.lang)).format(r.points)} points`;
    case RewardKind.COUPON:
      return r.value ? `Coupon: ${r.value}` : "Coupon";
    case RewardKind.BADGE:
      return r.value ? `Badge: ${r.value}` : "Badge";
    case RewardKind.FREEZE:
      return "Streak freeze";
    default:
      return r.value || "Reward";
  }
}

const PERIOD_NAMES: Partial<Record<CalendarPeriod, string>> = { [CalendarPeriod.DAILY]: "day", [CalendarPeriod.WEEKLY]: "week", [CalendarPeriod.MONTHLY]: "month" };

function periodName(p: Pick<MemberStreakProgress, "window">): string {
  const kind = p.window?.kind;
  return kind?.case === "calendar" ? (PERIOD_NAMES[kind.value.period] ?? "period") : "period";
}

/** "day"/"days" for daily windows and so on; rolling windows count "periods". */
export function countUnit(p: Pick<MemberStreakProgress, "window" | "currentCount">): string {
  const name = periodName(p);
  return p.currentCount === 1 ? name : `${name}s`;
}

/** The view of one progress read. `secondsToClose` is relative to the read; the element ticks it down. */
export function streakView(p: MemberStreakProgress, options: ViewOptions): StreakView {
  const status = statusOf(p);
  const seconds = p.secondsUntilWindowClose;
  const countdown = (status === "at-risk" || status === "in-progress") && seconds !== undefined && seconds > 0n;
  const next = p.nextMilestone;
  return {
    title: p.display?.title || p.definitionName,
    status,
    statusLabel: statusLabel(p, status),
    count: p.currentCount,
    unit: countUnit(p),
    longest: p.longestCount,
    message: p.display?.message ?? "",
    window: status === "broken" || status === "completed" ? undefined : windowView(p, options),
    secondsToClose: countdown ? Number(seconds) : undefined,
    nextMilestone:
      next && p.periodsToNextMilestone !== undefined ? { threshold: next.threshold, name: next.name || `${next.threshold}-${periodName(p)} streak`, periodsToGo: p.periodsToNextMilestone } : undefined,
    badges: p.badges.map((b) => ({ name: b.name, threshold: b.milestoneThreshold, imageUrl: b.imageUrl, earned: b.earned })),
    freezes: p.freezesHeld,
    rewards: p.unclaimedMilestones.map((r) => ({ rewardId: r.rewardId, threshold: r.threshold, label: rewardLabel(r, options) })),
  };
}

/** "2d 03:04:05", "03:04:05", "04:05": the time left, never negative. */
export function formatCountdown(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const days = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const two = (v: number) => String(v).padStart(2, "0");
  const clock = h > 0 || days > 0 ? `${two(h)}:${two(m)}:${two(sec)}` : `${two(m)}:${two(sec)}`;
  return days > 0 ? `${days}d ${clock}` : clock;
}

/** The same time in words, for screen readers: "2 days 3 hours 4 minutes". */
export function describeCountdown(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const parts: string[] = [];
  const push = (v: number, unit: string) => {
    if (v > 0) parts.push(`${v} ${unit}${v === 1 ? "" : "s"}`);
  };
  push(Math.floor(s / 86_400), "day");
  push(Math.floor((s % 86_400) / 3600), "hour");
  push(Math.floor((s % 3600) / 60), "minute");
  if (s < 3600) push(s % 60, "second");
  return parts.length > 0 ? parts.join(" ") : "0 seconds";
}

/** Typed refusals of ClaimReward (reward_service.proto), as the member reads them. */
export function claimRefusalText(reason: string | undefined, message: string): string {
  switch (reason) {
    case "ALREADY_CLAIMED":
      return "Already claimed.";
    case "REWARD_EXPIRED":
      return "This reward has expired.";
    case "STREAK_TOO_SHORT":
      return "Your streak is not long enough for this reward yet.";
    case "REWARD_NOT_CLAIMABLE":
      return "This reward is given automatically; there is nothing to claim.";
    case "INVALID_MILESTONE":
    case "REWARD_NOT_FOUND":
      return "This reward no longer exists.";
    default:
      return message ? `Could not claim: ${message}` : "Could not claim the reward.";
  }
}
