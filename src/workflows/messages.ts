// Everything a client (the outbox relay, tests, operators' tools) needs to talk to Kindling's workflows: the
// task queue, workflow ids, inputs, signals and queries. Workflow ids are derived from what a workflow is about,
// so starting "the same" workflow twice — a relay retrying after a crash — finds the one already running.
import { defineQuery, defineSignal } from "@temporalio/workflow";

export const DEFAULT_TASK_QUEUE = "kindling";

export type SweptDefinitionState = "LIVE" | "PAUSED";

/** Input of definitionSweeperWorkflow; versioned so running workflows can be told apart from newer code. */
export interface SweeperInput {
  readonly version: 1;
  readonly tenantId: string;
  readonly definitionId: string;
  readonly state: SweptDefinitionState;
  /** At-risk reminders due at or before this instant were sent by an earlier run (carried over continue-as-new). */
  readonly atRiskSweptUntil?: number | null;
  /** Longest sleep between looks at the next deadline: new members may bring earlier ones. Default 1 h. */
  readonly maxSleepMs?: number;
  /** Loops before continuing as new, unless the server suggests it earlier. Default 200. */
  readonly maxIterations?: number;
}

export interface SweeperStatus {
  readonly state: SweptDefinitionState | "ARCHIVED";
  readonly nextWakeAt: number | null;
  readonly lastSweepAt: number | null;
  readonly broken: number;
  readonly advanced: number;
  readonly atRisk: number;
}

export interface DefinitionChange {
  readonly state: string;
  readonly version: number;
}

/** The definition changed state (LIVE, PAUSED, ARCHIVED) or rules: the sweeper re-plans, or stops when archived. */
export const definitionChangedSignal = defineSignal<[DefinitionChange]>("definitionChanged");
export const sweeperStatusQuery = defineQuery<SweeperStatus>("sweeperStatus");

export function sweeperWorkflowId(tenantId: string, definitionId: string): string {
  return `sweeper/${tenantId}/${definitionId}`;
}

/** The one retention workflow of a deployment (its task queue; src/workflows/retention.workflow.ts); every worker starts it. */
export function retentionWorkflowId(taskQueue: string): string {
  return `retention/${taskQueue}`;
}

/** Input of retentionWorkflow. */
export interface RetentionInput {
  readonly version: 1;
  /** Time between passes. Default 6 h: a week partition is created weeks ahead, and dropped within a pass of its turn. */
  readonly intervalMs?: number;
  /** Passes before continuing as new, unless the server suggests it earlier. Default 100. */
  readonly maxIterations?: number;
}

export interface RetentionStatus {
  readonly passes: number;
  readonly lastPassAt: number | null;
  readonly partitionsCreated: number;
  readonly partitionsDropped: number;
  readonly activitiesDeleted: number;
  readonly eventsDeleted: number;
}

/** Run a pass now (operators, tests) instead of at the next interval. */
export const retentionRunSignal = defineSignal("retentionRun");
export const retentionStatusQuery = defineQuery<RetentionStatus>("retentionStatus");

/** Input of rewardLifecycleWorkflow. `attempt` 0 is the first run; RetryReward starts attempt 1, 2, … */
export interface RewardInput {
  readonly version: 1;
  readonly tenantId: string;
  readonly rewardId: string;
  readonly memberId: string;
  readonly definitionId: string;
  readonly attempt: number;
}

export type RewardOutcome = "ISSUED" | "EXPIRED" | "FAILED" | "MISSING" | "SUPERSEDED";

/** The member claimed a CLAIM reward (ClaimReward committed CLAIMED). */
export const rewardClaimedSignal = defineSignal("claimed");
/** The tenant recorded fulfilment of the reward (UpdateRewardFulfilment committed). */
export const rewardFulfilledSignal = defineSignal("fulfilled");
export const rewardStatusQuery = defineQuery<string>("rewardStatus");

export function rewardWorkflowId(tenantId: string, rewardId: string, attempt = 0): string {
  return attempt > 0 ? `reward/${tenantId}/${rewardId}/attempt-${attempt}` : `reward/${tenantId}/${rewardId}`;
}
