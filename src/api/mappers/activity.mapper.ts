// Activities and per-definition outcomes -> kindling.v1 messages.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ActivitySchema, NotAppliedReason, StreakResultSchema, type Activity, type StreakResult } from "../../gen/kindling/v1/activity_pb.js";
import type { ActivityRecord, NotAppliedReason as Reason, StreakOutcome } from "../../engine/activity-ingestor.ts";
import type { RewardFactsByDefinition } from "../../engine/progress-reader.ts";
import { progressMessage } from "./progress.mapper.ts";
import { rewardMessage } from "./reward.mapper.ts";
import { milestoneMessage } from "../../engine/reward-plan.ts";
import type { Milestone } from "../../gen/kindling/v1/definition_pb.js";

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

/** Loyalteez's human-readable `message`. */
function humanMessage(s: StreakOutcome, current: number): string {
  const noun = periodNoun(s);
  if (s.notAppliedReason === "DUPLICATE") return "Already recorded.";
  if (!s.applied) return "Activity recorded but not counted.";
  if (s.outcome?.kind === "APPLIED" && !s.outcome.isNewActivity) return `Already checked in this ${noun.toLowerCase()}! ${noun} ${current} streak.`;
  if (s.outcome?.kind === "APPLIED" && s.outcome.wasReset) return `Streak restarted: ${noun} ${current} streak!`;
  return `${noun} ${current} streak!`;
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
    message: humanMessage(s, progress.currentCount),
    definition: includeDefinition ? definitionMessage() : undefined,
  });
}
