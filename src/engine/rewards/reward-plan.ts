// What a crossed milestone grants: one reward row per (milestone, cycle, repetition), with its fulfilment mode
// and first state. Badges and freezes are granted by the crossing itself (the domain already counted the
// freeze), so they start ISSUED and need no workflow; everything else starts a reward lifecycle workflow.
import { randomUUID } from "node:crypto";
import { FulfilmentMode, RewardKind, type Milestone as MilestoneMessage } from "../../gen/kindling/v1/definition_pb.js";
import type { FulfilmentMode as Mode, RewardState } from "../../db/entities/index.ts";
import type { StreakEffect } from "../../domain/streak-machine.ts";
import type { CatalogDefinition } from "../definitions/definition-catalog.ts";
import { multiplierFor } from "../../domain/streak-chain.ts";

export type RewardKindName = "POINTS" | "COUPON" | "BADGE" | "FREEZE" | "CUSTOM";

export interface PlannedReward {
  readonly id: string;
  readonly tenantId: string;
  readonly memberId: string;
  readonly definitionId: string;
  readonly memberStreakId: string;
  readonly threshold: number;
  readonly cycle: number;
  readonly repetition: number;
  readonly streakCount: number;
  readonly multiplier: number;
  readonly activityId: string | null;
  readonly kind: RewardKindName;
  readonly name: string;
  readonly value: string;
  readonly points: number;
  readonly state: RewardState;
  readonly mode: Mode;
  readonly claimDeadlineAt: number | null;
  readonly issuedAt: number | null;
  readonly createdAt: number;
  readonly needsWorkflow: boolean;
}

const kindNames: Record<RewardKind, RewardKindName | undefined> = {
  [RewardKind.UNSPECIFIED]: undefined,
  [RewardKind.POINTS]: "POINTS",
  [RewardKind.COUPON]: "COUPON",
  [RewardKind.BADGE]: "BADGE",
  [RewardKind.FREEZE]: "FREEZE",
  [RewardKind.CUSTOM]: "CUSTOM",
};

/**
 * Default fulfilment when a milestone does not choose one: points bonuses wait to be claimed (Loyalteez
 * `claim-milestone`), coupons and custom rewards are fulfilled by the tenant's backend (Gamopanda's PATCH).
 */
function modeFor(kind: RewardKindName, configured: FulfilmentMode): Mode {
  if (configured === FulfilmentMode.EXTERNAL) return "EXTERNAL";
  if (configured === FulfilmentMode.PROVIDER) return "PROVIDER";
  if (configured === FulfilmentMode.CLAIM) return "CLAIM";
  return kind === "POINTS" ? "CLAIM" : "EXTERNAL";
}

export function milestoneMessage(def: CatalogDefinition, threshold: number): MilestoneMessage | undefined {
  return def.message.milestones.find((m) => m.threshold === threshold);
}

export function planRewards(
  def: CatalogDefinition,
  owner: { tenantId: string; memberId: string; memberStreakId: string; activityId: string | null },
  effects: readonly StreakEffect[],
  now: number,
): PlannedReward[] {
  const planned: PlannedReward[] = [];
  for (const effect of effects) {
    if (effect.type !== "streak.milestone_reached") continue;
    const m = milestoneMessage(def, effect.threshold);
    const reward = m?.reward;
    const kind = (reward && kindNames[reward.kind]) ?? (reward?.badge ? "BADGE" : undefined);
    if (!m || !reward || !kind) continue;
    const immediate = kind === "BADGE" || kind === "FREEZE";
    const mode = immediate ? "EXTERNAL" : modeFor(kind, reward.fulfilmentMode);
    const deadline = reward.claimDeadlineDuration ? Number(reward.claimDeadlineDuration.seconds) * 1000 : null;
    planned.push({
      id: randomUUID(),
      ...owner,
      definitionId: def.id,
      threshold: effect.threshold,
      cycle: effect.cycle,
      repetition: effect.occurrence,
      streakCount: effect.count,
      multiplier: multiplierFor(def.rules, effect.count),
      kind,
      name: reward.name || m.name || (kind === "BADGE" ? (reward.badge?.name ?? "") : ""),
      value: reward.value || (kind === "FREEZE" ? String(reward.freezeCount || 1) : kind === "POINTS" ? String(reward.points) : ""),
      points: kind === "POINTS" ? reward.points : 0,
      state: immediate ? "ISSUED" : mode === "CLAIM" ? "AVAILABLE" : "PENDING",
      mode,
      claimDeadlineAt: mode === "CLAIM" && deadline ? now + deadline : null,
      issuedAt: immediate ? now : null,
      createdAt: now,
      needsWorkflow: !immediate,
    });
  }
  return planned;
}
