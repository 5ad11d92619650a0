// Reward lifecycle activities: thin adapters from the reward workflow to the conditional writes in
// src/engine/rewards/reward-fulfilment.ts. Provider errors that retrying cannot fix become non-retryable
// ApplicationFailures whose type is the stable reason, which the workflow records as failure_reason.
import { ApplicationFailure } from "@temporalio/activity";
import { PermanentProviderError, type RewardEngine, type RewardSnapshot } from "../engine/rewards/reward-fulfilment.ts";

export interface RewardActivityInput {
  readonly tenantId: string;
  readonly rewardId: string;
  /** The workflow's clock: decides deadlines and timestamps, so replays and retries agree. */
  readonly now: number;
}

export function createRewardActivities(engine: RewardEngine) {
  return {
    async loadReward(input: RewardActivityInput): Promise<RewardSnapshot | null> {
      return engine.load(input.tenantId, input.rewardId);
    },
    async issueReward(input: RewardActivityInput & { attempt: number }): Promise<RewardSnapshot> {
      try {
        return (await engine.issue(input.tenantId, input.rewardId, input.attempt, input.now)).snapshot;
      } catch (error) {
        if (error instanceof PermanentProviderError) throw ApplicationFailure.nonRetryable(error.message, error.reason);
        throw error;
      }
    },
    async markRewardFailed(input: RewardActivityInput & { attempt: number; reason: string }): Promise<RewardSnapshot | null> {
      return engine.markFailed(input.tenantId, input.rewardId, input.attempt, input.reason, input.now);
    },
    async expireUnclaimedReward(input: RewardActivityInput): Promise<RewardSnapshot | null> {
      return engine.expireUnclaimed(input.tenantId, input.rewardId, input.now);
    },
    async expireRewardAtExpiry(input: RewardActivityInput): Promise<RewardSnapshot | null> {
      return engine.expireAtExpiry(input.tenantId, input.rewardId, input.now);
    },
    async confirmExternalFulfilment(input: RewardActivityInput): Promise<RewardSnapshot | null> {
      return engine.confirmExternal(input.tenantId, input.rewardId, input.now);
    },
    async confirmRewardClaimed(input: RewardActivityInput): Promise<RewardSnapshot | null> {
      return engine.confirmClaimed(input.tenantId, input.rewardId, input.now);
    },
  };
}
