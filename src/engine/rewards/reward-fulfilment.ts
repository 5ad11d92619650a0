// The reward lifecycle's writes, as used by the reward workflow's activities (PRODUCT §5 "Reward fulfilment").
// Every write is a conditional UPDATE on the reward's state in one transaction with the event it causes, so an
// activity retried after a crash — before or after its commit — ends in the same single outcome:
// - a provider issues a reward with one statement that stores the coupon/points AND marks it ISSUED, guarded by
//   the state; a retry that finds it ISSUED returns what was stored (check-then-set), so there is exactly one
//   coupon even if the worker dies between the commit and the activity's completion;
// - the points ledger credits the balance in the same statement that marks the reward ISSUED, so at most once;
// - a pool code is taken in the same transaction that issues the reward, so a crash before commit takes none.
import { createHmac, randomInt } from "node:crypto";
import type { Pool, PoolClient } from "pg";
import type { CatalogDefinition, DefinitionCatalog } from "../definitions/definition-catalog.ts";
import { milestoneMessage } from "./reward-plan.ts";
import type { FulfilmentMode, RewardState } from "../../db/entities/index.ts";
import { inTransaction } from "../transaction.ts";

export type ProviderSettings =
  | { readonly kind: "CODE_GENERATOR"; readonly prefix: string; readonly length: number }
  | { readonly kind: "CODE_POOL"; readonly codes: readonly string[] }
  | { readonly kind: "POINTS_LEDGER"; readonly currency: string }
  | { readonly kind: "WEBHOOK"; readonly url: string; readonly secret: string };

export interface ProviderPolicy {
  readonly maxAttempts: number;
  readonly attemptTimeoutMs: number;
}

/** What the reward workflow needs to decide its next step; plain JSON (it crosses into workflow code). */
export interface RewardSnapshot {
  readonly id: string;
  readonly tenantId: string;
  readonly memberId: string;
  readonly definitionId: string;
  readonly kind: string;
  readonly mode: FulfilmentMode;
  readonly state: RewardState;
  readonly couponCode: string | null;
  readonly issuedAt: number | null;
  readonly expiryAt: number | null;
  readonly claimDeadlineAt: number | null;
  /** Null when the milestone has no provider (EXTERNAL, or CLAIM fulfilled by the tenant). */
  readonly provider: ProviderPolicy | null;
}

/** Thrown for failures no retry can fix; the activity turns it into a non-retryable ApplicationFailure. */
export class PermanentProviderError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.name = "PermanentProviderError";
    this.reason = reason;
  }
}

const DEFAULT_MAX_ATTEMPTS = 10;
const DEFAULT_ATTEMPT_TIMEOUT_MS = 10_000;
const DEFAULT_CODE_LENGTH = 10;
// No 0/O or 1/I: codes are read off screens and typed at tills.
const CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

interface RewardRow {
  id: string; tenant_id: string; member_id: string; definition_id: string; threshold: number; kind: string; mode: FulfilmentMode; state: RewardState;
  coupon_code: string | null; issued_at: Date | null; expiry_at: Date | null; claim_deadline_at: Date | null; points: number; multiplier: number;
  name: string; value: string; external_id: string;
}

const REWARD_COLUMNS = `r.id, r.tenant_id, r.member_id, r.definition_id, r.threshold, r.kind, r.mode, r.state, r.coupon_code, r.issued_at, r.expiry_at,
  r.claim_deadline_at, r.points, r.multiplier, r.name, r.value, m.external_id`;

async function readReward(client: Pick<PoolClient, "query">, tenantId: string, rewardId: string, lock = false): Promise<RewardRow | undefined> {
  if (lock) {
    // The lock names the reward's member (it never changes): on Citus a row lock is only taken by a statement on one
    // shard, and the reward's shard is its member's (migration 0018).
    const memberId = await rewardMemberId(client, tenantId, rewardId);
    if (memberId === undefined) return undefined;
    const { rows } = await client.query<RewardRow>(
      `select ${REWARD_COLUMNS} from reward r join member m on m.id = r.member_id
        where r.tenant_id = $1 and r.id = $2 and r.member_id = $3 and m.id = $3 for update of r`,
      [tenantId, rewardId, memberId],
    );
    return rows[0];
  }
  const { rows } = await client.query<RewardRow>(
    `select ${REWARD_COLUMNS} from reward r join member m on m.id = r.member_id
      where r.tenant_id = $1 and r.id = $2`,
    [tenantId, rewardId],
  );
  return rows[0];
}

/** The member a reward belongs to, read without a lock (a reward's member never changes). */
export async function rewardMemberId(client: Pick<PoolClient, "query">, tenantId: string, rewardId: string): Promise<string | undefined> {
  const { rows } = await client.query<{ member_id: string }>("select member_id from reward where tenant_id = $1 and id = $2", [tenantId, rewardId]);
  return rows[0]?.member_id;
}

export function providerOf(def: CatalogDefinition | undefined, threshold: number): { settings: ProviderSettings; policy: ProviderPolicy } | null {
  const provider = def === undefined ? undefined : milestoneMessage(def, threshold)?.reward?.provider;
  if (!provider) return null;
  const timeout = provider.attemptTimeoutDuration;
  const policy: ProviderPolicy = {
    maxAttempts: provider.maxAttempts || DEFAULT_MAX_ATTEMPTS,
    attemptTimeoutMs: timeout ? Number(timeout.seconds) * 1000 + Math.round(timeout.nanos / 1e6) : DEFAULT_ATTEMPT_TIMEOUT_MS,
  };
  const k = provider.kind;
  switch (k.case) {
    case "codeGenerator":
      return { policy, settings: { kind: "CODE_GENERATOR", prefix: k.value.prefix, length: k.value.length || DEFAULT_CODE_LENGTH } };
    case "codePool":
      return { policy, settings: { kind: "CODE_POOL", codes: k.value.codes } };
    case "pointsLedger":
      return { policy, settings: { kind: "POINTS_LEDGER", currency: k.value.currency } };
    case "webhook":
      return { policy, settings: { kind: "WEBHOOK", url: k.value.url, secret: k.value.secret } };
    default:
      return null;
  }
}

function couponValidityMs(def: CatalogDefinition | undefined, threshold: number): number | null {
  const v = def === undefined ? undefined : milestoneMessage(def, threshold)?.reward?.coupon?.validityDuration;
  return v ? Number(v.seconds) * 1000 + Math.round(v.nanos / 1e6) : null;
}

function snapshot(row: RewardRow, def: CatalogDefinition | undefined): RewardSnapshot {
  return {
    id: row.id, tenantId: row.tenant_id, memberId: row.member_id, definitionId: row.definition_id, kind: row.kind, mode: row.mode, state: row.state,
    couponCode: row.coupon_code, issuedAt: row.issued_at?.getTime() ?? null, expiryAt: row.expiry_at?.getTime() ?? null,
    claimDeadlineAt: row.claim_deadline_at?.getTime() ?? null, provider: providerOf(def, row.threshold)?.policy ?? null,
  };
}

/** A random code from the unambiguous alphabet; crypto-random and unbiased (randomInt rejects modulo bias). */
export function generateCouponCode(prefix: string, length: number): string {
  let code = prefix;
  for (let i = 0; i < length; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return code;
}

export interface RewardEngineDeps {
  readonly pool: Pool;
  readonly catalog: DefinitionCatalog;
  readonly fetch?: typeof fetch;
  /** Fault injection for crash tests: runs after a provider's issuing transaction committed. */
  readonly afterIssueCommitted?: (rewardId: string, couponCode: string | null) => void | Promise<void>;
}

type EventType = "reward.issued" | "reward.claimed" | "reward.expired" | "reward.failed";

async function insertRewardEvent(client: Pick<PoolClient, "query">, row: RewardRow, type: EventType, dedupeKey: string, extra: Record<string, unknown>, at: number): Promise<void> {
  const payload = { user_id: row.external_id, definition_id: row.definition_id, reward_id: row.id, kind: row.kind, threshold: row.threshold, ...extra };
  await client.query(
    `insert into streak_event (tenant_id, type, member_id, definition_id, dedupe_key, payload, occurred_at, created_at)
     values ($1, $2, $3, $4, $5, $6, $7, now())`,
    [row.tenant_id, type, row.member_id, row.definition_id, dedupeKey, JSON.stringify(payload), new Date(at)],
  );
}

// Dedupe keys of reward events; `reward:<id>:issued` is also what recording activity writes for rewards issued
// on the spot (streak-events.ts), so either path emits it once.
export const rewardEventKey = {
  issued: (id: string) => `reward:${id}:issued`,
  claimed: (id: string) => `reward:${id}:claimed`,
  expired: (id: string) => `reward:${id}:expired`,
  failed: (id: string, attempt: number) => `reward:${id}:failed:${attempt}`,
};

/** States a provider may issue from: PROVIDER rewards while PENDING, CLAIM rewards once claimed, and a retry. */
const ISSUABLE: readonly RewardState[] = ["PENDING", "CLAIMED", "FAILED"];

export interface IssueResult {
  readonly snapshot: RewardSnapshot;
  /** False when an earlier attempt had already issued it (the stored coupon is returned). */
  readonly issuedNow: boolean;
}

export function createRewardEngine(deps: RewardEngineDeps) {
  const { pool, catalog } = deps;
  const doFetch = deps.fetch ?? fetch;

  async function load(tenantId: string, rewardId: string): Promise<RewardSnapshot | null> {
    const row = await readReward(pool, tenantId, rewardId);
    if (!row) return null;
    return snapshot(row, await catalog.get(tenantId, row.definition_id));
  }

  /** Marks ISSUED with what the provider produced, plus the reward.issued event, if still issuable. */
  async function markIssued(client: PoolClient, row: RewardRow, def: CatalogDefinition | undefined, issue: { couponCode: string | null; expiryAt: number | null }, attempt: number, now: number): Promise<boolean> {
    const validity = couponValidityMs(def, row.threshold);
    const expiryAt = issue.expiryAt ?? (validity !== null && row.kind === "COUPON" ? now + validity : null);
    const { rowCount } = await client.query(
      `update reward set state = 'ISSUED', coupon_code = coalesce($3, coupon_code), issued_at = $4, expiry_at = coalesce($5, expiry_at),
         failure_reason = null, attempts = greatest(attempts, $6), updated_at = $4
       where tenant_id = $1 and id = $2 and state = any($7::text[]) and member_id = $8`,
      [row.tenant_id, row.id, issue.couponCode, new Date(now), expiryAt === null ? null : new Date(expiryAt), attempt, ISSUABLE, row.member_id],
    );
    if (rowCount === 0) return false;
    await insertRewardEvent(client, row, "reward.issued", rewardEventKey.issued(row.id), { coupon_code: issue.couponCode, expiry_time: expiryAt === null ? null : new Date(expiryAt).toISOString() }, now);
    return true;
  }

  async function callWebhook(settings: Extract<ProviderSettings, { kind: "WEBHOOK" }>, policy: ProviderPolicy, row: RewardRow, attempt: number): Promise<{ couponCode: string | null; expiryAt: number | null }> {
    if (!settings.secret) throw new PermanentProviderError("WEBHOOK_SECRET_MISSING", "the webhook provider has no secret to sign requests with");
    const body = JSON.stringify({
      reward_id: row.id, tenant_id: row.tenant_id, user_id: row.external_id, definition_id: row.definition_id, milestone_threshold: row.threshold,
      kind: row.kind, name: row.name, value: row.value, points: row.points, attempt,
    });
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = createHmac("sha256", settings.secret).update(`${timestamp}.${body}`).digest("hex");
    const response = await doFetch(settings.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "kindling-timestamp": timestamp,
        "kindling-signature": `sha256=${signature}`,
        // The same reward is POSTed again if Kindling crashed after the call: the tenant dedupes on this.
        "idempotency-key": row.id,
      },
      body,
      signal: AbortSignal.timeout(policy.attemptTimeoutMs),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`webhook answered HTTP ${response.status}`);
    let parsed: { coupon_code?: unknown; expiry_time?: unknown } = {};
    try {
      parsed = text ? (JSON.parse(text) as typeof parsed) : {};
    } catch {
      parsed = {};
    }
    const expiry = typeof parsed.expiry_time === "string" ? Date.parse(parsed.expiry_time) : Number.NaN;
    return { couponCode: typeof parsed.coupon_code === "string" ? parsed.coupon_code : null, expiryAt: Number.isFinite(expiry) ? expiry : null };
  }

  /**
   * Issues the reward through its milestone's provider. Idempotent: an already ISSUED reward is returned as is.
   * Throws PermanentProviderError for what retrying cannot fix, any other error for what it may.
   */
  async function issue(tenantId: string, rewardId: string, attempt: number, now: number): Promise<IssueResult> {
    const existing = await readReward(pool, tenantId, rewardId);
    if (!existing) throw new PermanentProviderError("REWARD_NOT_FOUND", `reward ${rewardId} not found`);
    const def = await catalog.get(tenantId, existing.definition_id);
    if (existing.state === "ISSUED") return { snapshot: snapshot(existing, def), issuedNow: false };
    if (!ISSUABLE.includes(existing.state)) throw new PermanentProviderError("REWARD_NOT_ISSUABLE", `reward is ${existing.state}`);
    const provider = providerOf(def, existing.threshold);
    if (!provider) throw new PermanentProviderError("NO_PROVIDER", "the milestone has no provider configured");
    const { settings, policy } = provider;

    // The webhook is called outside the transaction: no row lock is held across a network call.
    const fromWebhook = settings.kind === "WEBHOOK" ? await callWebhook(settings, policy, existing, attempt) : null;
    let couponCode: string | null = null;
    const issuedNow = await inTransaction(pool, async (client) => {
      const row = await readReward(client, tenantId, rewardId, true);
      if (!row || !ISSUABLE.includes(row.state)) return false;
      switch (settings.kind) {
        case "CODE_GENERATOR":
          couponCode = generateCouponCode(settings.prefix, settings.length);
          return markIssued(client, row, def, { couponCode, expiryAt: null }, attempt, now);
        case "CODE_POOL":
          couponCode = await takePoolCode(client, row, settings.codes);
          return markIssued(client, row, def, { couponCode, expiryAt: null }, attempt, now);
        case "POINTS_LEDGER": {
          const issued = await markIssued(client, row, def, { couponCode: null, expiryAt: null }, attempt, now);
          // Same transaction as the state change that gates it: the balance moves exactly once per reward.
          if (issued) await client.query("update member set points_balance = points_balance + $3, updated_at = now() where tenant_id = $1 and id = $2", [row.tenant_id, row.member_id, row.points]);
          return issued;
        }
        case "WEBHOOK":
          couponCode = fromWebhook?.couponCode ?? null;
          return markIssued(client, row, def, { couponCode, expiryAt: fromWebhook?.expiryAt ?? null }, attempt, now);
      }
    });
    if (issuedNow) await deps.afterIssueCommitted?.(rewardId, couponCode);
    const after = await readReward(pool, tenantId, rewardId);
    if (!after) throw new PermanentProviderError("REWARD_NOT_FOUND", `reward ${rewardId} not found`);
    if (after.state !== "ISSUED") throw new PermanentProviderError("REWARD_NOT_ISSUABLE", `reward is ${after.state}`);
    return { snapshot: snapshot(after, def), issuedNow };
  }

  /** Marks a reward FAILED after its provider gave up (PENDING/CLAIMED only: never un-issues). */
  async function markFailed(tenantId: string, rewardId: string, attempt: number, reason: string, now: number): Promise<RewardSnapshot | null> {
    await inTransaction(pool, async (client) => {
      const row = await readReward(client, tenantId, rewardId, true);
      if (!row || (row.state !== "PENDING" && row.state !== "CLAIMED")) return;
      await client.query("update reward set state = 'FAILED', failure_reason = $3, attempts = greatest(attempts, $4), updated_at = $5 where tenant_id = $1 and id = $2 and member_id = $6", [tenantId, rewardId, reason, attempt, new Date(now), row.member_id]);
      await insertRewardEvent(client, row, "reward.failed", rewardEventKey.failed(rewardId, attempt), { failure_reason: reason }, now);
    });
    return load(tenantId, rewardId);
  }

  /** CLAIM deadline passed: AVAILABLE → EXPIRED, unless the member claimed first (then nothing changes). */
  async function expireUnclaimed(tenantId: string, rewardId: string, now: number): Promise<RewardSnapshot | null> {
    await inTransaction(pool, async (client) => {
      const row = await readReward(client, tenantId, rewardId, true);
      if (row && (row.state === "CLAIMED" || row.state === "ISSUED")) {
        // Claimed before the deadline; the signal is still on its way.
        await insertRewardEvent(client, row, "reward.claimed", rewardEventKey.claimed(rewardId), {}, now);
        return;
      }
      if (!row || row.state !== "AVAILABLE" || row.claim_deadline_at === null || row.claim_deadline_at.getTime() > now) return;
      await client.query("update reward set state = 'EXPIRED', updated_at = $3 where tenant_id = $1 and id = $2 and state = 'AVAILABLE' and member_id = $4", [tenantId, rewardId, new Date(now), row.member_id]);
      await insertRewardEvent(client, row, "reward.expired", rewardEventKey.expired(rewardId), { reason: "CLAIM_DEADLINE_PASSED" }, row.claim_deadline_at.getTime());
    });
    return load(tenantId, rewardId);
  }

  /**
   * expiry_at passed. A reward never handed out (PENDING/CLAIMED) becomes EXPIRED; an ISSUED coupon stays
   * ISSUED — it was handed out, RewardState.EXPIRED means "not claimed in time" — and reward.expired says the
   * coupon's validity ended. Either way once, and only if expiry_at (which a PATCH may move) really passed.
   */
  async function expireAtExpiry(tenantId: string, rewardId: string, now: number): Promise<RewardSnapshot | null> {
    await inTransaction(pool, async (client) => {
      const row = await readReward(client, tenantId, rewardId, true);
      if (!row || row.expiry_at === null || row.expiry_at.getTime() > now) return;
      if (row.state === "PENDING" || row.state === "CLAIMED") {
        await client.query("update reward set state = 'EXPIRED', updated_at = $3 where tenant_id = $1 and id = $2 and state in ('PENDING', 'CLAIMED') and member_id = $4", [tenantId, rewardId, new Date(now), row.member_id]);
        await insertRewardEvent(client, row, "reward.expired", rewardEventKey.expired(rewardId), { reason: "EXPIRED_BEFORE_ISSUE" }, row.expiry_at.getTime());
      } else if (row.state === "ISSUED") {
        await insertRewardEvent(client, row, "reward.expired", rewardEventKey.expired(rewardId), { reason: "COUPON_EXPIRED", coupon_code: row.coupon_code }, row.expiry_at.getTime());
      }
    });
    return load(tenantId, rewardId);
  }

  /** The tenant recorded fulfilment (the API already moved the row): make sure its events exist. */
  async function confirmExternal(tenantId: string, rewardId: string, now: number): Promise<RewardSnapshot | null> {
    const row = await readReward(pool, tenantId, rewardId);
    if (row?.state === "ISSUED") {
      await insertRewardEvent(pool, row, "reward.issued", rewardEventKey.issued(rewardId), { coupon_code: row.coupon_code, expiry_time: row.expiry_at?.toISOString() ?? null }, row.issued_at?.getTime() ?? now);
    }
    return load(tenantId, rewardId);
  }

  /** The member claimed (ClaimReward committed CLAIMED): make sure reward.claimed exists. */
  async function confirmClaimed(tenantId: string, rewardId: string, now: number): Promise<RewardSnapshot | null> {
    const row = await readReward(pool, tenantId, rewardId);
    if (row && row.state !== "AVAILABLE" && row.state !== "EXPIRED" && row.state !== "PENDING") {
      await insertRewardEvent(pool, row, "reward.claimed", rewardEventKey.claimed(rewardId), {}, now);
    }
    return load(tenantId, rewardId);
  }

  return { load, issue, markFailed, expireUnclaimed, expireAtExpiry, confirmExternal, confirmClaimed };
}

export type RewardEngine = ReturnType<typeof createRewardEngine>;

/** The reward's pool code: the one it already took, else the first code of the pool nobody has taken. */
async function takePoolCode(client: PoolClient, row: RewardRow, codes: readonly string[]): Promise<string> {
  const mine = await client.query<{ code: string }>("select code from reward_code_pool_usage where reward_id = $1", [row.id]);
  if (mine.rows[0]) return mine.rows[0].code;
  // A concurrent fulfilment may take the same next code first: its insert wins the primary key, ours inserts
  // nothing, and the next round sees that code as used.
  for (let round = 0; round < 20; round++) {
    const { rows } = await client.query<{ code: string }>(
      `insert into reward_code_pool_usage (tenant_id, definition_id, threshold, code, reward_id, created_at)
       select $1, $2, $3, c.code, $4, now()
         from unnest($5::text[]) with ordinality as c(code, ord)
        where not exists (select 1 from reward_code_pool_usage u where u.tenant_id = $1 and u.definition_id = $2 and u.threshold = $3 and u.code = c.code)
        order by c.ord
        limit 1
       on conflict do nothing
       returning code`,
      [row.tenant_id, row.definition_id, row.threshold, row.id, codes],
    );
    if (rows[0]) return rows[0].code;
    const left = await client.query<{ n: number }>(
      `select count(*)::int as n from unnest($4::text[]) as c(code)
        where not exists (select 1 from reward_code_pool_usage u where u.tenant_id = $1 and u.definition_id = $2 and u.threshold = $3 and u.code = c.code)`,
      [row.tenant_id, row.definition_id, row.threshold, codes],
    );
    if ((left.rows[0]?.n ?? 0) === 0) throw new PermanentProviderError("CODE_POOL_EXHAUSTED", "every code of the pool has been handed out");
  }
  throw new Error("code pool contention: retry");
}
