// The definition sweeper's stats snapshot on a time-skipping Temporal server against real PostgreSQL (issue 13,
// item 3): stats never hold up window closes. Its own file and server: after the week in
// definition-sweeper.test.ts, this server no longer skipped time for it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestWorkflowEnvironment } from "@temporalio/testing";
import { Worker } from "@temporalio/worker";
import { createTimeSkippingEnvironment, uniqueTaskQueue } from "../support/temporal.ts";
import { createOrchestrationDb, dailyUtc, DAY, HOUR, MINUTE, type OrchestrationDb } from "../support/orchestration.ts";
import { createActivities } from "../../src/activities/index.ts";
import { WORKFLOWS_PATH } from "../../workers/worker.ts";
import { sweeperStatusQuery, sweeperWorkflowId } from "../../src/workflows/messages.ts";
import type { definitionSweeperWorkflow } from "../../src/workflows/definition-sweeper.workflow.ts";

let env: TestWorkflowEnvironment;
let db: OrchestrationDb;
beforeAll(async () => {
  [env, db] = await Promise.all([createTimeSkippingEnvironment(), createOrchestrationDb("sweeper_stats")]);
});
afterAll(async () => {
  await env?.teardown();
  await db?.close();
});
describe("definition sweeper and its stats", () => {
  it("stats/a_failing_snapshot_never_holds_up_window_closes", async () => {
    const taskQueue = uniqueTaskQueue("sweeper-stats");
    const def = await db.definition(dailyUtc({ name: "Stats failing" }));
    const real = createActivities({ pool: db.pool });
    let snapshotCalls = 0;
    const activities = {
      ...real,
      snapshotDefinitionStats: async () => {
        snapshotCalls++;
        throw new Error("stats store unavailable");
      },
    };
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: WORKFLOWS_PATH, activities });
    await worker.runUntil(async () => {
      // Two hours before a midnight: Frank checked in yesterday, so today's window closes unsatisfied at midnight.
      const breakAt = Math.ceil(((await env.currentTimeMs()) + 3 * HOUR) / DAY) * DAY;
      await env.sleep(breakAt - 2 * HOUR - (await env.currentTimeMs()));
      await db.record("frank", def, breakAt - DAY - 2 * HOUR, breakAt - DAY - 2 * HOUR, "frank-0");
      const handle = await env.client.workflow.start<typeof definitionSweeperWorkflow>("definitionSweeperWorkflow", {
        taskQueue,
        workflowId: sweeperWorkflowId(db.tenantId, def),
        args: [{ version: 1, tenantId: db.tenantId, definitionId: def, state: "LIVE" }],
      });
      // Broken at that close although every snapshot fails.
      await env.sleep(breakAt + 5 * MINUTE - (await env.currentTimeMs()));
      expect(await db.streak("frank", def)).toMatchObject({ status: "BROKEN", current_count: 0 });
      expect((await handle.query(sweeperStatusQuery)).broken).toBe(1);
      // Failing snapshots were tried (three attempts each), and the sweeper went on, trying again hourly (at its
      // start, an hour later, at the close: 3 or 4 rounds), not at every minute's look (120 rounds).
      expect(snapshotCalls).toBeGreaterThanOrEqual(3);
      expect(snapshotCalls).toBeLessThanOrEqual(3 * 4);
      await handle.terminate("test over");
    });
  }, 300_000);
});
