// The reward lifecycle's pure decisions (claim, fulfilment PATCH, retry, points credited), table-driven.
import { describe, expect, it } from "vitest";
import {
  applyFulfilment,
  claimDecision,
  pickClaimable,
  pointsCreditedOnClaim,
  retryDecision,
  type RewardLifecycleFacts,
} from "../../src/domain/reward-lifecycle.ts";

const NOW = Date.UTC(2025, 0, 15, 12);
const base: RewardLifecycleFacts = { state: "AVAILABLE", mode: "CLAIM", claimDeadlineAt: null, couponCode: null, issuedAt: null, expiryAt: null };
const r = (over: Partial<RewardLifecycleFacts>): RewardLifecycleFacts => ({ ...base, ...over });

describe("claimDecision", () => {
  it.each([
    ["claims/available_claim_reward_before_deadline", r({ claimDeadlineAt: NOW + 1 }), { ok: true }],
    ["refuses/not_claim_mode", r({ mode: "EXTERNAL" }), { ok: false, reason: "REWARD_NOT_CLAIMABLE" }],
    ["refuses/already_claimed", r({ state: "CLAIMED" }), { ok: false, reason: "ALREADY_CLAIMED" }],
    ["refuses/issued_counts_as_claimed", r({ state: "ISSUED" }), { ok: false, reason: "ALREADY_CLAIMED" }],
    ["refuses/expired_state", r({ state: "EXPIRED" }), { ok: false, reason: "REWARD_EXPIRED" }],
    ["refuses/pending_is_not_claimable", r({ state: "PENDING" }), { ok: false, reason: "REWARD_NOT_CLAIMABLE" }],
    ["refuses/deadline_passed_even_before_sweep", r({ claimDeadlineAt: NOW }), { ok: false, reason: "REWARD_EXPIRED" }],
  ])("%s", (_name, facts, expected) => {
    expect(claimDecision(facts, NOW)).toEqual(expected);
  });
});

describe("pickClaimable", () => {
  it("picks/oldest_claimable_reward", () => {
    const rewards = [{ ...r({ state: "CLAIMED" }), id: 1 }, { ...r({}), id: 2 }, { ...r({}), id: 3 }];
    expect(pickClaimable(rewards, NOW)).toEqual({ ok: true, reward: rewards[1] });
  });
  it("refuses/already_claimed_wins_over_expired", () => {
    expect(pickClaimable([r({ state: "EXPIRED" }), r({ state: "CLAIMED" })], NOW)).toEqual({ ok: false, reason: "ALREADY_CLAIMED" });
  });
  it("refuses/expired_wins_over_not_claimable", () => {
    expect(pickClaimable([r({ mode: "EXTERNAL" }), r({ state: "EXPIRED" })], NOW)).toEqual({ ok: false, reason: "REWARD_EXPIRED" });
  });
  it("none/no_rewards_for_the_milestone", () => {
    expect(pickClaimable([], NOW)).toBeUndefined();
  });
});

describe("applyFulfilment", () => {
  const pending = r({ state: "PENDING", mode: "EXTERNAL" });
  it("issues/coupon_without_issue_time_is_issued_now", () => {
    expect(applyFulfilment(pending, { couponCode: "SAVE5" }, NOW)).toEqual({
      ok: true,
      next: { state: "ISSUED", couponCode: "SAVE5", issuedAt: NOW, expiryAt: null },
      becameIssued: true,
    });
  });
  it("issues/explicit_issue_and_expiry_times_are_kept", () => {
    const out = applyFulfilment(pending, { couponCode: "X", issuedAt: NOW - 5, expiryAt: NOW + 5 }, NOW);
    expect(out).toEqual({ ok: true, next: { state: "ISSUED", couponCode: "X", issuedAt: NOW - 5, expiryAt: NOW + 5 }, becameIssued: true });
  });
  it("updates/expiry_only_keeps_state", () => {
    expect(applyFulfilment(pending, { expiryAt: NOW + 9 }, NOW)).toEqual({
      ok: true,
      next: { state: "PENDING", couponCode: null, issuedAt: null, expiryAt: NOW + 9 },
      becameIssued: false,
    });
  });
  it("updates/already_issued_is_not_issued_again", () => {
    const issued = r({ state: "ISSUED", mode: "EXTERNAL", couponCode: "A", issuedAt: NOW - 1 });
    expect(applyFulfilment(issued, { couponCode: "B" }, NOW)).toMatchObject({ ok: true, becameIssued: false, next: { couponCode: "B", issuedAt: NOW - 1 } });
  });
  it.each([
    ["refuses/expired_is_final", r({ state: "EXPIRED", mode: "EXTERNAL" })],
    ["refuses/provider_reward_being_fulfilled", r({ state: "PENDING", mode: "PROVIDER" })],
  ])("%s", (_name, facts) => {
    expect(applyFulfilment(facts, { couponCode: "Z" }, NOW)).toEqual({ ok: false, reason: "REWARD_NOT_UPDATABLE" });
  });
});

describe("retryDecision and points", () => {
  it("retries/only_failed_rewards_with_next_attempt", () => {
    expect(retryDecision({ state: "FAILED" }, 2)).toEqual({ ok: true, attempt: 3 });
    expect(retryDecision({ state: "ISSUED" }, 2)).toEqual({ ok: false, reason: "REWARD_NOT_FAILED" });
  });
  it("points/claim_credits_the_promised_bonus_unless_a_provider_pays_it", () => {
    expect(pointsCreditedOnClaim({ kind: "POINTS", points: 100 }, false)).toBe(100);
    expect(pointsCreditedOnClaim({ kind: "POINTS", points: 100 }, true)).toBe(0);
    expect(pointsCreditedOnClaim({ kind: "COUPON", points: 0 }, false)).toBe(0);
  });
});
