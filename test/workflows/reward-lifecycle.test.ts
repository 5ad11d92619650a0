// The reward lifecycle workflow on a time-skipping Temporal server against real PostgreSQL: rewards are created
// by recording activity that crosses a milestone (the real ingestor), then driven by the workflow with days
// passing in milliseconds — coupon validity, claim deadlines, claims, a code pool running dry, an EXTERNAL PATCH.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestWorkflowEnvironment } from "@temporalio/testing";
import { Worker } from "@temporalio/worker";
import { FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createTimeSkippingEnvironment, uniqueTaskQueue } from "../support/temporal.ts";
import { createOrchestrationDb, dailyUtc, DAY, HOUR, type OrchestrationDb } from "../support/orchestration.ts";
import { createActivities } from "../../src/activities/index.ts";
import { createRewardEngine } from "../../src/engine/rewards/reward-fulfilment.ts";
import { createDefinitionCatalog } from "../../src/engine/definitions/definition-catalog.ts";
import { WORKFLOWS_PATH } from "../../workers/worker.ts";
import { rewardClaimedSignal, rewardFulfilledSignal, rewardWorkflowId, type RewardInput } from "../../src/workflows/messages.ts";
import type { rewardLifecycleWorkflow } from "../../src/workflows/reward-lifecycle.workflow.ts";

let env: TestWorkflowEnvironment;
let db: OrchestrationDb;
let worker: Worker;
let running: Promise<void>;
const taskQueue = uniqueTaskQueue("reward");

beforeAll(async () => {
  [env, db] = await Promise.all([createTimeSkippingEnvironment(), createOrchestrationDb("reward")]);
  worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: WORKFLOWS_PATH, activities: createActivities({ pool: db.pool }) });
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
  await db?.close();
});

const milestone = (reward: Record<string, unknown>) => ({ milestones: [{ threshold: 1, reward }] });

/** Records one activity that crosses the threshold-1 milestone; returns the workflow input for its reward. */
async function earn(member: string, definitionId: string): Promise<RewardInput> {
  const now = await env.currentTimeMs();
  const result = await db.record(member, definitionId, now, now);
  const reward = result.streaks[0]!.rewards[0]!;
  return { version: 1, tenantId: db.tenantId, rewardId: reward.id, memberId: reward.memberId, definitionId, attempt: 0 };
}

function start(input: RewardInput) {
  return env.client.workflow.start<typeof rewardLifecycleWorkflow>("rewardLifecycleWorkflow", { taskQueue, workflowId: rewardWorkflowId(input.tenantId, input.rewardId, input.attempt), args: [input] });
}

async function reward(id: string) {
  const { rows } = await db.pool.query("select state, coupon_code, issued_at, expiry_at, claim_deadline_at, failure_reason from reward where id = $1", [id]);
  return rows[0] as { state: string; coupon_code: string | null; issued_at: Date | null; expiry_at: Date | null; claim_deadline_at: Date | null; failure_reason: string | null };
}

async function rewardEvents(id: string) {
  const { rows } = await db.pool.query<{ type: string; occurred_at: Date; payload: Record<string, unknown> }>(
    "select type, occurred_at, payload from streak_event where payload->>'reward_id' = $1 and type like 'reward.%' order by id",
    [id],
  );
  return rows;
}

describe("reward lifecycle", () => {
  it("provider/code_generator_issues_one_coupon_that_expires_after_its_validity", async () => {
    const def = await db.definition(dailyUtc({
      name: "Coupon",
      ...milestone({
        kind: RewardKind.COUPON, fulfilmentMode: FulfilmentMode.PROVIDER, coupon: { validityDuration: { seconds: BigInt(7 * 86_400) } },
        provider: { kind: { case: "codeGenerator", value: { prefix: "WEEK-", length: 8 } } },
      }),
    }));
    const input = await earn("cam", def);
    expect(await start(input).then((h) => h.result())).toBe("ISSUED");
    const r = await reward(input.rewardId);
    expect(r.state).toBe("ISSUED");
    expect(r.coupon_code).toMatch(/^WEEK-[A-HJ-NP-Z2-9]{8}$/);
    expect(r.expiry_at!.getTime() - r.issued_at!.getTime()).toBe(7 * DAY);
    const events = await rewardEvents(input.rewardId);
    expect(events.map((e) => e.type)).toEqual(["reward.issued", "reward.expired"]);
    expect(events[1]!.occurred_at.getTime()).toBe(r.expiry_at!.getTime());
    expect(events[1]!.payload).toMatchObject({ reason: "COUPON_EXPIRED", coupon_code: r.coupon_code });

    // Issuing again (an activity retried after the worker died post-commit) returns the stored coupon.
    const engine = createRewardEngine({ pool: db.pool, catalog: createDefinitionCatalog(db.pool, 0) });
    const again = await engine.issue(db.tenantId, input.rewardId, 0, await env.currentTimeMs());
    expect(again).toMatchObject({ issuedNow: false, snapshot: { couponCode: r.coupon_code } });
  });

  it("claim/unclaimed_reward_expires_at_its_claim_deadline", async () => {
    const def = await db.definition(dailyUtc({
      name: "Claim",
      ...milestone({ kind: RewardKind.POINTS, points: 100, fulfilmentMode: FulfilmentMode.CLAIM, claimDeadlineDuration: { seconds: BigInt(86_400) } }),
    }));
    const input = await earn("cleo", def);
    expect((await reward(input.rewardId)).state).toBe("AVAILABLE");
    expect(await start(input).then((h) => h.result())).toBe("EXPIRED");
    const r = await reward(input.rewardId);
    expect(r.state).toBe("EXPIRED");
    const events = await rewardEvents(input.rewardId);
    expect(events.map((e) => e.type)).toEqual(["reward.expired"]);
    expect(events[0]!.occurred_at.getTime()).toBe(r.claim_deadline_at!.getTime());
  });

  it("claim/claimed_before_deadline_is_issued_by_the_points_ledger_once", async () => {
    const def = await db.definition(dailyUtc({
      name: "Claim ledger",
      ...milestone({
        kind: RewardKind.POINTS, points: 100, fulfilmentMode: FulfilmentMode.CLAIM, claimDeadlineDuration: { seconds: BigInt(86_400) },
        provider: { kind: { case: "pointsLedger", value: { currency: "LTZ" } } },
      }),
    }));
    const input = await earn("lee", def);
    const handle = await start(input);
    await env.sleep(HOUR);
    // What ClaimReward commits before it enqueues reward.claimed.
    await db.pool.query("update reward set state = 'CLAIMED', claimed_at = now() where id = $1 and state = 'AVAILABLE'", [input.rewardId]);
    await handle.signal(rewardClaimedSignal);
    expect(await handle.result()).toBe("ISSUED");
    expect((await reward(input.rewardId)).state).toBe("ISSUED");
    const { rows } = await db.pool.query<{ points_balance: number }>("select points_balance from member where id = $1", [input.memberId]);
    expect(rows[0]!.points_balance).toBe(100);
    expect((await rewardEvents(input.rewardId)).map((e) => e.type)).toEqual(["reward.claimed", "reward.issued"]);

    // A second run of the ledger (retry after a crash) credits nothing more.
    const engine = createRewardEngine({ pool: db.pool, catalog: createDefinitionCatalog(db.pool, 0) });
    await engine.issue(db.tenantId, input.rewardId, 0, await env.currentTimeMs());
    const after = await db.pool.query<{ points_balance: number }>("select points_balance from member where id = $1", [input.memberId]);
    expect(after.rows[0]!.points_balance).toBe(100);
  });

  it("provider/code_pool_hands_each_code_out_once_and_fails_when_dry", async () => {
    const def = await db.definition(dailyUtc({
      name: "Pool",
      ...milestone({ kind: RewardKind.COUPON, fulfilmentMode: FulfilmentMode.PROVIDER, provider: { kind: { case: "codePool", value: { codes: ["ONLY-ONE"] } } } }),
    }));
    const first = await earn("pia", def);
    const second = await earn("pim", def);
    expect(await start(first).then((h) => h.result())).toBe("ISSUED");
    expect(await start(second).then((h) => h.result())).toBe("FAILED");
    expect(await reward(first.rewardId)).toMatchObject({ state: "ISSUED", coupon_code: "ONLY-ONE" });
    const failed = await reward(second.rewardId);
    expect(failed.state).toBe("FAILED");
    expect(failed.failure_reason).toContain("CODE_POOL_EXHAUSTED");
    expect((await rewardEvents(second.rewardId)).map((e) => e.type)).toEqual(["reward.failed"]);
  });

  it("external/tenant_fulfilment_is_confirmed_and_its_coupon_expires", async () => {
    const def = await db.definition(dailyUtc({ name: "External", ...milestone({ kind: RewardKind.CUSTOM, fulfilmentMode: FulfilmentMode.EXTERNAL }) }));
    const input = await earn("ext", def);
    const handle = await start(input);
    await env.sleep(2 * HOUR);
    const now = await env.currentTimeMs();
    // What UpdateRewardFulfilment commits before it enqueues reward.fulfilled.
    await db.pool.query("update reward set state = 'ISSUED', coupon_code = 'EXT-1', issued_at = $2, expiry_at = $3 where id = $1", [input.rewardId, new Date(now), new Date(now + 2 * DAY)]);
    await handle.signal(rewardFulfilledSignal);
    expect(await handle.result()).toBe("ISSUED");
    expect((await rewardEvents(input.rewardId)).map((e) => e.type)).toEqual(["reward.issued", "reward.expired"]);
  });
});
