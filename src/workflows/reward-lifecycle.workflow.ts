// One workflow per reward (id reward/<tenant>/<reward>, retries …/attempt-<n>) drives its lifecycle from the
// state PostgreSQL holds (PRODUCT §5 "Reward fulfilment lifecycle"). It decides from a fresh snapshot after every
// wait, so it is correct whatever happened meanwhile (an API call, a crash, a relay that delivered twice):
//
// - CLAIM, AVAILABLE: wait for `claimed` until claim_deadline_at; then AVAILABLE → EXPIRED by a conditional
//   UPDATE, which does nothing if the member claimed first (the DB, not the signal, is the truth).
// - PROVIDER (PENDING), CLAIM with a provider (CLAIMED), or a retry (FAILED → PENDING by RetryReward): call the
//   provider activity with the milestone's attempt timeout and max attempts; permanent errors are non-retryable
//   ApplicationFailures. Giving up marks the reward FAILED with failure_reason.
// - EXTERNAL (PENDING), or CLAIMED without a provider: wait for `fulfilled` (the tenant's PATCH, already
//   committed by the API); make sure reward.issued exists.
// - expiry_at: a reward still PENDING/CLAIMED at expiry_at becomes EXPIRED; an ISSUED coupon stays ISSUED (it was
//   handed out; RewardState.EXPIRED means "not claimed in time") and reward.expired announces the end of its
//   validity. A PATCH that moves expiry_at is picked up through `fulfilled`.
import { ActivityFailure, ApplicationFailure, condition, proxyActivities, setHandler } from "@temporalio/workflow";
import type { KindlingActivities } from "../activities/index.ts";
import type { RewardSnapshot } from "../engine/rewards/reward-fulfilment.ts";
import { rewardClaimedSignal, rewardFulfilledSignal, rewardStatusQuery, type RewardInput, type RewardOutcome } from "./messages.ts";

const db = proxyActivities<KindlingActivities>({
  startToCloseTimeout: "1 minute",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "1 minute" },
});

// A provider attempt also gets a little time for the database write after the provider answered.
const WRITE_MARGIN_MS = 5_000;

function providerActivities(snapshot: RewardSnapshot) {
  const policy = snapshot.provider ?? { maxAttempts: 10, attemptTimeoutMs: 10_000 };
  return proxyActivities<KindlingActivities>({
    startToCloseTimeout: policy.attemptTimeoutMs + WRITE_MARGIN_MS,
    retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "1 minute", maximumAttempts: policy.maxAttempts },
  });
}

function failureReason(error: unknown): string {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (cause instanceof ApplicationFailure) return cause.type ? `${cause.type}: ${cause.message}` : cause.message;
  if (cause instanceof Error) return cause.message;
  return String(cause);
}

/** Waits for `fn`, up to `timeoutMs` when given; true when `fn` became true (condition() alone returns void then). */
async function waitFor(fn: () => boolean, timeoutMs: number | undefined): Promise<boolean> {
  if (timeoutMs === undefined) {
    await condition(fn);
    return true;
  }
  return condition(fn, timeoutMs);
}

export async function rewardLifecycleWorkflow(input: RewardInput): Promise<RewardOutcome> {
  const { tenantId, rewardId, attempt } = input;
  let claimedSignals = 0;
  let fulfilledSignals = 0;
  let phase = "LOADING";
  setHandler(rewardClaimedSignal, () => void claimedSignals++);
  setHandler(rewardFulfilledSignal, () => void fulfilledSignals++);
  setHandler(rewardStatusQuery, () => phase);
  const ref = () => ({ tenantId, rewardId, now: Date.now() });
  const until = (at: number) => Math.max(0, at - Date.now());

  let r = await db.loadReward(ref());
  for (;;) {
    if (r === null) return "MISSING";
    phase = r.state;
    // A PROVIDER reward always goes to its provider (a missing one fails it with NO_PROVIDER); a CLAIM reward
    // only once claimed and only if it has one; a retry run takes over a FAILED (or re-opened) reward.
    const viaProvider = r.mode === "PROVIDER" || r.provider !== null;
    const canIssue =
      viaProvider &&
      ((r.state === "PENDING" && (r.mode === "PROVIDER" || attempt > 0)) ||
        (r.state === "CLAIMED" && r.provider !== null) ||
        (r.state === "FAILED" && attempt > 0));
    if (r.state === "AVAILABLE") {
      const seen = claimedSignals;
      const signalled = await waitFor(() => claimedSignals > seen, r.claimDeadlineAt === null ? undefined : until(r.claimDeadlineAt));
      r = signalled ? await db.confirmRewardClaimed(ref()) : await db.expireUnclaimedReward(ref());
    } else if (canIssue) {
      phase = "ISSUING";
      try {
        r = await providerActivities(r).issueReward({ ...ref(), attempt });
      } catch (error) {
        await db.markRewardFailed({ ...ref(), attempt, reason: failureReason(error) });
        return "FAILED";
      }
    } else if (r.state === "PENDING" || r.state === "CLAIMED") {
      const seen = fulfilledSignals;
      const signalled = await waitFor(() => fulfilledSignals > seen, r.expiryAt === null ? undefined : until(r.expiryAt));
      r = signalled ? await db.confirmExternalFulfilment(ref()) : await db.expireRewardAtExpiry(ref());
    } else if (r.state === "ISSUED") {
      if (r.expiryAt === null) return "ISSUED";
      const seen = fulfilledSignals;
      const signalled = await waitFor(() => fulfilledSignals > seen, until(r.expiryAt));
      if (signalled) {
        r = await db.confirmExternalFulfilment(ref());
        continue;
      }
      r = await db.expireRewardAtExpiry(ref());
      if (r !== null && r.state === "ISSUED" && r.expiryAt !== null && r.expiryAt > Date.now()) continue;
      return "ISSUED";
    } else if (r.state === "EXPIRED") {
      return "EXPIRED";
    } else {
      // FAILED on a first run (a retry runs as …/attempt-n and takes over).
      return r.state === "FAILED" ? "FAILED" : "SUPERSEDED";
    }
  }
}
