// Rewards after they were created: reads, claims, fulfilment records and retries. Each change is one transaction
// that locks the reward row, asks the domain's lifecycle rules (src/domain/reward-lifecycle.ts) what is allowed,
// writes the new state with a conditional UPDATE (so a racing writer can never apply the same transition twice),
// and writes the event and the outbox message for Temporal in the same transaction.
//
// Plain SQL through `pg`, like the ingestor that creates these rows: the claim path is hot (a "claim" button in a
// member's app) and needs row locks and conditional updates the ORM would only wrap.
import { randomUUID } from "node:crypto";
import type { Pool, PoolClient } from "pg";
import { advance } from "../../domain/streak-machine.ts";
import { applyFulfilment, claimDecision, pickClaimable, pointsCreditedOnClaim, retryDecision, type FulfilmentPatch } from "../../domain/reward-lifecycle.ts";
import type { FulfilmentMode, RewardState, StreakEventType } from "../../db/entities/index.ts";
import type { DefinitionCatalog } from "../definitions/definition-catalog.ts";
import { definitionMismatch, EngineError, memberMismatch, notFoundError } from "../engine-error.ts";
import { enqueueOutbox } from "../delivery/outbox.ts";
import { milestoneMessage } from "./reward-plan.ts";
import { insertEvents, readMemberStreakStates } from "../ingest/streak-persistence.ts";
import { inTransaction } from "../transaction.ts";
import { rewardMemberId } from "./reward-fulfilment.ts";

/** A reward row with its member's external id; epoch ms for instants, so it is also a JSON-safe event snapshot. */
export interface StoredReward {
  readonly id: string;
  readonly memberId: string;
  readonly memberExternalId: string;
  readonly definitionId: string;
  readonly threshold: number;
  readonly cycle: number;
  readonly repetition: number;
  readonly streakCount: number;
  readonly multiplier: number;
  readonly activityId: string | null;
  readonly kind: string;
  readonly name: string;
  readonly value: string;
  readonly points: number;
  readonly state: RewardState;
  readonly mode: FulfilmentMode;
  readonly couponCode: string | null;
  readonly issuedAt: number | null;
  readonly expiryAt: number | null;
  readonly claimDeadlineAt: number | null;
  readonly claimedAt: number | null;
  readonly failureReason: string | null;
  readonly attempts: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

interface Row {
  id: string; member_id: string; external_id: string; definition_id: string; threshold: number; cycle: number; repetition: number;
  streak_count: number; multiplier: number; activity_id: string | null; kind: string; name: string; value: string; points: number;
  state: RewardState; mode: FulfilmentMode; coupon_code: string | null; issued_at: Date | null; expiry_at: Date | null;
  claim_deadline_at: Date | null; claimed_at: Date | null; failure_reason: string | null; attempts: number; created_at: Date; updated_at: Date;
}

const COLUMNS = `r.id, r.member_id, m.external_id, r.definition_id, r.threshold, r.cycle, r.repetition, r.streak_count, r.multiplier,
  r.activity_id, r.kind, r.name, r.value, r.points, r.state, r.mode, r.coupon_code, r.issued_at, r.expiry_at, r.claim_deadline_at,
  r.claimed_at, r.failure_reason, r.attempts, r.created_at, r.updated_at`;
const FROM = "from reward r join member m on m.id = r.member_id and m.tenant_id = r.tenant_id";

const ms = (d: Date | null) => (d === null ? null : d.getTime());
const date = (v: number | null) => (v === null ? null : new Date(v));

function stored(r: Row): StoredReward {
  return {
    id: r.id, memberId: r.member_id, memberExternalId: r.external_id, definitionId: r.definition_id, threshold: r.threshold, cycle: r.cycle,
    repetition: r.repetition, streakCount: r.streak_count, multiplier: r.multiplier, activityId: r.activity_id, kind: r.kind, name: r.name,
    value: r.value, points: r.points, state: r.state, mode: r.mode, couponCode: r.coupon_code, issuedAt: ms(r.issued_at),
    expiryAt: ms(r.expiry_at), claimDeadlineAt: ms(r.claim_deadline_at), claimedAt: ms(r.claimed_at), failureReason: r.failure_reason,
    attempts: r.attempts, createdAt: r.created_at.getTime(), updatedAt: r.updated_at.getTime(),
  };
}

/** Rewards of one tenant by id (for events that name a reward); unknown ids are absent from the map. */
export async function rewardsByIds(db: Pick<Pool, "query">, tenantId: string, ids: readonly string[]): Promise<Map<string, StoredReward>> {
  if (ids.length === 0) return new Map();
  const { rows } = await db.query<Row>(`select ${COLUMNS} ${FROM} where r.tenant_id = $1 and r.id = any($2::uuid[])`, [tenantId, ids]);
  return new Map(rows.map((r) => [r.id, stored(r)]));
}

/** Who acts: end users are bound to their own member (and a scoped member session to one definition). */
export interface Actor {
  readonly tenantId: string;
  readonly ownMemberExternalId?: string | undefined;
  readonly ownDefinitionId?: string | undefined;
}

const assertOwn = (actor: Actor, memberExternalId: string | undefined, definitionId?: string) => {
  if (actor.ownMemberExternalId !== undefined && memberExternalId !== undefined && actor.ownMemberExternalId !== memberExternalId) throw memberMismatch();
  if (actor.ownDefinitionId !== undefined && definitionId !== undefined && actor.ownDefinitionId !== definitionId) throw definitionMismatch();
};

export interface RewardQuery {
  readonly memberExternalId?: string | undefined;
  readonly definitionId?: string | undefined;
  readonly states: readonly RewardState[];
  readonly limit: number;
  /** Keyset cursor (created_at ms, id), newest first. */
  readonly after?: readonly [number, string] | undefined;
}

export type ClaimTarget =
  | { readonly rewardId: string }
  | { readonly memberExternalId: string; readonly definitionId: string; readonly threshold: number };

export interface ClaimResult {
  readonly reward: StoredReward;
  /** Points credited to the member's balance by this claim (zero when a provider fulfils the reward). */
  readonly creditedPoints: number;
  /** The member streak's count now (Loyalteez `streak`). */
  readonly currentCount: number;
}

export interface RewardStore {
  list(actor: Actor, q: RewardQuery): Promise<StoredReward[]>;
  get(actor: Actor, rewardId: string): Promise<StoredReward>;
  claim(actor: Actor, target: ClaimTarget): Promise<ClaimResult>;
  updateFulfilment(actor: Actor, rewardId: string, patch: FulfilmentPatch): Promise<StoredReward>;
  retry(actor: Actor, rewardId: string): Promise<StoredReward>;
}

export function createRewardStore(deps: { pool: Pool; catalog: DefinitionCatalog; now: () => number }): RewardStore {
  const { pool, catalog } = deps;

  async function lockById(client: PoolClient, tenantId: string, rewardId: string): Promise<StoredReward> {
    // Names the reward's member first: on Citus a row lock is only taken on one shard, the member's (migration 0018).
    const memberId = await rewardMemberId(client, tenantId, rewardId);
    const { rows } = memberId === undefined ? { rows: [] } : await client.query<Row>(
      `select ${COLUMNS} ${FROM} where r.tenant_id = $1 and r.id = $2 and r.member_id = $3 for update of r`, [tenantId, rewardId, memberId]);
    if (!rows[0]) throw notFoundError("reward", { reward_id: rewardId });
    return stored(rows[0]);
  }

  /** The member streak's count at `now` (windows that closed since the last write are finalised in memory). */
  async function currentCount(client: PoolClient, tenantId: string, memberId: string, definitionId: string, now: number): Promise<number> {
    const def = await catalog.get(tenantId, definitionId);
    const rows = await readMemberStreakStates(client, tenantId, memberId, [definitionId]);
    if (!rows[0] || !def) return 0;
    return advance(def.rules, rows[0].state, now, { pausedIntervals: def.pauses }).state.current;
  }

  async function rewardEvent(client: PoolClient, tenantId: string, type: StreakEventType, r: StoredReward, dedupeKey: string, now: number): Promise<void> {
    await insertEvents(client, [{
      tenantId, type, memberId: r.memberId, definitionId: r.definitionId, dedupeKey, occurredAt: now,
      payload: { user_id: r.memberExternalId, definition_id: r.definitionId, reward_id: r.id, kind: r.kind, reward: r },
    }]);
  }

  /** Locks the reward a claim by milestone names; every refusal is a typed error with the Loyalteez reason. */
  async function lockByMilestone(client: PoolClient, tenantId: string, t: Extract<ClaimTarget, { threshold: number }>, now: number): Promise<StoredReward> {
    const def = await catalog.get(tenantId, t.definitionId);
    if (!def) throw notFoundError("definition", { definition_id: t.definitionId });
    const milestone = milestoneMessage(def, t.threshold);
    if (!milestone?.reward) {
      throw new EngineError("INVALID_ARGUMENT", "INVALID_MILESTONE", `the definition has no milestone with a reward at ${t.threshold}`, { threshold: String(t.threshold) });
    }
    const member = await client.query<{ id: string }>("select id from member where tenant_id = $1 and external_id = $2", [tenantId, t.memberExternalId]);
    const memberId = member.rows[0]?.id;
    if (!memberId) throw notFoundError("member", { member_external_id: t.memberExternalId });
    const { rows } = await client.query<Row>(
      `select ${COLUMNS} ${FROM} where r.tenant_id = $1 and r.member_id = $2 and r.definition_id = $3 and r.threshold = $4
        order by r.created_at, r.id for update of r`,
      [tenantId, memberId, t.definitionId, t.threshold],
    );
    const picked = pickClaimable(rows.map(stored), now);
    if (picked?.ok) return picked.reward;
    if (picked) throw claimRefusal(picked.reason, t.threshold);
    const current = await currentCount(client, tenantId, memberId, t.definitionId, now);
    throw new EngineError("FAILED_PRECONDITION", "STREAK_TOO_SHORT", `the streak is ${current}, the milestone needs ${t.threshold}`, {
      required: String(t.threshold),
      current: String(current),
    });
  }

  return {
    async list(actor, q) {
      assertOwn(actor, q.memberExternalId, q.definitionId);
      const memberExternalId = actor.ownMemberExternalId ?? q.memberExternalId;
      const definitionId = actor.ownDefinitionId ?? q.definitionId;
      const where = ["r.tenant_id = $1"];
      const params: unknown[] = [actor.tenantId];
      const add = (sql: string, ...values: unknown[]) => {
        const refs = values.map((v) => {
          params.push(v);
          return `$${params.length}`;
        });
        where.push(refs.reduce((s, ref) => s.replace("?", ref), sql));
      };
      if (memberExternalId !== undefined) add("m.external_id = ?", memberExternalId);
      if (definitionId !== undefined) add("r.definition_id = ?", definitionId);
      if (q.states.length > 0) add("r.state = any(?::text[])", q.states);
      if (q.after) add("(r.created_at, r.id) < (?, ?::uuid)", new Date(q.after[0]), q.after[1]);
      params.push(q.limit);
      const { rows } = await pool.query<Row>(`select ${COLUMNS} ${FROM} where ${where.join(" and ")} order by r.created_at desc, r.id desc limit $${params.length}`, params);
      return rows.map(stored);
    },

    async get(actor, rewardId) {
      const { rows } = await pool.query<Row>(`select ${COLUMNS} ${FROM} where r.tenant_id = $1 and r.id = $2`, [actor.tenantId, rewardId]);
      if (!rows[0]) throw notFoundError("reward", { reward_id: rewardId });
      const r = stored(rows[0]);
      assertOwn(actor, r.memberExternalId, r.definitionId);
      return r;
    },

    async claim(actor, target) {
      if ("memberExternalId" in target) assertOwn(actor, target.memberExternalId, target.definitionId);
      return inTransaction(pool, async (client) => {
        const now = deps.now();
        let reward: StoredReward;
        if ("rewardId" in target) {
          reward = await lockById(client, actor.tenantId, target.rewardId);
          assertOwn(actor, reward.memberExternalId, reward.definitionId);
          const decision = claimDecision(reward, now);
          if (!decision.ok) throw claimRefusal(decision.reason, reward.threshold);
        } else {
          reward = await lockByMilestone(client, actor.tenantId, target, now);
        }
        // The row is locked and was AVAILABLE; the state condition still guards the single transition.
        const { rows } = await client.query<{ id: string }>(
          "update reward set state = 'CLAIMED', claimed_at = $3, updated_at = $3 where tenant_id = $1 and id = $2 and state = 'AVAILABLE' returning id",
          [actor.tenantId, reward.id, new Date(now)],
        );
        if (rows.length === 0) throw claimRefusal("ALREADY_CLAIMED", reward.threshold);
        const def = await catalog.get(actor.tenantId, reward.definitionId);
        const credited = pointsCreditedOnClaim(reward, def ? milestoneMessage(def, reward.threshold)?.reward?.provider !== undefined : false);
        if (credited > 0) {
          // Credited in the claiming transaction, behind the AVAILABLE -> CLAIMED guard: exactly once per reward.
          await client.query("update member set points_balance = points_balance + $3, updated_at = $4 where tenant_id = $1 and id = $2", [
            actor.tenantId, reward.memberId, credited, new Date(now),
          ]);
        }
        const claimed: StoredReward = { ...reward, state: "CLAIMED", claimedAt: now, updatedAt: now };
        await rewardEvent(client, actor.tenantId, "reward.claimed", claimed, `reward:${reward.id}:claimed`, now);
        await enqueueOutbox(client, actor.tenantId, "reward.claimed", `reward:${reward.id}:claimed`, { rewardId: reward.id, tenantId: actor.tenantId });
        return { reward: claimed, creditedPoints: credited, currentCount: await currentCount(client, actor.tenantId, reward.memberId, reward.definitionId, now) };
      });
    },

    async updateFulfilment(actor, rewardId, patch) {
      return inTransaction(pool, async (client) => {
        const now = deps.now();
        const reward = await lockById(client, actor.tenantId, rewardId);
        const outcome = applyFulfilment(reward, patch, now);
        if (!outcome.ok) {
          throw new EngineError("FAILED_PRECONDITION", outcome.reason, `a ${reward.state} ${reward.mode} reward cannot be updated`, { state: reward.state, mode: reward.mode });
        }
        const n = outcome.next;
        await client.query(
          `update reward set state = $3, coupon_code = $4, issued_at = $5, expiry_at = $6, updated_at = $7
            where tenant_id = $1 and id = $2 and state = $8`,
          [actor.tenantId, rewardId, n.state, n.couponCode, date(n.issuedAt), date(n.expiryAt), new Date(now), reward.state],
        );
        const updated: StoredReward = { ...reward, ...n, updatedAt: now };
        if (outcome.becameIssued) await rewardEvent(client, actor.tenantId, "reward.issued", updated, `reward:${rewardId}:issued`, now);
        // Every recorded fulfilment is news for the reward's workflow, so each gets its own message.
        await enqueueOutbox(client, actor.tenantId, "reward.fulfilled", `reward:${rewardId}:fulfilled:${randomUUID()}`, { rewardId, tenantId: actor.tenantId });
        return updated;
      });
    },

    async retry(actor, rewardId) {
      return inTransaction(pool, async (client) => {
        const now = deps.now();
        const reward = await lockById(client, actor.tenantId, rewardId);
        const decision = retryDecision(reward, reward.attempts);
        if (!decision.ok) throw new EngineError("FAILED_PRECONDITION", decision.reason, `only FAILED rewards can be retried; this one is ${reward.state}`, { state: reward.state });
        await client.query(
          "update reward set state = 'PENDING', attempts = $3, updated_at = $4 where tenant_id = $1 and id = $2 and state = 'FAILED'",
          [actor.tenantId, rewardId, decision.attempt, new Date(now)],
        );
        await enqueueOutbox(client, actor.tenantId, "reward.retry", `reward:${rewardId}:retry:${decision.attempt}`, {
          rewardId, tenantId: actor.tenantId, memberId: reward.memberId, definitionId: reward.definitionId, attempt: decision.attempt,
        });
        return { ...reward, state: "PENDING", attempts: decision.attempt, updatedAt: now };
      });
    },
  };
}

function claimRefusal(reason: "REWARD_NOT_CLAIMABLE" | "ALREADY_CLAIMED" | "REWARD_EXPIRED", threshold: number): EngineError {
  const messages = {
    REWARD_NOT_CLAIMABLE: "the reward is not fulfilled by claiming",
    ALREADY_CLAIMED: "the milestone's reward was already claimed",
    REWARD_EXPIRED: "the claim deadline has passed",
  };
  return new EngineError("FAILED_PRECONDITION", reason, messages[reason], { threshold: String(threshold) });
}
