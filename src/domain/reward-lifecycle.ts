/**
 * The reward lifecycle's rules (PRODUCT §5): which API transitions a reward in a given state allows. Pure: the
 * engine reads and locks the row, asks here, and writes what the answer says. States and modes are the stored
 * strings; `now` is an argument.
 *
 *   PENDING → AVAILABLE → CLAIMED → ISSUED, EXPIRED (final), FAILED (retryable → PENDING)
 */
export type RewardLifecycleState = "PENDING" | "AVAILABLE" | "CLAIMED" | "ISSUED" | "EXPIRED" | "FAILED";
export type RewardFulfilmentMode = "EXTERNAL" | "PROVIDER" | "CLAIM";

export interface RewardLifecycleFacts {
  readonly state: RewardLifecycleState;
  readonly mode: RewardFulfilmentMode;
  readonly claimDeadlineAt: number | null;
  readonly couponCode: string | null;
  readonly issuedAt: number | null;
  readonly expiryAt: number | null;
}

export type ClaimRefusal = "REWARD_NOT_CLAIMABLE" | "ALREADY_CLAIMED" | "REWARD_EXPIRED";

/** Loyalteez claim-milestone, for one reward: only an AVAILABLE CLAIM reward before its deadline may be claimed. */
export function claimDecision(r: RewardLifecycleFacts, now: number): { readonly ok: true } | { readonly ok: false; readonly reason: ClaimRefusal } {
  if (r.mode !== "CLAIM") return { ok: false, reason: "REWARD_NOT_CLAIMABLE" };
  if (r.state === "CLAIMED" || r.state === "ISSUED" || r.state === "FAILED") return { ok: false, reason: "ALREADY_CLAIMED" };
  if (r.state === "EXPIRED") return { ok: false, reason: "REWARD_EXPIRED" };
  if (r.state !== "AVAILABLE") return { ok: false, reason: "REWARD_NOT_CLAIMABLE" };
  if (r.claimDeadlineAt !== null && now >= r.claimDeadlineAt) return { ok: false, reason: "REWARD_EXPIRED" };
  return { ok: true };
}

/**
 * Which of a member's rewards for one milestone a claim by threshold takes: the oldest claimable one; otherwise
 * the refusal the member should see — already claimed wins over expired, which wins over not claimable.
 */
export function pickClaimable<T extends RewardLifecycleFacts>(rewards: readonly T[], now: number): { readonly ok: true; readonly reward: T } | { readonly ok: false; readonly reason: ClaimRefusal } | undefined {
  if (rewards.length === 0) return undefined;
  const refusals = new Set<ClaimRefusal>();
  for (const r of rewards) {
    const d = claimDecision(r, now);
    if (d.ok) return { ok: true, reward: r };
    refusals.add(d.reason);
  }
  const order: ClaimRefusal[] = ["ALREADY_CLAIMED", "REWARD_EXPIRED", "REWARD_NOT_CLAIMABLE"];
  return { ok: false, reason: order.find((x) => refusals.has(x)) ?? "REWARD_NOT_CLAIMABLE" };
}

/** A Gamopanda PATCH of the reward log: each field present replaces the stored one (null clears it). */
export interface FulfilmentPatch {
  readonly couponCode?: string | null;
  readonly issuedAt?: number | null;
  readonly expiryAt?: number | null;
}

export type FulfilmentOutcome =
  | { readonly ok: true; readonly next: Pick<RewardLifecycleFacts, "state" | "couponCode" | "issuedAt" | "expiryAt">; readonly becameIssued: boolean }
  | { readonly ok: false; readonly reason: "REWARD_NOT_UPDATABLE" };

/**
 * The tenant records fulfilment. EXPIRED rewards are final and PROVIDER rewards still being fulfilled belong to
 * their provider. A reward that gets a coupon code or an issue time is ISSUED; a coupon without an issue time is
 * taken as issued now, so an ISSUED reward always says when.
 */
export function applyFulfilment(r: RewardLifecycleFacts, patch: FulfilmentPatch, now: number): FulfilmentOutcome {
  if (r.state === "EXPIRED" || (r.mode === "PROVIDER" && r.state === "PENDING")) return { ok: false, reason: "REWARD_NOT_UPDATABLE" };
  const couponCode = patch.couponCode !== undefined ? patch.couponCode : r.couponCode;
  let issuedAt = patch.issuedAt !== undefined ? patch.issuedAt : r.issuedAt;
  const expiryAt = patch.expiryAt !== undefined ? patch.expiryAt : r.expiryAt;
  const arrived = (patch.couponCode ?? null) !== null || (patch.issuedAt ?? null) !== null;
  if (issuedAt === null && arrived && couponCode !== null) issuedAt = now;
  const becameIssued = r.state !== "ISSUED" && issuedAt !== null;
  return { ok: true, next: { state: becameIssued ? "ISSUED" : r.state, couponCode, issuedAt, expiryAt }, becameIssued };
}

/** RetryReward: only a FAILED reward starts over, as PENDING, with the attempt number of the new run. */
export function retryDecision(r: Pick<RewardLifecycleFacts, "state">, attempts: number): { readonly ok: true; readonly attempt: number } | { readonly ok: false; readonly reason: "REWARD_NOT_FAILED" } {
  if (r.state !== "FAILED") return { ok: false, reason: "REWARD_NOT_FAILED" };
  return { ok: true, attempt: attempts + 1 };
}

/**
 * Points a claim credits to the built-in ledger at once, for a POINTS reward without a provider: the milestone's
 * bonus as the reward states it. Loyalteez's example claims the 7-day milestone on a 10-day streak (1.5x tier)
 * and answers bonus 100, the amount "7 days: +100 LTZ" promised, so the claim does not multiply it again. With a
 * provider configured, the claim only hands the reward to its provider, which credits (points ledger) or issues
 * it; crediting here as well would pay twice.
 */
export function pointsCreditedOnClaim(r: { readonly kind: string; readonly points: number }, hasProvider: boolean): number {
  if (r.kind !== "POINTS" || hasProvider) return 0;
  return r.points;
}
