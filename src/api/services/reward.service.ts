// RewardService handlers: request -> reward store call -> Reward messages. The lifecycle rules live in
// src/domain/reward-lifecycle.ts and the transactions in src/engine/rewards/reward-store.ts.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { RewardService } from "../../gen/kindling/v1/reward_service_pb.js";
import type { RewardState } from "../../db/entities/index.ts";
import type { DefinitionCatalog } from "../../engine/definitions/definition-catalog.ts";
import type { Actor, RewardStore, StoredReward } from "../../engine/rewards/reward-store.ts";
import type { FulfilmentPatch } from "../../domain/reward-lifecycle.ts";
import { rewardMessage, rewardStateFromProto } from "../../engine/rewards/reward-messages.ts";
import { keysetPage } from "../pagination.ts";
import type { Principal } from "../context.ts";
import { principalOf } from "../context.ts";

export interface RewardServiceDeps {
  readonly rewards: RewardStore;
  readonly catalog: DefinitionCatalog;
}

export function actorOf(principal: Principal): Actor {
  return principal.role === "END_USER"
    ? { tenantId: principal.tenantId, ownMemberExternalId: principal.memberExternalId, ownDefinitionId: principal.definitionId }
    : { tenantId: principal.tenantId };
}

export function createRewardService(deps: RewardServiceDeps): ServiceImpl<typeof RewardService> {
  const actor = (context: HandlerContext) => actorOf(principalOf(context));
  const message = async (tenantId: string, r: StoredReward) => rewardMessage(r, await deps.catalog.get(tenantId, r.definitionId));

  return {
    async listRewards(req, context) {
      const who = actor(context);
      const { rows, nextPageToken } = await keysetPage(
        req,
        (limit, after) =>
          deps.rewards.list(who, {
            memberExternalId: req.memberExternalId || undefined,
            definitionId: req.definitionId || undefined,
            states: req.states.map(rewardStateFromProto).filter((s): s is RewardState => s !== undefined),
            limit,
            after,
          }),
        (r) => [r.createdAt, r.id],
      );
      return { rewards: await Promise.all(rows.map((r) => message(who.tenantId, r))), nextPageToken };
    },

    async getReward(req, context) {
      const who = actor(context);
      return { reward: await message(who.tenantId, await deps.rewards.get(who, req.rewardId)) };
    },

    async claimReward(req, context) {
      const who = actor(context);
      const t = req.target;
      const target =
        t.case === "rewardId"
          ? { rewardId: t.value }
          : { memberExternalId: t.value?.memberExternalId ?? "", definitionId: t.value?.definitionId ?? "", threshold: t.value?.threshold ?? 0 };
      const result = await deps.rewards.claim(who, target);
      const r = result.reward;
      return {
        reward: await message(who.tenantId, r),
        // Loyalteez `bonus`: the milestone's points as the reward states them (see pointsCreditedOnClaim).
        bonusPoints: r.kind === "POINTS" ? r.points : 0,
        milestoneThreshold: r.threshold,
        currentCount: result.currentCount,
      };
    },

    async updateRewardFulfilment(req, context) {
      const who = actor(context);
      const paths = new Set(req.updateMask?.paths ?? []);
      // A field named in the mask and left unset is cleared (null); fields not named keep their value.
      const patch: FulfilmentPatch = {
        ...(paths.has("coupon_code") ? { couponCode: req.couponCode === "" ? null : req.couponCode } : {}),
        ...(paths.has("issue_time") ? { issuedAt: req.issueTime ? timestampMs(req.issueTime) : null } : {}),
        ...(paths.has("expiry_time") ? { expiryAt: req.expiryTime ? timestampMs(req.expiryTime) : null } : {}),
      };
      return { reward: await message(who.tenantId, await deps.rewards.updateFulfilment(who, req.rewardId, patch)) };
    },

    async retryReward(req, context) {
      const who = actor(context);
      return { reward: await message(who.tenantId, await deps.rewards.retry(who, req.rewardId)) };
    },
  };
}
