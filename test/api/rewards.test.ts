// RewardService end to end: Loyalteez claim-milestone with its typed reasons, the claim race, the Gamopanda
// reward-log PATCH lifecycle and retries of failed rewards — each checked in the API answer and in PostgreSQL
// (state, points balance, events, outbox rows).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { RewardService } from "../../src/gen/kindling/v1/reward_service_pb.js";
import { MemberService } from "../../src/gen/kindling/v1/member_service_pb.js";
import { RewardState } from "../../src/gen/kindling/v1/reward_pb.js";
import { FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { startTestApi, type TestApi } from "../support/api.ts";
import { activityOnDay, createLiveDefinition, errorMetadata, expectFailure, sqlPool } from "../support/fixtures.ts";

let api: TestApi;
let db: pg.Pool;
let claimDef: string;
let couponDef: string;

beforeAll(async () => {
  api = await startTestApi({ label: "rewards" });
  db = sqlPool(api.databaseUrl);
  const defs = api.client(DefinitionService);
  claimDef = (
    await createLiveDefinition(defs, {
      name: "Daily check-in",
      // A day of grace lets yesterday's check-in count today, so a two-day streak can be built in one test.
      graceDuration: { seconds: 86_400n },
      milestones: [
        { threshold: 2, reward: { kind: RewardKind.POINTS, points: 100, fulfilmentMode: FulfilmentMode.CLAIM } },
        { threshold: 5, reward: { kind: RewardKind.POINTS, points: 500, fulfilmentMode: FulfilmentMode.CLAIM } },
      ],
    })
  ).id;
  couponDef = (
    await createLiveDefinition(defs, {
      name: "First order coupon",
      milestones: [{ threshold: 1, reward: { kind: RewardKind.COUPON, name: "5% off", coupon: { description: "5% off" }, fulfilmentMode: FulfilmentMode.EXTERNAL } }],
    })
  ).id;
});
afterAll(async () => {
  await db?.end();
  await api?.close();
});

/** A member with a two-day streak on the claim definition: one AVAILABLE 100-point reward. */
async function memberWithAvailableReward(member: string): Promise<string> {
  const activities = api.client(ActivityService);
  await activityOnDay(activities, member, claimDef, -1);
  const second = await activityOnDay(activities, member, claimDef, 0);
  const reward = second.results[0]!.rewards[0]!;
  expect(reward.state).toBe(RewardState.AVAILABLE);
  return reward.id;
}

async function couponReward(member: string): Promise<string> {
  const first = await activityOnDay(api.client(ActivityService), member, couponDef, 0);
  const reward = first.results[0]!.rewards[0]!;
  expect(reward).toMatchObject({ state: RewardState.PENDING, kind: RewardKind.COUPON, fulfilmentMode: FulfilmentMode.EXTERNAL });
  return reward.id;
}

const balance = async (member: string) => (await api.client(MemberService).getMember({ memberExternalId: member })).member!.pointsBalance;

describe("ClaimReward", () => {
  it("claim/by_milestone_claims_credits_points_and_writes_event_and_outbox", async () => {
    const rewardId = await memberWithAvailableReward("claim-ok");
    const res = await api.client(RewardService).claimReward({
      target: { case: "milestone", value: { memberExternalId: "claim-ok", definitionId: claimDef, threshold: 2 } },
    });
    expect(res).toMatchObject({ bonusPoints: 100, milestoneThreshold: 2, currentCount: 2 });
    expect(res.reward).toMatchObject({ id: rewardId, state: RewardState.CLAIMED, memberExternalId: "claim-ok" });
    expect(res.reward!.claimTime).toBeDefined();
    expect(await balance("claim-ok")).toBe(100);

    const events = await db.query("select type, payload from streak_event where dedupe_key = $1", [`reward:${rewardId}:claimed`]);
    expect(events.rows).toHaveLength(1);
    expect(events.rows[0]).toMatchObject({ type: "reward.claimed", payload: { reward_id: rewardId, user_id: "claim-ok" } });
    const outbox = await db.query("select kind, payload from outbox_message where dedupe_key = $1", [`reward:${rewardId}:claimed`]);
    expect(outbox.rows).toEqual([{ kind: "reward.claimed", payload: { rewardId, tenantId: api.admin.tenantId } }]);
  });

  it("claim/by_reward_id_then_again_is_already_claimed", async () => {
    const rewardId = await memberWithAvailableReward("claim-twice");
    const rewards = api.client(RewardService);
    await rewards.claimReward({ target: { case: "rewardId", value: rewardId } });
    await expectFailure(rewards.claimReward({ target: { case: "rewardId", value: rewardId } }), Code.FailedPrecondition, "ALREADY_CLAIMED");
    await expectFailure(
      rewards.claimReward({ target: { case: "milestone", value: { memberExternalId: "claim-twice", definitionId: claimDef, threshold: 2 } } }),
      Code.FailedPrecondition,
      "ALREADY_CLAIMED",
    );
    expect(await balance("claim-twice")).toBe(100);
  });

  it("claim/streak_too_short_reports_required_and_current", async () => {
    await memberWithAvailableReward("too-short");
    const error = await expectFailure(
      api.client(RewardService).claimReward({ target: { case: "milestone", value: { memberExternalId: "too-short", definitionId: claimDef, threshold: 5 } } }),
      Code.FailedPrecondition,
      "STREAK_TOO_SHORT",
    );
    expect(errorMetadata(error)).toMatchObject({ required: "5", current: "2" });
  });

  it("claim/unknown_threshold_is_invalid_milestone", async () => {
    await memberWithAvailableReward("bad-threshold");
    await expectFailure(
      api.client(RewardService).claimReward({ target: { case: "milestone", value: { memberExternalId: "bad-threshold", definitionId: claimDef, threshold: 3 } } }),
      Code.InvalidArgument,
      "INVALID_MILESTONE",
    );
  });

  it("claim/past_deadline_is_reward_expired", async () => {
    const rewardId = await memberWithAvailableReward("late-claimer");
    await db.query("update reward set claim_deadline_at = now() - interval '1 minute' where id = $1", [rewardId]);
    await expectFailure(api.client(RewardService).claimReward({ target: { case: "rewardId", value: rewardId } }), Code.FailedPrecondition, "REWARD_EXPIRED");
    const { rows } = await db.query("select state from reward where id = $1", [rewardId]);
    expect(rows[0].state).toBe("AVAILABLE");
  });

  it("claim/external_coupon_is_not_claimable", async () => {
    const rewardId = await couponReward("coupon-claimer");
    await expectFailure(api.client(RewardService).claimReward({ target: { case: "rewardId", value: rewardId } }), Code.FailedPrecondition, "REWARD_NOT_CLAIMABLE");
  });

  it("claim/unknown_reward_member_or_definition_is_not_found", async () => {
    const rewards = api.client(RewardService);
    await expectFailure(rewards.claimReward({ target: { case: "rewardId", value: "00000000-0000-4000-8000-000000000000" } }), Code.NotFound, "REWARD_NOT_FOUND");
    await expectFailure(
      rewards.claimReward({ target: { case: "milestone", value: { memberExternalId: "nobody", definitionId: claimDef, threshold: 2 } } }),
      Code.NotFound,
      "MEMBER_NOT_FOUND",
    );
    await expectFailure(
      rewards.claimReward({ target: { case: "milestone", value: { memberExternalId: "claim-ok", definitionId: "00000000-0000-4000-8000-000000000000", threshold: 2 } } }),
      Code.NotFound,
      "DEFINITION_NOT_FOUND",
    );
  });

  it("claim/race_of_twenty_claims_gives_one_claim_and_one_credit", async () => {
    const rewardId = await memberWithAvailableReward("racer");
    const grpc = api.client(RewardService, api.admin, "grpc");
    const json = api.client(RewardService);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        i % 2 === 0
          ? grpc.claimReward({ target: { case: "rewardId", value: rewardId } })
          : json.claimReward({ target: { case: "milestone", value: { memberExternalId: "racer", definitionId: claimDef, threshold: 2 } } }),
      ),
    );
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    for (const o of outcomes) if (o.status === "rejected") await expectFailure(Promise.reject(o.reason as Error), Code.FailedPrecondition, "ALREADY_CLAIMED");
    expect(await balance("racer")).toBe(100);
    const events = await db.query("select count(*)::int as n from streak_event where type = 'reward.claimed' and payload->>'reward_id' = $1", [rewardId]);
    expect(events.rows[0].n).toBe(1);
  });
});

describe("UpdateRewardFulfilment (Gamopanda reward-log PATCH)", () => {
  it("fulfilment/coupon_and_times_issue_the_reward_and_mask_limits_changes", async () => {
    const rewardId = await couponReward("patched");
    const rewards = api.client(RewardService);
    const issued = Date.now() - 60_000;
    const expiry = Date.now() + 30 * 86_400_000;
    const first = await rewards.updateRewardFulfilment({
      rewardId,
      couponCode: "SAVE5-ABC",
      issueTime: timestampFromMs(issued),
      expiryTime: timestampFromMs(expiry),
      updateMask: { paths: ["coupon_code", "issue_time", "expiry_time"] },
    });
    expect(first.reward).toMatchObject({ state: RewardState.ISSUED, couponCode: "SAVE5-ABC" });
    expect(timestampMs(first.reward!.issueTime!)).toBe(issued);
    expect(timestampMs(first.reward!.expiryTime!)).toBe(expiry);

    // Only the named field changes; a field in the mask left unset is cleared.
    const later = Date.now() + 60 * 86_400_000;
    const second = await rewards.updateRewardFulfilment({ rewardId, couponCode: "IGNORED", expiryTime: timestampFromMs(later), updateMask: { paths: ["expiry_time"] } });
    expect(second.reward).toMatchObject({ state: RewardState.ISSUED, couponCode: "SAVE5-ABC" });
    expect(timestampMs(second.reward!.expiryTime!)).toBe(later);
    const cleared = await rewards.updateRewardFulfilment({ rewardId, updateMask: { paths: ["expiry_time"] } });
    expect(cleared.reward!.expiryTime).toBeUndefined();

    expect((await rewards.getReward({ rewardId })).reward).toMatchObject({ state: RewardState.ISSUED, couponCode: "SAVE5-ABC" });
    const issuedEvents = await db.query("select count(*)::int as n from streak_event where type = 'reward.issued' and payload->>'reward_id' = $1", [rewardId]);
    expect(issuedEvents.rows[0].n).toBe(1);
    const outbox = await db.query("select count(*)::int as n from outbox_message where kind = 'reward.fulfilled' and payload->>'rewardId' = $1", [rewardId]);
    expect(outbox.rows[0].n).toBe(3);
  });

  it("fulfilment/coupon_alone_issues_now", async () => {
    const rewardId = await couponReward("coupon-only");
    const before = Date.now();
    const { reward } = await api.client(RewardService).updateRewardFulfilment({ rewardId, couponCode: "ONLY", updateMask: { paths: ["coupon_code"] } });
    expect(reward!.state).toBe(RewardState.ISSUED);
    expect(timestampMs(reward!.issueTime!)).toBeGreaterThanOrEqual(before - 1000);
  });

  it("fulfilment/expired_reward_is_not_updatable", async () => {
    const rewardId = await couponReward("expired-patch");
    await db.query("update reward set state = 'EXPIRED' where id = $1", [rewardId]);
    await expectFailure(
      api.client(RewardService).updateRewardFulfilment({ rewardId, couponCode: "X", updateMask: { paths: ["coupon_code"] } }),
      Code.FailedPrecondition,
      "REWARD_NOT_UPDATABLE",
    );
  });

  it("fulfilment/empty_mask_is_invalid_and_changes_nothing", async () => {
    const rewardId = await couponReward("empty-mask");
    await expectFailure(api.client(RewardService).updateRewardFulfilment({ rewardId, couponCode: "X", updateMask: { paths: [] } }), Code.InvalidArgument, "INVALID_REQUEST");
    expect((await api.client(RewardService).getReward({ rewardId })).reward).toMatchObject({ state: RewardState.PENDING, couponCode: "" });
  });
});

describe("RetryReward", () => {
  it("retry/only_failed_rewards_restart_as_pending_with_the_next_attempt", async () => {
    const rewardId = await couponReward("retrier");
    const rewards = api.client(RewardService);
    await expectFailure(rewards.retryReward({ rewardId }), Code.FailedPrecondition, "REWARD_NOT_FAILED");

    await db.query("update reward set state = 'FAILED', attempts = 3, failure_reason = 'provider timed out', mode = 'PROVIDER' where id = $1", [rewardId]);
    const { reward } = await rewards.retryReward({ rewardId });
    expect(reward).toMatchObject({ state: RewardState.PENDING, attempts: 4 });
    const outbox = await db.query("select payload from outbox_message where kind = 'reward.retry' and dedupe_key = $1", [`reward:${rewardId}:retry:4`]);
    expect(outbox.rows[0]?.payload).toMatchObject({ rewardId, attempt: 4 });
    await expectFailure(rewards.retryReward({ rewardId }), Code.FailedPrecondition, "REWARD_NOT_FAILED");
  });
});

describe("ListRewards and GetReward", () => {
  it("list/filters_by_member_definition_and_state_and_pages_newest_first", async () => {
    const a = await memberWithAvailableReward("lister");
    const b = await couponReward("lister");
    const rewards = api.client(RewardService);
    const all = await rewards.listRewards({ memberExternalId: "lister" });
    expect(all.rewards.map((r) => r.id)).toEqual([b, a]);
    expect((await rewards.listRewards({ memberExternalId: "lister", definitionId: couponDef })).rewards.map((r) => r.id)).toEqual([b]);
    expect((await rewards.listRewards({ memberExternalId: "lister", states: [RewardState.AVAILABLE] })).rewards.map((r) => r.id)).toEqual([a]);

    const first = await rewards.listRewards({ memberExternalId: "lister", pageSize: 1 });
    expect(first.rewards.map((r) => r.id)).toEqual([b]);
    const second = await rewards.listRewards({ memberExternalId: "lister", pageSize: 1, pageToken: first.nextPageToken });
    expect(second.rewards.map((r) => r.id)).toEqual([a]);
    expect(second.nextPageToken).toBe("");
  });

  it("get/unknown_reward_is_not_found", async () => {
    await expectFailure(api.client(RewardService).getReward({ rewardId: "00000000-0000-4000-8000-000000000001" }), Code.NotFound, "REWARD_NOT_FOUND");
  });
});
