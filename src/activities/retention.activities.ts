// Retention activities: thin adapters from the retention workflow to src/engine/retention/retention.ts. The global default
// retention is the worker's configuration (KINDLING_RETENTION_DAYS), read here rather than carried in the
// workflow's input, so a changed setting applies at the next pass without restarting the workflow.
import { Context } from "@temporalio/activity";
import type { Pool } from "pg";
import { applyRetention, ensurePartitions, type RetentionPolicy, type RetentionResult } from "../engine/retention/retention.ts";

export interface RetentionActivityDeps {
  readonly pool: Pool;
  readonly retention?: RetentionPolicy;
}

function heartbeat(done: number): void {
  // Outside an activity (tests calling the function directly) there is nothing to heartbeat to.
  try {
    Context.current().heartbeat(done);
  } catch {
    return;
  }
}

export function createRetentionActivities(deps: RetentionActivityDeps) {
  const policy: RetentionPolicy = deps.retention ?? { defaultDays: null };
  return {
    /** Creates the week partitions of `now`'s week and the weeks ahead; returns the ones created. */
    async ensurePartitions(input: { now: number }): Promise<string[]> {
      return ensurePartitions(deps.pool, input.now);
    },
    /** One retention pass at `now` (drops whole weeks, deletes the rows of shorter retentions). */
    async applyRetention(input: { now: number }): Promise<RetentionResult> {
      return applyRetention(deps.pool, input.now, policy, { onPage: heartbeat });
    },
  };
}
