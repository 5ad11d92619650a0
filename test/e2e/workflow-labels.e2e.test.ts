// What an operator sees in the Temporal UI: every workflow Kindling starts carries a readable summary and details
// (Temporal user metadata) and a memo naming the tenant, the definition, and for a reward the member, the reward
// kind and the milestone — also as the KindlingSummary search attribute, which the workflow list can show as a
// column — while the ids and the id search attributes stay the uuids they were. On the run's real
// Temporal dev server and PostgreSQL, through the API, the outbox and the worker's relay.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { defineSearchAttributeKey, SearchAttributeType, TypedSearchAttributes } from "@temporalio/common";
import type { WorkflowHandle } from "@temporalio/client";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createLogger } from "../../src/observability/logger.ts";
import { startWorker, type RunningWorker } from "../../workers/worker.ts";
import { rewardWorkflowId, sweeperWorkflowId } from "../../src/workflows/messages.ts";
import { KINDLING_MEMBER_ID, KINDLING_SUMMARY, KINDLING_TENANT_ID } from "../../src/workflows/search-attributes.ts";
import { sweeperLabel } from "../../src/engine/delivery/workflow-labels.ts";
import type { definitionSweeperWorkflow } from "../../src/workflows/definition-sweeper.workflow.ts";
import { startTestApi, type Credentials, type TestApi } from "../support/api.ts";
import { connectToSharedTemporal, type SharedTemporal } from "../support/temporal.ts";
import { eventually as waitFor } from "../support/eventually.ts";

const DAY = 24 * 3600_000;
const summaryKey = defineSearchAttributeKey(KINDLING_SUMMARY, SearchAttributeType.KEYWORD);

let api: TestApi;
let temporal: SharedTemporal;
let worker: RunningWorker;
let acme: Credentials;
let definitionId: string;

beforeAll(async () => {
  [api, temporal] = await Promise.all([startTestApi({ label: "e2e_labels" }), connectToSharedTemporal("e2e-labels")]);
  worker = await startWorker({
    databaseUrl: api.databaseUrl,
    temporalAddress: temporal.address,
    namespace: temporal.namespace,
    taskQueue: temporal.taskQueue,
    logger: createLogger("silent"),
    relayPollMs: 100,
  });
  acme = await api.newTenant("Acme Coffee");
  const defs = api.client(DefinitionService, acme);
  const { definition } = await defs.createDefinition({
    definition: {
      name: "Daily Espresso",
      eventTypes: [],
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 1 },
      // Lets the test check in for the two past days now.
      graceDuration: { seconds: BigInt(3 * 24 * 3600) },
      milestones: [{ threshold: 3, reward: { kind: RewardKind.POINTS, points: 30, name: "Third cup", fulfilmentMode: FulfilmentMode.CLAIM } }],
    },
  });
  definitionId = definition!.id;
  await defs.publishDefinition({ definitionId });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await temporal?.close();
  await api?.close();
});

const eventually = <T>(probe: () => Promise<T | undefined>, timeoutMs = 30_000) => waitFor(probe, timeoutMs, { ignoreErrors: true });

const describeWhenStarted = (handle: WorkflowHandle) => eventually(() => handle.describe());

describe("workflow labels in the Temporal UI", () => {
  it("e2e/sweeper_and_reward_workflows_are_summarised_by_name_with_ids_unchanged", async () => {
    // Three daily check-ins (two days ago, yesterday, today) cross the 3-day milestone.
    const activities = api.client(ActivityService, acme);
    const now = Date.now();
    let rewardId: string | undefined;
    for (const [i, at] of [now - 2 * DAY, now - DAY, now].entries()) {
      const { results } = await activities.recordActivity({
        activity: { memberRef: { case: "memberExternalId", value: "ella-1001" }, target: { case: "definitionId", value: definitionId }, occurTime: timestampFromMs(at), uniqueIdentifier: `ella-${i}` },
      });
      rewardId ??= results[0]?.rewards[0]?.id;
    }
    expect(rewardId).toBeDefined();

    const sweeper = await describeWhenStarted(temporal.client.workflow.getHandle(sweeperWorkflowId(acme.tenantId, definitionId)));
    const sweeperSummary = await sweeper.staticSummary();
    expect(sweeperSummary).toBe("Acme Coffee · Daily Espresso · window sweeper");
    const sweeperDetails = await sweeper.staticDetails();
    expect(sweeperDetails).toContain("Tenant: Acme Coffee");
    expect(sweeperDetails).toContain("Definition: Daily Espresso");
    expect(sweeperDetails).toContain(definitionId);
    expect(sweeperDetails).toMatch(/as of this workflow's start/);
    expect(sweeper.memo).toMatchObject({ tenant: "Acme Coffee", definition: "Daily Espresso", summary: sweeperSummary });
    // The list's column: the summary as a search attribute, in plain text.
    expect(sweeper.typedSearchAttributes.get(summaryKey)).toBe("Acme Coffee · Daily Espresso · window sweeper");

    const reward = await describeWhenStarted(temporal.client.workflow.getHandle(rewardWorkflowId(acme.tenantId, rewardId!)));
    const rewardSummary = await reward.staticSummary();
    expect(rewardSummary).toBe("Acme Coffee · Daily Espresso · member ella-1001 · POINTS reward at milestone 3");
    const rewardDetails = await reward.staticDetails();
    for (const text of ["Tenant: Acme Coffee", "Definition: Daily Espresso", "Member: ella-1001", "Third cup, POINTS, fulfilment CLAIM", "Milestone: 3", rewardId!]) {
      expect(rewardDetails).toContain(text);
    }
    expect(reward.memo).toMatchObject({ tenant: "Acme Coffee", definition: "Daily Espresso", member: "ella-1001", milestone: 3, rewardKind: "POINTS" });
    expect(reward.typedSearchAttributes.get(summaryKey)).toBe("Acme Coffee · Daily Espresso · member ella-1001 · POINTS reward at milestone 3");
    // …and what the UI's list reads: a visibility query returns it with the row, and can filter by it.
    const listed = await eventually(async () => {
      for await (const w of temporal.client.workflow.list({ query: `${KINDLING_SUMMARY} = 'Acme Coffee · Daily Espresso · member ella-1001 · POINTS reward at milestone 3'` })) {
        if (w.workflowId === reward.workflowId) return w;
      }
      return undefined;
    });
    expect(listed.typedSearchAttributes.get(summaryKey)).toBe("Acme Coffee · Daily Espresso · member ella-1001 · POINTS reward at milestone 3");

    // The ids and search attributes are the uuids operators already query by.
    expect(reward.workflowId).toBe(`reward/${acme.tenantId}/${rewardId}`);
    const memberId = reward.typedSearchAttributes.get(defineSearchAttributeKey(KINDLING_MEMBER_ID, SearchAttributeType.KEYWORD));
    expect(memberId).toMatch(/^[0-9a-f-]{36}$/);
    expect(sweeper.typedSearchAttributes.get(defineSearchAttributeKey(KINDLING_TENANT_ID, SearchAttributeType.KEYWORD))).toBe(acme.tenantId);
  });

  it("workflows/sweeper_shows_its_names_after_continue_as_new", async () => {
    // A sweeper that continues as new after every look (maxIterations 0) with the relay's label: the server drops
    // the static summary on continue-as-new but carries the memo and the search attributes (KindlingSummary, the
    // list's column), and each run shows the memo's summary.
    const { listSummary, ...label } = sweeperLabel({ tenantId: acme.tenantId, tenantName: "Acme Coffee", definitionId, definitionName: "Daily Espresso" });
    const handle = await temporal.client.workflow.start<typeof definitionSweeperWorkflow>("definitionSweeperWorkflow", {
      taskQueue: temporal.taskQueue,
      workflowId: `${sweeperWorkflowId(acme.tenantId, definitionId)}/continue-as-new-test`,
      args: [{ version: 1, tenantId: acme.tenantId, definitionId, state: "LIVE", maxSleepMs: 300, maxIterations: 0 }],
      ...label,
      typedSearchAttributes: new TypedSearchAttributes([{ key: summaryKey, value: listSummary }]),
    });
    try {
      const continued = await eventually(async () => {
        const d = await handle.describe();
        return d.runId !== handle.firstExecutionRunId && d.status.name === "RUNNING" ? d : undefined;
      });
      expect(continued.memo).toMatchObject({ summary: "Acme Coffee · Daily Espresso · window sweeper" });
      expect(continued.typedSearchAttributes.get(summaryKey)).toBe("Acme Coffee · Daily Espresso · window sweeper");
      const metadata = await eventually(async () => {
        const m = await handle.query<{ currentDetails?: string }>("__temporal_workflow_metadata");
        return m.currentDetails ? m : undefined;
      });
      expect(metadata.currentDetails).toBe("Acme Coffee · Daily Espresso · window sweeper");
    } finally {
      await handle.terminate("test done");
    }
  });
});
