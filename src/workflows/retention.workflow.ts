// The retention workflow: one per deployment (RETENTION_WORKFLOW_ID), started by every worker with
// USE_EXISTING, so however many workers start, one runs. Each pass creates the week partitions ahead of the
// workflow's clock and then applies retention behind it (src/engine/retention/retention.ts); between passes it sleeps on one
// durable timer, or wakes at a retentionRun signal. Its history is a handful of events a pass; it continues as new
// before that grows.
import { condition, continueAsNew, proxyActivities, setHandler, workflowInfo } from "@temporalio/workflow";
import type { KindlingActivities } from "../activities/index.ts";
import { retentionRunSignal, retentionStatusQuery, type RetentionInput, type RetentionStatus } from "./messages.ts";

const HOUR = 3_600_000;

const maintenance = proxyActivities<KindlingActivities>({
  startToCloseTimeout: "2 hours",
  heartbeatTimeout: "5 minutes",
  retry: { initialInterval: "5 seconds", backoffCoefficient: 2, maximumInterval: "5 minutes" },
});

export async function retentionWorkflow(input: RetentionInput, carried?: RetentionStatus): Promise<void> {
  const intervalMs = input.intervalMs ?? 6 * HOUR;
  const maxIterations = input.maxIterations ?? 100;
  const status = {
    passes: 0, lastPassAt: null as number | null, partitionsCreated: 0, partitionsDropped: 0, activitiesDeleted: 0, eventsDeleted: 0, ...carried,
  };
  let runNow = false;
  setHandler(retentionRunSignal, () => {
    runNow = true;
  });
  setHandler(retentionStatusQuery, (): RetentionStatus => ({ ...status }));

  for (let iteration = 0; ; iteration++) {
    runNow = false;
    const now = Date.now();
    status.partitionsCreated += (await maintenance.ensurePartitions({ now })).length;
    const pass = await maintenance.applyRetention({ now });
    status.partitionsDropped += pass.droppedPartitions.length;
    status.activitiesDeleted += pass.activitiesDeleted;
    status.eventsDeleted += pass.eventsDeleted;
    status.passes += 1;
    status.lastPassAt = now;
    await condition(() => runNow, intervalMs);
    if (workflowInfo().continueAsNewSuggested || iteration + 1 >= maxIterations) {
      await continueAsNew<typeof retentionWorkflow>(input, { ...status });
    }
  }
}
