// The domain's ProgressView plus reward facts -> kindling.v1.MemberStreakProgress (the superset of the
// Gameball, Phoenix, Gamopanda and Loyalteez progress payloads).
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  DisplayMessageKind,
  MemberStreakProgressSchema,
  MemberStreakState,
  RenderedDisplaySchema,
  UnclaimedMilestoneSchema,
  type MemberStreakProgress,
  type RenderedDisplay as DisplayMessage,
} from "../../gen/kindling/v1/member_streak_pb.js";
import { DefinitionState, RewardKind } from "../../gen/kindling/v1/definition_pb.js";
import { progressView, type ProgressView } from "../../domain/progress-view.ts";
import type { MemberStreakState as DomainState } from "../../domain/streak-machine.ts";
import type { StreakStatus } from "../../domain/streak-status.ts";
import { resolveText, type MessageKey, type RenderedDisplay } from "../../domain/display-templates.ts";
import type { CatalogDefinition } from "../../engine/definitions/definition-catalog.ts";

export interface RewardFacts {
  readonly unclaimed: readonly { id: string; threshold: number; kind: string; points: number; value: string; claimDeadlineAt: number | null }[];
  readonly total: number;
}

export interface StoredMemberStreak {
  readonly id: string;
  readonly state: DomainState;
  readonly createdAt: number;
  readonly updatedAt: number;
}

const statusToProto: Record<StreakStatus, MemberStreakState> = {
  NOT_STARTED: MemberStreakState.NOT_STARTED,
  IN_PROGRESS: MemberStreakState.IN_PROGRESS,
  COMPLETED: MemberStreakState.COMPLETED,
  BROKEN: MemberStreakState.BROKEN,
};

const definitionStateToProto = { DRAFT: DefinitionState.DRAFT, LIVE: DefinitionState.LIVE, PAUSED: DefinitionState.PAUSED, ARCHIVED: DefinitionState.ARCHIVED } as const;

const messageKinds: Record<MessageKey, DisplayMessageKind> = {
  nonMilestoneNextToBeAchievedMessage: DisplayMessageKind.NON_MILESTONE_NEXT_TO_BE_ACHIEVED,
  nonMilestoneAchievedMessage: DisplayMessageKind.NON_MILESTONE_ACHIEVED,
  completedStreakMessage: DisplayMessageKind.COMPLETED_STREAK,
  brokenStreakMessage: DisplayMessageKind.BROKEN_STREAK,
  milestoneNextToBeAchievedMessage: DisplayMessageKind.MILESTONE_NEXT_TO_BE_ACHIEVED,
  milestoneAchievedMessage: DisplayMessageKind.MILESTONE_ACHIEVED,
};

const MESSAGE_KINDS_IN_ORDER = (Object.entries(messageKinds) as [MessageKey, DisplayMessageKind][]).sort((a, b) => a[1] - b[1]);

const rewardKinds: Record<string, RewardKind> = {
  POINTS: RewardKind.POINTS, COUPON: RewardKind.COUPON, BADGE: RewardKind.BADGE, FREEZE: RewardKind.FREEZE, CUSTOM: RewardKind.CUSTOM,
};

const ts = (ms: number | null | undefined) => (ms === null || ms === undefined ? undefined : timestampFromMs(ms));

/**
 * The display part of a progress answer. It depends only on the definition's display settings, the language and
 * the rendered display — which renderDisplay returns as one shared object per distinct input — so it is built once
 * per rendered display and shared by every answer that has it (messages are never changed after they are built).
 */
const displayMessages = new WeakMap<RenderedDisplay, DisplayMessage>();

function displayMessage(def: CatalogDefinition, d: RenderedDisplay, language: string | undefined): DisplayMessage {
  const cached = displayMessages.get(d);
  if (cached !== undefined) return cached;
  const display = create(RenderedDisplaySchema, {
    language: d.language,
    title: d.title ?? "",
    description: d.description ?? "",
    iconUrl: d.icon ?? "",
    statusLabel: d.statusLabel,
    // The four status labels themselves, in the requested language with the same fallback as the rest.
    inProgressLabel: resolveText(def.rules.display, language, "inProgressLabel").text ?? "",
    completedLabel: resolveText(def.rules.display, language, "completedLabel").text ?? "",
    notStartedLabel: resolveText(def.rules.display, language, "notStartedLabel").text ?? "",
    brokenLabel: resolveText(def.rules.display, language, "brokenLabel").text ?? "",
    viewDetailsButtonText: d.viewDetailsButtonText,
    messageKind: messageKinds[d.messageKey],
    message: d.message,
    // Every template rendered, in DisplayMessageKind order, for clients that pick the message themselves.
    messages: MESSAGE_KINDS_IN_ORDER.map(([key, kind]) => ({ kind, text: d.messages[key] })),
  });
  displayMessages.set(d, display);
  return display;
}

/** The stored state brought up to `now` (reads are correct even if no sweep has run) and its view. */
export function viewOf(def: CatalogDefinition, stored: StoredMemberStreak, now: number, language: string | undefined): { state: DomainState; view: ProgressView } {
  const view = progressView(def.rules, stored.state, now, { pausedIntervals: def.pauses, ...(language ? { language } : {}) });
  return { state: view.state, view };
}

export function progressMessage(
  def: CatalogDefinition,
  memberExternalId: string,
  stored: StoredMemberStreak,
  rewards: RewardFacts,
  now: number,
  language: string | undefined,
): MemberStreakProgress {
  return progressAnswer(def, memberExternalId, stored, rewards, now, language).message;
}

/** The fields of a progress answer that come from the member's rewards (the rest comes from the state). */
export function rewardFields(rewards: RewardFacts): Pick<MemberStreakProgress, "unclaimedMilestones" | "totalRewardsEarned"> {
  return {
    unclaimedMilestones: rewards.unclaimed.map((r) => create(UnclaimedMilestoneSchema, {
      threshold: r.threshold,
      rewardId: r.id,
      kind: rewardKinds[r.kind] ?? RewardKind.UNSPECIFIED,
      points: r.points,
      value: r.value,
      claimDeadlineTime: ts(r.claimDeadlineAt),
    })),
    totalRewardsEarned: rewards.total,
  };
}

/**
 * A progress answer with how long it holds: until `validUntil` the answer for the same stored state, definition,
 * language and rewards is this one but for `secondsUntilWindowClose`, which counts down to `countdownTo`
 * (ProgressView.validUntil).
 */
export function progressAnswer(
  def: CatalogDefinition,
  memberExternalId: string,
  stored: StoredMemberStreak,
  rewards: RewardFacts,
  now: number,
  language: string | undefined,
): { readonly message: MemberStreakProgress; readonly validUntil: number; readonly countdownTo: number | null } {
  const { state, view } = viewOf(def, stored, now, language);
  const next = view.nextMilestone;
  const nextMessage = next ? def.message.milestones.find((m) => m.threshold === next.threshold) : undefined;
  // Gameball's ongoingReward: the tier being worked towards, or after the last milestone the last one reached.
  const lastReached = view.earnedThresholds.length > 0 ? Math.max(...view.earnedThresholds) : undefined;
  const ongoingMessage = nextMessage ?? (next ? undefined : def.message.milestones.find((m) => m.threshold === lastReached));
  const message = create(MemberStreakProgressSchema, {
    id: stored.id,
    memberExternalId,
    definitionId: def.id,
    definitionName: def.message.name,
    definitionState: definitionStateToProto[def.state],
    state: statusToProto[view.status],
    currentCount: view.current,
    longestCount: view.longest,
    currentWindowKey: view.windowKey ?? "",
    windowStartTime: ts(view.windowStartAt),
    windowCloseTime: ts(view.windowEndAt),
    secondsUntilWindowClose: view.secondsUntilWindowClose === null ? undefined : BigInt(Math.max(0, Math.floor(view.secondsUntilWindowClose))),
    currentWindowProgress: { count: view.windowProgress.count, sum: view.windowProgress.sum, distinctKeys: [...view.windowProgress.distinct] },
    currentWindowSatisfied: view.windowSatisfied,
    checkedInThisWindow: view.checkedInThisWindow,
    atRisk: view.atRisk,
    lastActivityTime: ts(view.lastActivityAt),
    earnedMilestones: [...view.earnedThresholds],
    nextMilestone: nextMessage,
    periodsToNextMilestone: view.periodsToNextMilestone ?? undefined,
    nextRemainingValue: view.remainingValue,
    multiplier: view.multiplier,
    ...rewardFields(rewards),
    // Gameball's "currently active reward tier": the reward of the milestone the member is working towards.
    ongoingReward: ongoingMessage?.reward
      ? {
          name: ongoingMessage.reward.name || ongoingMessage.name,
          kind: ongoingMessage.reward.kind,
          value: ongoingMessage.reward.value || (ongoingMessage.reward.points ? String(ongoingMessage.reward.points) : ""),
          threshold: ongoingMessage.threshold,
        }
      : undefined,
    badges: view.badges.map((b) => ({ milestoneThreshold: b.milestoneDay, name: b.name, imageUrl: b.imageUrl ?? "", earned: b.earned, earnedTime: ts(b.earnedAt) })),
    campaignEndTime: ts(def.endAt),
    freezesHeld: view.freezesHeld,
    display: displayMessage(def, view.display, language),
    window: def.message.window,
    condition: def.message.condition,
    milestones: def.message.milestones,
    completionTarget: def.message.completionTarget,
    completionsCount: view.completions,
    cycle: view.cycle,
    brokenTime: ts(state.lastBreak?.brokenAt ?? null),
    previousCount: state.lastReset?.previousStreak ?? state.lastBreak?.previousStreak ?? 0,
    repairDeadlineTime: ts(view.repairableUntil),
    createTime: ts(stored.createdAt),
    updateTime: ts(stored.updatedAt),
    totalCount: view.totalPeriods,
  });
  return { message, validUntil: view.validUntil, countdownTo: view.countdownTo };
}
