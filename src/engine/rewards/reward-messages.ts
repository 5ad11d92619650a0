// Reward rows (and rewards just planned by the ingestor) -> kindling.v1.Reward. In the engine because event messages
// (delivery/event-messages.ts, also sent by the webhook dispatcher) carry rewards.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { RewardSchema, RewardState, type Reward } from "../../gen/kindling/v1/reward_pb.js";
import { FulfilmentMode, RewardKind } from "../../gen/kindling/v1/definition_pb.js";
import type { FulfilmentMode as Mode, RewardState as State } from "../../db/entities/index.ts";
import type { CatalogDefinition } from "../definitions/definition-catalog.ts";
import type { StoredReward } from "./reward-store.ts";
import { milestoneMessage } from "./reward-plan.ts";

/** What the message needs of a reward: a stored row, or one the ingestor just planned. */
export type RewardRecord = Omit<StoredReward, "memberId" | "repetition">;

export const rewardStateToProto: Record<State, RewardState> = {
  PENDING: RewardState.PENDING,
  AVAILABLE: RewardState.AVAILABLE,
  CLAIMED: RewardState.CLAIMED,
  ISSUED: RewardState.ISSUED,
  EXPIRED: RewardState.EXPIRED,
  FAILED: RewardState.FAILED,
};

export function rewardStateFromProto(state: RewardState): State | undefined {
  return (Object.entries(rewardStateToProto) as [State, RewardState][]).find(([, v]) => v === state)?.[0];
}

const kinds: Record<string, RewardKind> = { POINTS: RewardKind.POINTS, COUPON: RewardKind.COUPON, BADGE: RewardKind.BADGE, FREEZE: RewardKind.FREEZE, CUSTOM: RewardKind.CUSTOM };
const modes: Record<Mode, FulfilmentMode> = { EXTERNAL: FulfilmentMode.EXTERNAL, PROVIDER: FulfilmentMode.PROVIDER, CLAIM: FulfilmentMode.CLAIM };
const ts = (ms: number | null) => (ms === null ? undefined : timestampFromMs(ms));

export function rewardMessage(r: RewardRecord, def: CatalogDefinition | undefined): Reward {
  const milestone = def ? milestoneMessage(def, r.threshold) : undefined;
  return create(RewardSchema, {
    id: r.id,
    memberExternalId: r.memberExternalId,
    definitionId: r.definitionId,
    milestoneThreshold: r.threshold,
    streakCount: r.streakCount,
    cycle: r.cycle,
    kind: kinds[r.kind] ?? RewardKind.UNSPECIFIED,
    name: r.name,
    value: r.value,
    points: r.points,
    multiplier: r.multiplier,
    badge: milestone?.reward?.badge,
    freezeCount: r.kind === "FREEZE" ? Number(r.value) || 1 : 0,
    rewardItemId: milestone?.reward?.rewardItemId ?? "",
    state: rewardStateToProto[r.state],
    fulfilmentMode: modes[r.mode],
    couponCode: r.couponCode ?? "",
    issueTime: ts(r.issuedAt),
    expiryTime: ts(r.expiryAt),
    claimDeadlineTime: ts(r.claimDeadlineAt),
    claimTime: ts(r.claimedAt),
    failureReason: r.failureReason ?? "",
    attempts: r.attempts,
    createTime: ts(r.createdAt),
    updateTime: ts(r.updatedAt),
    activityId: r.activityId ?? "",
  });
}
