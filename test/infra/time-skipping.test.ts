import { fileURLToPath } from "node:url";
import type { TestWorkflowEnvironment } from "@temporalio/testing";
import { Worker } from "@temporalio/worker";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTimeSkippingEnvironment, uniqueTaskQueue } from "../support/temporal.ts";
import * as activities from "./fixtures/ping.activities.ts";
import { sleepOneDayWorkflow } from "./fixtures/ping.workflow.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await createTimeSkippingEnvironment();
});
afterAll(async () => {
  await env?.teardown();
});

it("sleeps a simulated day on the time-skipping test server", async () => {
  const taskQueue = uniqueTaskQueue("infra-time-skipping");
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowsPath: fileURLToPath(new URL("./fixtures/ping.workflow.ts", import.meta.url)),
    activities,
  });
  const elapsedWorkflowMs = await worker.runUntil(
    env.client.workflow.execute(sleepOneDayWorkflow, { taskQueue, workflowId: `sleep-${taskQueue}` }),
  );
  expect(elapsedWorkflowMs).toBeGreaterThanOrEqual(DAY_MS);
});
