// Activities and per-definition outcomes -> kindling.v1 messages.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ActivitySchema, NotAppliedReason, StreakResultSchema, type Activity, type StreakResult } from "../../gen/kindling/v1/activity_pb.js";
import type { ActivityRecord } from "../../db/entities/index.ts";
import type { NotAppliedReason as Reason, StreakOutcome } from "../../engine/ingest/activity-ingestor.ts";
import type { RewardFactsByDefinition } from "../../engine/reads/progress-reader.ts";
import { progressMessage } from "./progress.mapper.ts";
import { rewardMessage } from "../../engine/rewards/reward-messages.ts";
import { milestoneMessage } from "../../engine/rewards/reward-plan.ts";
import type { Milestone } from "../../gen/kindling/v1/definition_pb.js";
import type { MemberStreakProgress } from "../../gen/kindling/v1/member_streak_pb.js";
import { formatValue } from "../../domain/display-templates.ts";

export function activityMessage(a: ActivityRecord): Activity {
  return create(ActivitySchema, {
    id: a.id,
    memberExternalId: a.memberExternalId,
    definitionId: a.definitionId ?? "",
    eventType: a.eventType ?? "",
    appliedDefinitionIds: [...a.appliedDefinitionIds],
    occurTime: timestampFromMs(a.occurredAt),
    createTime: timestampFromMs(a.recordedAt),
    ...(a.value === null ? {} : { value: a.value }),
    distinctKey: a.distinctKey ?? "",
    uniqueIdentifier: a.uniqueIdentifier,
    metadata: a.metadata,
    platform: a.platform ?? "",
    imported: a.imported,
  });
}

/** The API's name for each engine reason; total, and never UNSPECIFIED (which means "applied"). */
export const NOT_APPLIED_REASON_TO_PROTO: Readonly<Record<Reason, NotAppliedReason>> = {
  DUPLICATE: NotAppliedReason.DUPLICATE,
  TOO_LATE: NotAppliedReason.TOO_LATE,
  DEFINITION_PAUSED: NotAppliedReason.DEFINITION_PAUSED,
  BEFORE_START: NotAppliedReason.BEFORE_START,
  AFTER_END: NotAppliedReason.AFTER_END,
  MISSING_VALUE: NotAppliedReason.MISSING_VALUE,
  MISSING_DISTINCT_KEY: NotAppliedReason.MISSING_DISTINCT_KEY,
  IN_FUTURE: NotAppliedReason.IN_FUTURE,
  INVALID_VALUE: NotAppliedReason.INVALID_VALUE,
};

const periodNoun = (s: StreakOutcome) => {
  const w = s.definition.rules.window;
  return w.type === "ROLLING" ? "Day" : w.period === "DAILY" ? "Day" : w.period === "WEEKLY" ? "Week" : "Month";
};

const NOT_COUNTED: Readonly<Record<Exclude<Reason, "DUPLICATE">, (noun: string) => string>> = {
  TOO_LATE: (noun) => `its ${noun} has already closed`,
  IN_FUTURE: () => "it is dated in the future",
  INVALID_VALUE: () => "its value is not a finite number of at least 0",
  DEFINITION_PAUSED: () => "the streak is paused",
  BEFORE_START: () => "the streak had not started yet",
  AFTER_END: () => "the streak has ended",
  MISSING_VALUE: () => "this streak adds up values and the activity has none",
  MISSING_DISTINCT_KEY: () => "this streak counts distinct keys and the activity has none",
};

/** What the window still needs, in the condition's terms: "20.50 more", "1 more activity", "2 more distinct keys". */
function stillNeeded(s: StreakOutcome, remaining: number): string {
  const type = s.definition.rules.condition.type;
  if (type === "SUM") return `${formatValue(remaining, undefined)} more`;
  const n = Math.ceil(remaining);
  return type === "DISTINCT" ? `${n} more distinct ${n === 1 ? "key" : "keys"}` : `${n} more ${n === 1 ? "activity" : "activities"}`;
}

/**
 * Loyalteez's human-readable `message`, true to what happened: counted, already checked in (the window was met
 * before, or a rolling check-in inside the minimum spacing), progress toward a window not met yet, or not counted
 * and why.
 */
function humanMessage(s: StreakOutcome, progress: MemberStreakProgress): string {
  const noun = periodNoun(s);
  const unit = noun.toLowerCase();
  const current = progress.currentCount;
  if (s.notAppliedReason === "DUPLICATE") return "Already recorded.";
  if (s.notAppliedReason !== null) return `Recorded but not counted: ${NOT_COUNTED[s.notAppliedReason](unit)}. ${noun} ${current} streak.`;
  const outcome = s.outcome?.kind === "APPLIED" ? s.outcome : undefined;
  if (outcome === undefined || outcome.isNewActivity) {
    return outcome?.wasReset ? `Streak restarted: ${noun} ${current} streak!` : `${noun} ${current} streak!`;
  }
  if (outcome.windowKey === null) return `Already checked in this ${unit}! ${noun} ${current} streak.`;
  if (outcome.windowKey !== progress.currentWindowKey) return `Recorded for the ${unit} of ${outcome.windowKey}. ${noun} ${current} streak.`;
  if (!progress.currentWindowSatisfied) {
    return `Progress recorded: ${stillNeeded(s, progress.nextRemainingValue)} needed to complete this ${unit}. ${noun} ${current} streak.`;
  }
  return `Already checked in this ${unit}! ${noun} ${current} streak.`;
}

export function streakResultMessage(
  s: StreakOutcome,
  memberExternalId: string,
  rewards: RewardFactsByDefinition,
  now: number,
  language: string | undefined,
  includeDefinition: boolean,
  definitionMessage: () => StreakResult["definition"],
): StreakResult {
  const progress = progressMessage(s.definition, memberExternalId, { id: s.memberStreakId, state: s.state, createdAt: now, updatedAt: now }, rewards, now, language);
  const achieved = s.effects
    .filter((e) => e.type === "streak.milestone_reached")
    .map((e) => milestoneMessage(s.definition, e.threshold))
    .filter((m): m is Milestone => m !== undefined);
  const outcome = s.outcome?.kind === "APPLIED" ? s.outcome : undefined;
  return create(StreakResultSchema, {
    definitionId: s.definition.id,
    applied: s.applied,
    notAppliedReason: s.notAppliedReason ? NOT_APPLIED_REASON_TO_PROTO[s.notAppliedReason] : NotAppliedReason.UNSPECIFIED,
    streak: progress,
    achievedMilestones: achieved,
    nextMilestone: progress.nextMilestone,
    rewards: s.rewards.map((r) => rewardMessage({ ...r, memberExternalId, couponCode: null, expiryAt: null, claimedAt: null, failureReason: null, attempts: 0, updatedAt: r.createdAt }, s.definition)),
    isNewActivity: outcome?.isNewActivity ?? false,
    wasReset: outcome?.wasReset ?? false,
    previousStreak: outcome?.previousStreak ?? 0,
    currentStreak: progress.currentCount,
    multiplier: progress.multiplier,
    unclaimedMilestones: progress.unclaimedMilestones,
    message: humanMessage(s, progress),
    definition: includeDefinition ? definitionMessage() : undefined,
  });
}
