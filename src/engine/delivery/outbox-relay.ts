// The outbox relay (PRODUCT §5 "No lost work"): runs in the worker process and moves what the API wrote to
// outbox_message into Temporal. It claims a batch of unrelayed rows with FOR UPDATE SKIP LOCKED (several workers
// relay in parallel without taking the same row), starts or signals the workflow each row names — with an id
// derived from the row, so a relay that crashed between "started" and "marked relayed" only finds the workflow
// already there on its next try — and marks the rows relayed in the same transaction. A row whose delivery
// failed gets an exponential back-off and stays in line; nothing is dropped.
import type { Pool, PoolClient } from "pg";
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, isGrpcServiceError, type Client } from "@temporalio/client";
import { TypedSearchAttributes, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from "@temporalio/common";
import type { OutboxKind, OutboxPayloads } from "../../db/entities/index.ts";
import type { Logger } from "../../observability/logger.ts";
import {
  definitionChangedSignal,
  rewardClaimedSignal,
  rewardFulfilledSignal,
  rewardWorkflowId,
  sweeperWorkflowId,
  type RewardInput,
  type SweeperInput,
} from "../../workflows/messages.ts";
import { KINDLING_DEFINITION_ID, KINDLING_MEMBER_ID, KINDLING_SUMMARY, KINDLING_TENANT_ID } from "../../workflows/search-attributes.ts";
import { rewardLabel, sweeperLabel, type SweeperNames } from "./workflow-labels.ts";
import { createSummaryAttributeCheck, isSummaryAttributeRefusal } from "./summary-attribute.ts";

const tenantKey = defineSearchAttributeKey(KINDLING_TENANT_ID, SearchAttributeType.KEYWORD);
const definitionKey = defineSearchAttributeKey(KINDLING_DEFINITION_ID, SearchAttributeType.KEYWORD);
const memberKey = defineSearchAttributeKey(KINDLING_MEMBER_ID, SearchAttributeType.KEYWORD);
const summaryKey = defineSearchAttributeKey(KINDLING_SUMMARY, SearchAttributeType.KEYWORD);
type AttributePairs = SearchAttributePair[];

export interface OutboxRelayOptions {
  readonly pool: Pool;
  readonly client: Client;
  readonly taskQueue: string;
  readonly logger: Logger;
  readonly batchSize?: number;
  /** Messages of different workflows delivered at once within a batch (default 16). */
  readonly concurrency?: number;
  /** Idle poll interval. */
  readonly pollMs?: number;
  /** How often the lag is logged. */
  readonly lagLogMs?: number;
  /**
   * Set Kindling's search attributes on started workflows (default true). Off only for a server where they are
   * not registered — the time-skipping test server used by the rollover benchmark.
   */
  readonly searchAttributes?: boolean;
  /**
   * How long the answer to "is KindlingSummary registered in the namespace?" is kept before asking again
   * (default 5 minutes). Where it is not, workflows start without it (see summary-attribute.ts).
   */
  readonly summaryAttributeRecheckMs?: number;
}

export interface OutboxRelay {
  start(): void;
  stop(): Promise<void>;
  /** Relays one batch; returns how many rows it marked relayed. */
  relayOnce(): Promise<number>;
  /** Age in ms of the oldest unrelayed message (0 when the outbox is empty). */
  lagMs(): Promise<number>;
}

interface OutboxRow {
  id: string;
  kind: OutboxKind;
  dedupe_key: string;
  payload: Record<string, unknown>;
  attempts: number;
}

interface RewardFacts {
  member_id: string;
  member_external_id: string;
  definition_id: string;
  definition_name: string;
  tenant_name: string;
  name: string;
  kind: string;
  threshold: number;
  mode: string;
}

const MAX_BACKOFF_MS = 5 * 60_000;

export function backoffMs(attempts: number): number {
  return Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(attempts, 20));
}

// gRPC UNAVAILABLE and DEADLINE_EXCEEDED: Temporal itself cannot be reached, whatever the message.
const TEMPORAL_DOWN_CODES = new Set([14, 4]);
// How often the relay tries again while Temporal is unreachable.
const TEMPORAL_DOWN_RETRY_MS = 2_000;

/** Temporal is unreachable (down, restarting, cut off): no message is at fault, and none should be backed off. */
export function isTemporalUnavailable(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current !== null && typeof current === "object" && depth < 5; current = (current as { cause?: unknown }).cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "number" && TEMPORAL_DOWN_CODES.has(code)) return true;
  }
  return false;
}

/** The workflow an outbox message is for: a reward's (whatever its attempt) or a definition's sweeper. */
function workflowKey(row: OutboxRow): string {
  const p = row.payload;
  return row.kind === "definition.changed" ? `definition/${String(p.tenantId)}/${String(p.definitionId)}` : `reward/${String(p.tenantId)}/${String(p.rewardId)}`;
}

/** Rows grouped by workflow, each group in the rows' order. */
function groupByWorkflow(rows: readonly OutboxRow[]): Map<string, OutboxRow[]> {
  const groups = new Map<string, OutboxRow[]>();
  for (const row of rows) {
    const key = workflowKey(row);
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  return groups;
}

/** Thrown by a relay pass that stopped because Temporal is unreachable. */
class TemporalUnavailable extends Error {}

export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { pool, client, taskQueue, logger } = options;
  const batchSize = options.batchSize ?? 100;
  const concurrency = options.concurrency ?? 16;
  const pollMs = options.pollMs ?? 250;
  const lagLogMs = options.lagLogMs ?? 30_000;
  const withAttributes = options.searchAttributes ?? true;
  const summaryCheck = createSummaryAttributeCheck({ client, logger, recheckMs: options.summaryAttributeRecheckMs });
  // Set per batch from the check: whether starts carry KindlingSummary as well as the id attributes.
  let withSummary = false;
  const attributes = (pairs: AttributePairs, summary: string, summaryOn: boolean) =>
    withAttributes ? { typedSearchAttributes: new TypedSearchAttributes(summaryOn ? [...pairs, { key: summaryKey, value: summary }] : pairs) } : {};

  /** Runs a start with KindlingSummary when it is usable; refused for it after all, runs it again without. */
  async function startWithSummary(start: (summaryOn: boolean) => Promise<void>): Promise<void> {
    if (!withSummary) return start(false);
    try {
      await start(true);
    } catch (error) {
      if (!isSummaryAttributeRefusal(error)) throw error;
      summaryCheck.refused(error);
      withSummary = false;
      await start(false);
    }
  }
  let running = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;

  async function rewardFacts(db: PoolClient, rewardIds: string[]): Promise<Map<string, RewardFacts>> {
    if (rewardIds.length === 0) return new Map();
    const { rows } = await db.query<RewardFacts & { id: string }>(
      `select r.id, r.member_id, m.external_id as member_external_id, r.definition_id, d.name as definition_name, t.name as tenant_name,
              r.name, r.kind, r.threshold, r.mode
         from reward r join member m on m.id = r.member_id join streak_definition d on d.id = r.definition_id join tenant t on t.id = r.tenant_id
        where r.id = any($1::uuid[])`,
      [rewardIds],
    );
    return new Map(rows.map((r) => [r.id, r]));
  }

  async function startReward(tenantId: string, rewardId: string, attempt: number, facts: RewardFacts | undefined, signal?: typeof rewardClaimedSignal | typeof rewardFulfilledSignal): Promise<void> {
    if (!facts) {
      logger.warn({ rewardId }, "outbox: reward not found, nothing to relay");
      return;
    }
    const args: [RewardInput] = [{ version: 1, tenantId, rewardId, memberId: facts.member_id, definitionId: facts.definition_id, attempt }];
    const { staticSummary, staticDetails, memo, listSummary } = rewardLabel({
      tenantId,
      tenantName: facts.tenant_name,
      definitionId: facts.definition_id,
      definitionName: facts.definition_name,
      rewardId,
      rewardName: facts.name,
      rewardKind: facts.kind,
      fulfilment: facts.mode,
      threshold: facts.threshold,
      memberId: facts.member_id,
      memberExternalId: facts.member_external_id,
      attempt,
    });
    const pairs: AttributePairs = [
      { key: tenantKey, value: tenantId },
      { key: definitionKey, value: facts.definition_id },
      { key: memberKey, value: facts.member_id },
    ];
    const common = (summaryOn: boolean) => ({
      taskQueue,
      workflowId: rewardWorkflowId(tenantId, rewardId, attempt),
      args,
      // A reward's workflow runs once: relaying again after it finished must not run it a second time.
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      ...attributes(pairs, listSummary, summaryOn),
      staticSummary,
      staticDetails,
      memo,
    });
    try {
      await startWithSummary(async (summaryOn) => {
        if (signal) await client.workflow.signalWithStart("rewardLifecycleWorkflow", { ...common(summaryOn), signal, signalArgs: [] });
        else await client.workflow.start("rewardLifecycleWorkflow", { ...common(summaryOn), workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING });
      });
    } catch (error) {
      // Already ran to completion: it read the reward's final state from PostgreSQL, so there is nothing to tell it.
      if (error instanceof WorkflowExecutionAlreadyStartedError) return;
      throw error;
    }
  }

  /**
   * EraseMember: every run of the reward's workflow is cancelled, then its history deleted (its memo, summary and
   * search attributes name the member). A run already gone, or never started, is skipped.
   */
  async function cancelReward(p: OutboxPayloads["reward.cancel"]): Promise<void> {
    // gRPC's NOT_FOUND; the status enum lives in @grpc/grpc-js, which the worker does not depend on directly.
    const GRPC_NOT_FOUND: number = 5;
    for (let attempt = 0; attempt <= p.attempts; attempt++) {
      const workflowId = rewardWorkflowId(p.tenantId, p.rewardId, attempt);
      try {
        await client.workflow.getHandle(workflowId).cancel();
      } catch (error) {
        if (!(error instanceof WorkflowNotFoundError)) throw error;
      }
      try {
        await client.workflowService.deleteWorkflowExecution({ namespace: client.options.namespace, workflowExecution: { workflowId } });
      } catch (error) {
        if (!(isGrpcServiceError(error) && (error.code as number) === GRPC_NOT_FOUND)) throw error;
      }
    }
  }

  async function definitionChanged(p: OutboxPayloads["definition.changed"], names: SweeperNames | undefined): Promise<void> {
    const workflowId = sweeperWorkflowId(p.tenantId, p.definitionId);
    const signalArgs: [{ state: string; version: number }] = [{ state: p.state, version: p.version }];
    if (p.state === "LIVE" || p.state === "PAUSED") {
      const args: [SweeperInput] = [{ version: 1, tenantId: p.tenantId, definitionId: p.definitionId, state: p.state }];
      // Definitions are archived, never deleted, so the names are found; were one missing, its ids still name it.
      const { staticSummary, staticDetails, memo, listSummary } = sweeperLabel(names ?? { tenantId: p.tenantId, tenantName: p.tenantId, definitionId: p.definitionId, definitionName: p.definitionId });
      const pairs: AttributePairs = [
        { key: tenantKey, value: p.tenantId },
        { key: definitionKey, value: p.definitionId },
      ];
      // The server carries search attributes over the sweeper's continue-as-new, so KindlingSummary stays.
      await startWithSummary(async (summaryOn) => {
        await client.workflow.signalWithStart("definitionSweeperWorkflow", {
          taskQueue,
          workflowId,
          args,
          signal: definitionChangedSignal,
          signalArgs,
          ...attributes(pairs, listSummary, summaryOn),
          staticSummary,
          staticDetails,
          memo,
        });
      });
    } else if (p.state === "ARCHIVED") {
      try {
        await client.workflow.getHandle(workflowId).signal(definitionChangedSignal, signalArgs[0]);
      } catch (error) {
        if (!(error instanceof WorkflowNotFoundError)) throw error;
      }
    }
  }

  async function deliver(db: PoolClient, row: OutboxRow, facts: Map<string, RewardFacts>, names: Map<string, SweeperNames>): Promise<void> {
    switch (row.kind) {
      case "reward.lifecycle": {
        const p = row.payload as OutboxPayloads["reward.lifecycle"];
        return startReward(p.tenantId, p.rewardId, 0, facts.get(p.rewardId));
      }
      case "reward.retry": {
        const p = row.payload as OutboxPayloads["reward.retry"];
        return startReward(p.tenantId, p.rewardId, p.attempt, facts.get(p.rewardId));
      }
      case "reward.claimed": {
        const p = row.payload as OutboxPayloads["reward.claimed"];
        return startReward(p.tenantId, p.rewardId, 0, facts.get(p.rewardId), rewardClaimedSignal);
      }
      case "reward.fulfilled": {
        const p = row.payload as OutboxPayloads["reward.fulfilled"];
        return startReward(p.tenantId, p.rewardId, 0, facts.get(p.rewardId), rewardFulfilledSignal);
      }
      case "reward.cancel":
        return cancelReward(row.payload as OutboxPayloads["reward.cancel"]);
      case "definition.changed": {
        const p = row.payload as OutboxPayloads["definition.changed"];
        return definitionChanged(p, names.get(p.definitionId));
      }
      default:
        void db;
        throw new Error(`unknown outbox kind ${String(row.kind)}`);
    }
  }

  async function relayOnce(): Promise<number> {
    const db = await pool.connect();
    try {
      await db.query("begin");
      const { rows } = await db.query<OutboxRow>(
        `select id, kind, dedupe_key, payload, attempts from outbox_message
          where relayed_at is null and (next_attempt_at is null or next_attempt_at <= now())
          order by id limit $1
          for update skip locked`,
        [batchSize],
      );
      if (rows.length === 0) {
        await db.query("commit");
        return 0;
      }
      withSummary = withAttributes && (await summaryCheck.usable());
      const rewardIds = rows.filter((r) => r.kind.startsWith("reward.") && r.kind !== "reward.cancel").map((r) => String(r.payload.rewardId));
      const facts = await rewardFacts(db, rewardIds);
      const definitionIds = rows.filter((r) => r.kind === "definition.changed").map((r) => String(r.payload.definitionId));
      const names = new Map<string, SweeperNames>();
      if (definitionIds.length > 0) {
        const found = await db.query<SweeperNames>(
          `select d.tenant_id as "tenantId", t.name as "tenantName", d.id as "definitionId", d.name as "definitionName"
             from streak_definition d join tenant t on t.id = d.tenant_id where d.id = any($1::uuid[])`,
          [definitionIds],
        );
        for (const d of found.rows) names.set(d.definitionId, d);
      }
      const relayed: string[] = [];
      let unreachable: unknown;
      const deliverInOrder = async (group: OutboxRow[]) => {
        for (const row of group) {
          if (unreachable !== undefined) return;
          try {
            await deliver(db, row, facts, names);
            relayed.push(row.id);
          } catch (error) {
            // Temporal down is no message's fault: backing each one off (up to 5 minutes, growing with every pass)
            // delayed the whole backlog by minutes after Temporal came back. The pass stops, the messages keep their
            // attempts, and the relay tries again every few seconds until Temporal answers.
            if (isTemporalUnavailable(error)) {
              unreachable ??= error;
              return;
            }
            const message = error instanceof Error ? error.message : String(error);
            logger.warn({ err: error, outboxId: row.id, kind: row.kind, attempts: row.attempts + 1 }, "outbox: relay failed, will retry");
            await db.query(
              "update outbox_message set attempts = attempts + 1, last_error = $2, next_attempt_at = now() + make_interval(secs => $3) where id = $1",
              [row.id, message.slice(0, 2000), backoffMs(row.attempts) / 1000],
            );
          }
        }
      };
      // One workflow's messages in order (a reward's claim signal after its start, a definition's pause after its
      // publish); different workflows' side by side, `concurrency` at a time. One after another, each start waited
      // for the server's commit, which held the relay to a few dozen starts a second: a backlog left by a Temporal
      // outage drained minutes after Temporal was back.
      const queue = [...groupByWorkflow(rows).values()];
      await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
        for (let group = queue.shift(); group !== undefined && unreachable === undefined; group = queue.shift()) await deliverInOrder(group);
      }));
      if (relayed.length > 0) await db.query("update outbox_message set relayed_at = now() where id = any($1::bigint[])", [relayed]);
      await db.query("commit");
      if (unreachable !== undefined) throw new TemporalUnavailable("temporal unreachable", { cause: unreachable });
      return relayed.length;
    } catch (error) {
      await db.query("rollback").catch(() => undefined);
      throw error;
    } finally {
      db.release();
    }
  }

  async function lagMs(): Promise<number> {
    const { rows } = await pool.query<{ lag: number | null }>(
      "select (extract(epoch from now() - min(created_at)) * 1000)::float8 as lag from outbox_message where relayed_at is null",
    );
    return Math.max(0, rows[0]?.lag ?? 0);
  }

  async function run(): Promise<void> {
    let lastLagLog = 0;
    let failures = 0;
    let temporalDown = false;
    while (running) {
      let relayed = 0;
      try {
        relayed = await relayOnce();
        failures = 0;
        if (Date.now() - lastLagLog >= lagLogMs) {
          lastLagLog = Date.now();
          logger.info({ lagMs: Math.round(await lagMs()) }, "outbox relay lag");
        }
      } catch (error) {
        failures++;
        temporalDown = error instanceof TemporalUnavailable;
        if (temporalDown) logger.warn({ err: (error as Error).cause }, "outbox relay: temporal unreachable, retrying");
        else logger.error({ err: error }, "outbox relay batch failed");
      }
      // A full batch means more may be waiting; otherwise sleep (longer after repeated failures).
      if (relayed < batchSize && running) {
        const delay = failures === 0 ? pollMs : temporalDown ? TEMPORAL_DOWN_RETRY_MS : Math.min(backoffMs(failures), 30_000);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    async stop() {
      running = false;
      wake?.();
      await loop;
    },
    relayOnce,
    lagMs,
  };
}
