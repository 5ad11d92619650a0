// The Kindling worker: a Temporal worker running the sweeper and reward workflows and their activities, and
// the outbox relay that feeds them — in one process, scaled out by running more of it. `startWorker` is what
// src/app.ts calls for the `all` and `worker` roles (`npm run start:worker`).
import { fileURLToPath } from "node:url";
import { Client, Connection, WorkflowExecutionAlreadyStartedError } from "@temporalio/client";
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundle } from "@temporalio/worker";
import { createActivities, type ActivityDeps } from "../src/activities/index.ts";
import { createOutboxRelay, type OutboxRelay } from "../src/engine/delivery/outbox-relay.ts";
import { createWebhookDispatcher } from "../src/engine/delivery/webhook-dispatcher.ts";
import type { Logger } from "../src/observability/logger.ts";
import { createPool } from "../src/db/pool.ts";
import { resolveDatabaseKind, type DatabaseKind } from "../src/db/database-kind.ts";
import { WorkflowIdConflictPolicy } from "@temporalio/common";
import { retentionWorkflowId } from "../src/workflows/messages.ts";

export const WORKFLOWS_PATH = fileURLToPath(new URL("../src/workflows/index.ts", import.meta.url));

export interface WorkerOptions {
  readonly databaseUrl: string;
  readonly temporalAddress: string;
  readonly namespace: string;
  readonly taskQueue: string;
  readonly logger: Logger;
  /** A pre-built bundle (tests start several workers; bundling takes seconds). */
  readonly workflowBundle?: WorkflowBundle;
  /** Run the outbox relay in this process (default true). */
  readonly relay?: boolean;
  readonly relayPollMs?: number;
  /** Deliver persisted events to webhook subscribers from this process (default true). */
  readonly webhooks?: boolean;
  readonly databasePoolSize?: number;
  readonly breakPageSize?: number;
  readonly afterIssueCommitted?: ActivityDeps["afterIssueCommitted"];
  /** How long shutdown waits for running activities before cancelling them. */
  readonly shutdownGraceMs?: number;
  /** KINDLING_RETENTION_DAYS: days kept for tenants without their own retention; null or absent keeps everything. */
  readonly retentionDays?: number | null;
  /** Start the retention workflow (partitions ahead, retention behind) if it is not running (default true). */
  readonly retentionWorkflow?: boolean;
  /** KINDLING_DATABASE_KIND (default auto: asks the database; src/db/database-kind.ts). */
  readonly databaseKind?: "auto" | DatabaseKind;
}

export interface RunningWorker {
  readonly worker: Worker;
  readonly relay: OutboxRelay | undefined;
  readonly client: Client;
  stop(): Promise<void>;
}

export async function bundleWorkflows(): Promise<WorkflowBundle> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: undefined });
}

/**
 * Starts the deployment's retention workflow unless it runs: every worker asks, one workflow runs (its id is the
 * task queue's, USE_EXISTING), as the relay starts sweepers.
 */
export async function startRetentionWorkflow(client: Client, taskQueue: string): Promise<void> {
  try {
    await client.workflow.start("retentionWorkflow", {
      taskQueue,
      workflowId: retentionWorkflowId(taskQueue),
      args: [{ version: 1 }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    });
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
}

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const logger = options.logger.child({ component: "worker" });
  // A lost database connection (restart, failover) must not crash the worker, idle or in use (see pool.ts).
  const pool = createPool({ connectionString: options.databaseUrl, max: options.databasePoolSize ?? 10 }, logger);
  const cleanups: (() => Promise<void>)[] = [() => pool.end()];
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch((err: unknown) => logger.error({ err }, "worker cleanup failed"));
  };
  try {
    const nativeConnection = await NativeConnection.connect({ address: options.temporalAddress });
    cleanups.push(() => nativeConnection.close());
    // grpc-js waits up to 2 minutes between reconnection attempts by default: after a Temporal outage the relay's
    // client sat idle that long while Temporal was already back. Reconnect within seconds instead.
    const connection = await Connection.connect({
      address: options.temporalAddress,
      channelArgs: { "grpc.initial_reconnect_backoff_ms": 500, "grpc.max_reconnect_backoff_ms": 3_000 },
    });
    cleanups.push(() => connection.close());
    const client = new Client({ connection, namespace: options.namespace });
    const citus = (await resolveDatabaseKind(pool, options.databaseKind ?? "auto")) === "citus";
    const activities = createActivities({
      pool, citus, breakPageSize: options.breakPageSize, afterIssueCommitted: options.afterIssueCommitted, retention: { defaultDays: options.retentionDays ?? null },
    });
    const worker = await Worker.create({
      connection: nativeConnection,
      namespace: options.namespace,
      taskQueue: options.taskQueue,
      ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
      activities,
      shutdownGraceTime: options.shutdownGraceMs ?? 10_000,
    });
    const running = worker.run();
    running.catch((err: unknown) => logger.error({ err }, "worker stopped with an error"));
    cleanups.push(async () => {
      if (worker.getState() === "RUNNING") worker.shutdown();
      await running.catch(() => undefined);
    });
    let relay: OutboxRelay | undefined;
    if (options.relay ?? true) {
      const r = createOutboxRelay({ pool, client, taskQueue: options.taskQueue, logger: logger.child({ component: "outbox-relay" }), pollMs: options.relayPollMs });
      r.start();
      cleanups.push(() => r.stop());
      relay = r;
    }
    if (options.webhooks ?? true) {
      const webhooks = createWebhookDispatcher({ pool, logger: logger.child({ component: "webhooks" }) });
      webhooks.start();
      cleanups.push(() => webhooks.stop());
    }
    if (options.retentionWorkflow ?? true) await startRetentionWorkflow(client, options.taskQueue);
    logger.info({ taskQueue: options.taskQueue, namespace: options.namespace, address: options.temporalAddress }, "worker started");
    return { worker, relay, client, stop: cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
