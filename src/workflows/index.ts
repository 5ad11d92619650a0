// The workflows the Kindling worker registers (its workflowsPath). Deterministic code only.
export { definitionSweeperWorkflow } from "./definition-sweeper.workflow.ts";
export { rewardLifecycleWorkflow } from "./reward-lifecycle.workflow.ts";
export { retentionWorkflow } from "./retention.workflow.ts";
