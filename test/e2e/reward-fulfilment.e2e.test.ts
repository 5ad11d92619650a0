// End to end on the run's real Temporal dev server and PostgreSQL: the API records activity, the milestone's
// reward goes to the outbox in the same transaction, the worker's relay starts its workflow, the built-in
// coupon-code generator issues it, and the coupon is visible through RewardService. Then the same with the
// worker SIGKILLed right after the coupon committed and a new worker taking over: still exactly one coupon.
// And an operator's visibility query by KindlingMemberId finds the member's reward workflow.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { WorkflowBundle } from "@temporalio/worker";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { RewardService } from "../../src/gen/kindling/v1/reward_service_pb.js";
import { RewardState } from "../../src/gen/kindling/v1/reward_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createLogger } from "../../src/observability/logger.ts";
import { bundleWorkflows, startWorker, type RunningWorker } from "../../workers/worker.ts";
import { rewardWorkflowId, sweeperWorkflowId } from "../../src/workflows/messages.ts";
import { startTestApi, type TestApi } from "../support/api.ts";
import { connectToSharedTemporal, type SharedTemporal } from "../support/temporal.ts";
import { eventually as waitFor } from "../support/eventually.ts";

let api: TestApi;
let temporal: SharedTemporal;
let bundle: WorkflowBundle;
const workers: RunningWorker[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  [api, temporal, bundle] = await Promise.all([startTestApi({ label: "e2e_reward" }), connectToSharedTemporal("e2e-reward"), bundleWorkflows()]);
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const w of workers) await w.stop();
  await temporal?.close();
  await api?.close();
});

async function startInProcessWorker(): Promise<RunningWorker> {
  const w = await startWorker({
    databaseUrl: api.databaseUrl,
    temporalAddress: temporal.address,
    namespace: temporal.namespace,
    taskQueue: temporal.taskQueue,
    logger: createLogger("silent"),
    workflowBundle: bundle,
    relayPollMs: 100,
  });
  workers.push(w);
  return w;
}

async function couponDefinition(name: string): Promise<string> {
  const defs = api.client(DefinitionService);
  const { definition } = await defs.createDefinition({
    definition: {
      name,
      eventTypes: [],
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 1 },
      milestones: [{
        threshold: 1,
        reward: {
          kind: RewardKind.COUPON,
          name: "5% off",
          fulfilmentMode: FulfilmentMode.PROVIDER,
          // A short attempt timeout, so the attempt lost with the killed worker is retried within seconds.
          provider: { kind: { case: "codeGenerator", value: { prefix: "E2E-", length: 12 } }, attemptTimeoutDuration: { seconds: 2n } },
        },
      }],
    },
  });
  await defs.publishDefinition({ definitionId: definition!.id });
  return definition!.id;
}

async function earnReward(member: string, definitionId: string): Promise<string> {
  const { results } = await api.client(ActivityService).recordActivity({
    activity: { memberRef: { case: "memberExternalId", value: member }, target: { case: "definitionId", value: definitionId }, occurTime: timestampFromMs(Date.now()), uniqueIdentifier: `${member}-1` },
  });
  const rewardId = results[0]?.rewards[0]?.id;
  if (!rewardId) throw new Error("the activity did not create a reward");
  return rewardId;
}

const eventually = <T>(probe: () => Promise<T | undefined>, timeoutMs = 45_000) => waitFor(probe, timeoutMs);

async function issuedReward(rewardId: string) {
  return eventually(async () => {
    const { reward } = await api.client(RewardService).getReward({ rewardId });
    return reward?.state === RewardState.ISSUED ? reward : undefined;
  });
}

async function sql<T>(query: string, params: unknown[]): Promise<T[]> {
  return api.orm.em.fork().getConnection().execute<T[]>(query, params);
}

async function issuedEvents(rewardId: string): Promise<number> {
  const rows = await sql<{ n: string }>("select count(*) as n from streak_event where type = 'reward.issued' and payload->>'reward_id' = ?", [rewardId]);
  return Number(rows[0]?.n ?? 0);
}

describe("reward fulfilment end to end", () => {
  it("e2e/milestone_crossed_issues_a_coupon_visible_on_reads_and_findable_by_member", async () => {
    await startInProcessWorker();
    const definitionId = await couponDefinition("E2E coupon");
    const rewardId = await earnReward("ella", definitionId);
    const reward = await issuedReward(rewardId);
    expect(reward.couponCode).toMatch(/^E2E-[A-HJ-NP-Z2-9]{12}$/);
    expect(await issuedEvents(rewardId)).toBe(1);

    const workflowId = rewardWorkflowId(api.admin.tenantId, rewardId);
    expect(await temporal.client.workflow.getHandle(workflowId).result()).toBe("ISSUED");

    // Operability: the member's workflows are found by search attribute, as in the Temporal UI.
    const memberId = (await sql<{ member_id: string }>("select member_id from reward where id = ?", [rewardId]))[0]!.member_id;
    const found = await eventually(async () => {
      const ids: string[] = [];
      for await (const w of temporal.client.workflow.list({ query: `KindlingMemberId = '${memberId}'` })) ids.push(w.workflowId);
      return ids.includes(workflowId) ? ids : undefined;
    }, 20_000);
    expect(found).toContain(workflowId);
    const description = await temporal.client.workflow.getHandle(workflowId).describe();
    expect(description.memo).toMatchObject({ member: "ella", definition: "E2E coupon", milestone: 1 });

    // Publishing the definition started its sweeper, through the outbox as well.
    const sweeper = await eventually(async () => {
      try {
        return await temporal.client.workflow.getHandle(sweeperWorkflowId(api.admin.tenantId, definitionId)).describe();
      } catch {
        return undefined;
      }
    }, 20_000);
    expect(sweeper.status.name).toBe("RUNNING");

    for (const w of workers.splice(0)) await w.stop();
  });

  it("e2e/worker_killed_after_the_coupon_committed_still_issues_exactly_one_coupon", async () => {
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL("./fixtures/crashing-worker.ts", import.meta.url)), api.databaseUrl, temporal.address, temporal.namespace, temporal.taskQueue],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    children.push(child);
    const lines = createInterface({ input: child.stdout });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
    const waitForLine = (prefix: string) =>
      new Promise<string>((resolve, reject) => {
        lines.on("line", (line) => line.startsWith(prefix) && resolve(line));
        void exited.then(() => reject(new Error(`worker exited before printing ${prefix}`)));
      });
    const committed = waitForLine("COMMITTED");
    await waitForLine("READY");

    const definitionId = await couponDefinition("E2E crash");
    const rewardId = await earnReward("kim", definitionId);
    const [, committedReward, committedCoupon] = (await committed).split(" ");
    expect(committedReward).toBe(rewardId);
    expect(await exited).toBe("SIGKILL");
    // Dead between its commit and telling Temporal: the reward is ISSUED in PostgreSQL, the activity is not done.
    await startInProcessWorker();

    const reward = await issuedReward(rewardId);
    expect(reward.couponCode).toBe(committedCoupon);
    expect(await temporal.client.workflow.getHandle(rewardWorkflowId(api.admin.tenantId, rewardId)).result()).toBe("ISSUED");
    expect((await api.client(RewardService).getReward({ rewardId })).reward?.couponCode).toBe(committedCoupon);
    expect(await issuedEvents(rewardId)).toBe(1);
  });
});
