// Sweeper activities: thin adapters from the definition sweeper workflow to the set-based sweeps. Each loads the
// definition fresh (its pauses decide what is neutral) and heartbeats per page, so a worker that dies mid-sweep
// is noticed within the heartbeat timeout and the retry resumes: finalised rows no longer match.
import { Context } from "@temporalio/activity";
import type { Pool } from "pg";
import type { CatalogDefinition, DefinitionCatalog } from "../engine/definitions/definition-catalog.ts";
import { nextDueAt, sweepAdvance, sweepAtRisk, sweepBreaks } from "../engine/sweeps/window-sweeps.ts";
import { nextStatsDue, snapshotDefinitionStats } from "../engine/history/definition-stats.ts";

export interface SweepActivityInput {
  readonly tenantId: string;
  readonly definitionId: string;
  /** The workflow's clock at the sweep: everything due at or before it is finalised. */
  readonly asOf: number;
}

export interface SweepActivityDeps {
  readonly pool: Pool;
  readonly catalog: DefinitionCatalog;
  readonly breakPageSize?: number;
  /** The database is a Citus coordinator (src/db/database-kind.ts). */
  readonly citus?: boolean;
}

/**
 * Called after every committed page. Outside an activity (tests calling the sweeps directly) there is nothing to
 * heartbeat to. Inside one, an attempt Temporal gave up on (timed out, cancelled, its workflow gone) stops here,
 * between pages, instead of racing the attempt that replaced it for the same rows: the replacement resumes
 * where it stopped, since finalised rows no longer match.
 */
function heartbeat(done: number): void {
  let context: Context;
  try {
    context = Context.current();
  } catch {
    return;
  }
  context.heartbeat(done);
  if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason ?? new Error("sweep cancelled");
}

export function createSweepActivities(deps: SweepActivityDeps) {
  // The worker's catalog has no TTL (see createActivities): pauses and state are read fresh for every sweep.
  const definition = (tenantId: string, definitionId: string): Promise<CatalogDefinition | undefined> => deps.catalog.get(tenantId, definitionId);

  return {
    /**
     * Next instant the sweeper should look (earliest break, or at-risk reminder after `atRiskAfter`), or null.
     * For a LIVE definition with an at-risk lead it is at most half the lead after `asOf` (the workflow's clock):
     * a reminder that becomes due while the sweeper sleeps (a member's first activity in an earlier zone, a SUM
     * not yet met) is then sent at most lead/2 late — always before its window closes — instead of up to the
     * sweeper's longest sleep (1 h) late, which for a short lead would be after the close, i.e. never.
     * It is also at most the next UTC midnight, where the day's stats close (nextStatsDue), or `statsRetryAt`
     * after a failed snapshot.
     */
    async nextSweepDue(input: { tenantId: string; definitionId: string; atRiskAfter: number | null; asOf?: number; statsRetryAt?: number | null }): Promise<number> {
      const asOf = input.asOf ?? Date.now();
      const [deadline, statsDueAt] = await Promise.all([nextDueAt(deps.pool, input, input.atRiskAfter), nextStatsDue(deps.pool, input, asOf)]);
      // After a failed snapshot the workflow says when to try again: overdue stats wait until then.
      const statsDue = Math.max(statsDueAt, input.statsRetryAt ?? statsDueAt);
      const due = deadline === null ? statsDue : Math.min(deadline, statsDue);
      const def = await definition(input.tenantId, input.definitionId);
      const leadMs = (def?.rules.atRiskLeadSeconds ?? 0) * 1000;
      if (def?.state !== "LIVE" || leadMs <= 0) return due;
      const lookAgainAt = asOf + Math.floor(leadMs / 2);
      return Math.min(due, lookAgainAt);
    },
    async sweepBreaks(input: SweepActivityInput): Promise<number> {
      const def = await definition(input.tenantId, input.definitionId);
      if (!def) return 0;
      return sweepBreaks(deps.pool, def, input.asOf, { pageSize: deps.breakPageSize, onPage: heartbeat, citus: deps.citus ?? false });
    },
    async sweepAdvance(input: SweepActivityInput): Promise<number> {
      const def = await definition(input.tenantId, input.definitionId);
      if (!def) return 0;
      return sweepAdvance(deps.pool, def, input.asOf, { onPage: heartbeat, citus: deps.citus ?? false });
    },
    async sweepAtRisk(input: SweepActivityInput): Promise<number> {
      const def = await definition(input.tenantId, input.definitionId);
      // A paused definition accepts no activity, so a reminder to act would be a lie.
      if (!def || def.state !== "LIVE") return 0;
      return sweepAtRisk(deps.pool, def, input.asOf, { pageSize: deps.breakPageSize, onPage: heartbeat, citus: deps.citus ?? false });
    },
    /** After the sweeps at `asOf`: the definition's stats rows for today and the days just closed. */
    async snapshotDefinitionStats(input: SweepActivityInput): Promise<number> {
      return snapshotDefinitionStats(deps.pool, input, input.asOf);
    },
  };
}
