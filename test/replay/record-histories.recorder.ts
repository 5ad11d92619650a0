// Records the histories the replay test replays (test/replay/histories/*.json): each workflow, on the
// time-skipping server against real PostgreSQL, through the paths it has. Not part of `npm test` (its name does
// not match the test projects); run it with `node scripts/record-workflow-histories.ts` after a deliberate,
// patched() change to workflow code.
import { writeFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { Worker } from "@temporalio/worker";
import { FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createActivities } from "../../src/activities/index.ts";
import { WORKFLOWS_PATH } from "../../workers/worker.ts";
import { definitionChangedSignal, rewardClaimedSignal, rewardFulfilledSignal, rewardWorkflowId, sweeperWorkflowId, type RewardInput } from "../../src/workflows/messages.ts";
import type { definitionSweeperWorkflow } from "../../src/workflows/definition-sweeper.workflow.ts";
import type { rewardLifecycleWorkflow } from "../../src/workflows/reward-lifecycle.workflow.ts";
import { createTimeSkippingEnvironment, uniqueTaskQueue } from "../support/temporal.ts";
import { createOrchestrationDb, dailyUtc, DAY, HOUR } from "../support/orchestration.ts";
import { historyToFixture } from "./history-json.ts";

const out = (name: string) => new URL(`./histories/${name}.json`, import.meta.url);

describe("record workflow histories", () => {
  it("records every workflow path", { timeout: 300_000 }, async () => {
    const [env, db] = await Promise.all([createTimeSkippingEnvironment(), createOrchestrationDb("record_histories")]);
    const taskQueue = uniqueTaskQueue("record");
    try {
      const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: WORKFLOWS_PATH, activities: createActivities({ pool: db.pool }) });
      await worker.runUntil(async () => {
        const save = async (name: string, workflowId: string) => {
          const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
          await writeFile(out(name), historyToFixture(history));
        };
        const goTo = async (t: number) => {
          const now = await env.currentTimeMs();
          if (t > now) await env.sleep(t - now);
          return env.currentTimeMs();
        };

        // Sweeper: two days of a daily definition — reminders, a break, a freeze, a pause — then archived.
        const rules = { graceDuration: { seconds: 3600n }, atRiskLeadDuration: { seconds: BigInt(4 * 3600) }, freezePolicy: { maxHeld: 1, initialGrant: 0 } };
        const daily = await db.definition(dailyUtc({ name: "Recorded daily", ...rules }));
        const sweeperId = sweeperWorkflowId(db.tenantId, daily);
        const sweeper = await env.client.workflow.start<typeof definitionSweeperWorkflow>("definitionSweeperWorkflow", {
          taskQueue, workflowId: sweeperId, args: [{ version: 1, tenantId: db.tenantId, definitionId: daily, state: "LIVE" }],
        });
        const d0 = Math.ceil(((await env.currentTimeMs()) + HOUR) / DAY) * DAY;
        for (const m of ["ann", "ben"]) await db.record(m, daily, d0 + 10 * HOUR, await goTo(d0 + 10 * HOUR), `${m}-0`);
        await db.record("ann", daily, d0 + DAY + 10 * HOUR, await goTo(d0 + DAY + 10 * HOUR), "ann-1");
        await goTo(d0 + DAY + 12 * HOUR);
        await db.setState(daily, "PAUSED", [{ from: d0 + DAY + 12 * HOUR, to: null }]);
        await sweeper.signal(definitionChangedSignal, { state: "PAUSED", version: 2 });
        await goTo(d0 + 2 * DAY + 12 * HOUR);
        await db.setState(daily, "LIVE", [{ from: d0 + DAY + 12 * HOUR, to: d0 + 2 * DAY + 12 * HOUR }]);
        await sweeper.signal(definitionChangedSignal, { state: "LIVE", version: 3 });
        await goTo(d0 + 4 * DAY);
        await sweeper.signal(definitionChangedSignal, { state: "ARCHIVED", version: 4 });
        await sweeper.result();
        await save("definition-sweeper.week", sweeperId);

        // Rewards, one per path.
        const milestone = (reward: Record<string, unknown>) => ({ milestones: [{ threshold: 1, reward }] });
        const earn = async (member: string, definitionId: string): Promise<RewardInput> => {
          const now = await env.currentTimeMs();
          const recorded = await db.record(member, definitionId, now, now, `${member}-earn`);
          const r = recorded.streaks[0]?.rewards[0];
          if (!r) throw new Error(`no reward for ${member}: ${JSON.stringify(recorded.streaks.map((x) => [x.notAppliedReason, x.outcome]))}`);
          return { version: 1, tenantId: db.tenantId, rewardId: r.id, memberId: r.memberId, definitionId, attempt: 0 };
        };
        const start = (input: RewardInput) =>
          env.client.workflow.start<typeof rewardLifecycleWorkflow>("rewardLifecycleWorkflow", { taskQueue, workflowId: rewardWorkflowId(input.tenantId, input.rewardId), args: [input] });

        const coupon = await db.definition(dailyUtc({ name: "Coupon", ...milestone({
          kind: RewardKind.COUPON, fulfilmentMode: FulfilmentMode.PROVIDER, coupon: { validityDuration: { seconds: BigInt(7 * 86_400) } },
          provider: { kind: { case: "codeGenerator", value: { prefix: "REC-", length: 8 } } },
        }) }));
        const issued = await earn("cy", coupon);
        expect(await (await start(issued)).result()).toBe("ISSUED");
        await save("reward-lifecycle.provider-coupon-expiry", rewardWorkflowId(db.tenantId, issued.rewardId));

        const claim = await db.definition(dailyUtc({ name: "Claim", ...milestone({ kind: RewardKind.POINTS, points: 50, fulfilmentMode: FulfilmentMode.CLAIM, claimDeadlineDuration: { seconds: 86_400n } }) }));
        const unclaimed = await earn("cu", claim);
        expect(await (await start(unclaimed)).result()).toBe("EXPIRED");
        await save("reward-lifecycle.claim-expired", rewardWorkflowId(db.tenantId, unclaimed.rewardId));

        const ledger = await db.definition(dailyUtc({ name: "Ledger", ...milestone({
          kind: RewardKind.POINTS, points: 50, fulfilmentMode: FulfilmentMode.CLAIM, claimDeadlineDuration: { seconds: 86_400n },
          provider: { kind: { case: "pointsLedger", value: { currency: "PTS" } } },
        }) }));
        const claimed = await earn("cl", ledger);
        const claimedHandle = await start(claimed);
        await env.sleep(HOUR);
        await db.pool.query("update reward set state = 'CLAIMED', claimed_at = now() where id = $1", [claimed.rewardId]);
        await claimedHandle.signal(rewardClaimedSignal);
        expect(await claimedHandle.result()).toBe("ISSUED");
        await save("reward-lifecycle.claim-ledger", rewardWorkflowId(db.tenantId, claimed.rewardId));

        const pool = await db.definition(dailyUtc({ name: "Pool", ...milestone({ kind: RewardKind.COUPON, fulfilmentMode: FulfilmentMode.PROVIDER, provider: { kind: { case: "codePool", value: { codes: ["ONE"] } } } }) }));
        await (await start(await earn("p1", pool))).result();
        const dry = await earn("p2", pool);
        expect(await (await start(dry)).result()).toBe("FAILED");
        await save("reward-lifecycle.provider-failed", rewardWorkflowId(db.tenantId, dry.rewardId));

        const external = await db.definition(dailyUtc({ name: "External", ...milestone({ kind: RewardKind.CUSTOM, fulfilmentMode: FulfilmentMode.EXTERNAL }) }));
        const ext = await earn("ex", external);
        const extHandle = await start(ext);
        await env.sleep(HOUR);
        const now = await env.currentTimeMs();
        await db.pool.query("update reward set state = 'ISSUED', coupon_code = 'X-1', issued_at = $2, expiry_at = $3 where id = $1", [ext.rewardId, new Date(now), new Date(now + DAY)]);
        await extHandle.signal(rewardFulfilledSignal);
        expect(await extHandle.result()).toBe("ISSUED");
        await save("reward-lifecycle.external-fulfilled", rewardWorkflowId(db.tenantId, ext.rewardId));
      });
    } finally {
      await env.teardown();
      await db.close();
    }
  });
});
