// An operator's own Temporal, set up for an older Kindling: the namespace has Kindling's id search attributes but
// not KindlingSummary. A start naming an unregistered search attribute is refused by the server, so the relay must
// notice and start without it — workflows run, the outbox drains, and a warning says how to register it. On the
// run's real Temporal dev server (a namespace of its own, registered here with only the id attributes) and
// PostgreSQL, through the API, the outbox and the worker's relay.
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Client, Connection } from "@temporalio/client";
import { defineSearchAttributeKey, SearchAttributeType } from "@temporalio/common";
import pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createLogger } from "../../src/observability/logger.ts";
import { startWorker, type RunningWorker } from "../../workers/worker.ts";
import { rewardWorkflowId, sweeperWorkflowId } from "../../src/workflows/messages.ts";
import { KINDLING_DEFINITION_ID, KINDLING_MEMBER_ID, KINDLING_SUMMARY, KINDLING_TENANT_ID } from "../../src/workflows/search-attributes.ts";
import { startTestApi, type Credentials, type TestApi } from "../support/api.ts";
import { connectToSharedTemporal, type SharedTemporal } from "../support/temporal.ts";
import { eventually as waitFor } from "../support/eventually.ts";

const DAY = 24 * 3600_000;
// temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
const KEYWORD = 2;

let api: TestApi;
let temporal: SharedTemporal;
let connection: Connection;
let client: Client;
let worker: RunningWorker;
const namespace = `kindling-no-summary-${randomBytes(4).toString("hex")}`;
const logLines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString().split("\n").filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});

const eventually = <T>(probe: () => Promise<T | undefined>, timeoutMs = 30_000) => waitFor(probe, timeoutMs, { ignoreErrors: true });

beforeAll(async () => {
  [api, temporal] = await Promise.all([startTestApi({ label: "e2e_no_summary" }), connectToSharedTemporal("e2e-no-summary")]);
  connection = await Connection.connect({ address: temporal.address });
  // protobufjs takes a number for an int64 field; its typings only name Long, which is not a dependency here.
  const oneDay = { seconds: 24 * 3600 } as unknown as { seconds: Long };
  await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: oneDay });
  await eventually(async () => {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: { [KINDLING_TENANT_ID]: KEYWORD, [KINDLING_DEFINITION_ID]: KEYWORD, [KINDLING_MEMBER_ID]: KEYWORD },
    });
    return true;
  });
  client = new Client({ connection, namespace });
  worker = await startWorker({
    databaseUrl: api.databaseUrl,
    temporalAddress: temporal.address,
    namespace,
    taskQueue: temporal.taskQueue,
    logger: createLogger("warn", sink),
    relayPollMs: 100,
  });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await connection?.operatorService.deleteNamespace({ namespace }).catch(() => undefined);
  await connection?.close();
  await temporal?.close();
  await api?.close();
});

async function publishDefinition(credentials: Credentials, name: string): Promise<string> {
  const defs = api.client(DefinitionService, credentials);
  const { definition } = await defs.createDefinition({
    definition: {
      name,
      eventTypes: [],
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 1 },
      graceDuration: { seconds: BigInt(3 * 24 * 3600) },
      milestones: [{ threshold: 3, reward: { kind: RewardKind.POINTS, points: 30, name: "Third cup", fulfilmentMode: FulfilmentMode.CLAIM } }],
    },
  });
  await defs.publishDefinition({ definitionId: definition!.id });
  return definition!.id;
}

async function outboxState(): Promise<{ unrelayed: number; failed: number; total: number }> {
  const db = new pg.Client({ connectionString: api.databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ unrelayed: number; failed: number; total: number }>(
      "select count(*) filter (where relayed_at is null)::int as unrelayed, count(*) filter (where attempts > 0)::int as failed, count(*)::int as total from outbox_message",
    );
    return rows[0]!;
  } finally {
    await db.end();
  }
}

const tenantKey = defineSearchAttributeKey(KINDLING_TENANT_ID, SearchAttributeType.KEYWORD);
const summaryKey = defineSearchAttributeKey(KINDLING_SUMMARY, SearchAttributeType.KEYWORD);
const summaryWarnings = () => logLines.filter((l) => l.searchAttribute === KINDLING_SUMMARY);

describe("KindlingSummary not registered on the operator's Temporal", () => {
  it("relay/namespace_without_summary_attribute_still_starts_workflows_and_says_how_to_register_it", async () => {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    expect(customAttributes?.[KINDLING_TENANT_ID]).toBeDefined();
    expect(customAttributes?.[KINDLING_SUMMARY]).toBeUndefined();

    const acme = await api.newTenant("Acme Coffee");
    const definitionId = await publishDefinition(acme, "Daily Espresso");
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

    // Both workflows start, with their names and the id attributes, only without the list's column.
    for (const workflowId of [sweeperWorkflowId(acme.tenantId, definitionId), rewardWorkflowId(acme.tenantId, rewardId!)]) {
      const described = await eventually(() => client.workflow.getHandle(workflowId).describe());
      expect(described.typedSearchAttributes.get(tenantKey)).toBe(acme.tenantId);
      expect(described.typedSearchAttributes.get(summaryKey)).toBeUndefined();
      expect(await described.staticSummary()).toMatch(/^Acme Coffee · Daily Espresso · /);
    }

    // The outbox drained without a single failed attempt: nothing waits on a retry back-off.
    const outbox = await outboxState();
    expect(outbox).toMatchObject({ unrelayed: 0, failed: 0 });
    expect(outbox.total).toBeGreaterThanOrEqual(2);

    // Told once (not per workflow), with the command that fixes it.
    const warnings = summaryWarnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toContain(`temporal operator search-attribute create --namespace ${namespace} --name ${KINDLING_SUMMARY} --type Keyword`);
  });

  it("relay/summary_attribute_removed_after_the_check_is_dropped_and_the_start_retried", async () => {
    // The attribute is registered, a fresh worker finds it and keeps that answer for minutes; then it is removed.
    // The next start is refused for it: the relay starts again without it, at once, with no failed attempt.
    await worker.stop();
    logLines.length = 0;
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: { [KINDLING_SUMMARY]: KEYWORD } });
    await eventually(async () => ((await connection.operatorService.listSearchAttributes({ namespace })).customAttributes?.[KINDLING_SUMMARY] ? true : undefined));
    worker = await startWorker({
      databaseUrl: api.databaseUrl,
      temporalAddress: temporal.address,
      namespace,
      taskQueue: temporal.taskQueue,
      logger: createLogger("warn", sink),
      relayPollMs: 100,
    });
    const brightside = await api.newTenant("Brightside Fitness");
    const runId = await publishDefinition(brightside, "Morning Run");
    const run = await eventually(() => client.workflow.getHandle(sweeperWorkflowId(brightside.tenantId, runId)).describe());
    expect(run.typedSearchAttributes.get(summaryKey)).toBe("Brightside Fitness · Morning Run · window sweeper");
    expect(summaryWarnings()).toHaveLength(0);

    await connection.operatorService.removeSearchAttributes({ namespace, searchAttributes: [KINDLING_SUMMARY] });
    await eventually(async () => ((await connection.operatorService.listSearchAttributes({ namespace })).customAttributes?.[KINDLING_SUMMARY] ? undefined : true));
    const swimId = await publishDefinition(brightside, "Evening Swim");
    const swim = await eventually(() => client.workflow.getHandle(sweeperWorkflowId(brightside.tenantId, swimId)).describe());
    expect(swim.typedSearchAttributes.get(tenantKey)).toBe(brightside.tenantId);
    expect(swim.typedSearchAttributes.get(summaryKey)).toBeUndefined();
    expect(await outboxState()).toMatchObject({ unrelayed: 0, failed: 0 });
    expect(summaryWarnings()).toHaveLength(1);
  });
});
