// One long-running workflow per LIVE or PAUSED definition closes its windows (PRODUCT §5 "Window expiry").
// It scales by deadline bucket, not by member: it asks PostgreSQL for the definition's next due instant (the
// earliest break_at or at-risk time over all its member streaks — member-local zones and rolling windows are
// just different values there), sleeps on one durable timer until that instant rounded up to the minute, then
// runs the set-based sweeps as activities, then snapshots the definition's daily stats (it also wakes at UTC
// midnight for that, once the definition has stats). Its history per loop is a constant handful of events whatever the
// number of members, and it continues as new before the history grows large.
//
// PAUSED: it keeps sweeping, but windows closing in a pause are neutral (the sweeps read the pauses) and no
// at-risk reminders go out. ARCHIVED: it stops. A definitionChanged signal wakes it to re-plan at once.
import { ActivityFailure, condition, continueAsNew, patched, proxyActivities, setCurrentDetails, setHandler, workflowInfo } from "@temporalio/workflow";
import type { KindlingActivities } from "../activities/index.ts";
import { definitionChangedSignal, sweeperStatusQuery, type SweeperInput, type SweeperStatus, type SweptDefinitionState } from "./messages.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

// A sweep's liveness is its heartbeat (one per page): a worker that dies is noticed within 2 minutes. Its whole
// run has no useful bound: 10,000,000 streaks took 51 minutes on a loaded 2-core machine, and a 30-minute cap
// made Temporal retry a sweep that was still working, racing it row lock for row lock (bench:rollover, issue 15).
const sweeps = proxyActivities<KindlingActivities>({
  startToCloseTimeout: "24 hours",
  heartbeatTimeout: "2 minutes",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "1 minute" },
});

// The stats snapshot is one statement (no heartbeats), and never holds up window closes: after a few attempts
// the sweeper goes on, and the next snapshot recomputes every day since the last closed one.
const stats = proxyActivities<KindlingActivities>({
  startToCloseTimeout: "10 minutes",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "1 minute", maximumAttempts: 3 },
});

const queries = proxyActivities<KindlingActivities>({
  startToCloseTimeout: "1 minute",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "1 minute" },
});

export async function definitionSweeperWorkflow(input: SweeperInput): Promise<SweeperStatus> {
  const { tenantId, definitionId } = input;
  const maxSleepMs = input.maxSleepMs ?? HOUR;
  const maxIterations = input.maxIterations ?? 200;
  // In an object: the signal handler changes it between awaits, which flow analysis cannot see.
  const current: { state: SweptDefinitionState | "ARCHIVED" } = { state: input.state };
  let changed = false;
  let atRiskSweptUntil = input.atRiskSweptUntil ?? null;
  let lastSweepAt: number | null = null;
  // After a failed stats snapshot, the stats are not due again before this instant (see below).
  let statsRetryAt: number | null = null;
  let nextWakeAt: number | null = null;
  const totals = { broken: 0, advanced: 0, atRisk: 0 };
  const stateNow = (): SweptDefinitionState | "ARCHIVED" => current.state;
  const status = (): SweeperStatus => ({ state: current.state, nextWakeAt, lastSweepAt, ...totals });

  setHandler(definitionChangedSignal, (change) => {
    if (change.state === "ARCHIVED" || change.state === "LIVE" || change.state === "PAUSED") current.state = change.state;
    changed = true;
  });
  setHandler(sweeperStatusQuery, status);
  // The relay's static summary (tenant and definition names) is gone after continue-as-new; the memo it wrote is
  // carried over by the server, so each run shows that summary as its current details in the UI.
  const summary = workflowInfo().memo?.summary;
  if (typeof summary === "string") setCurrentDetails(summary);

  for (let iteration = 0; ; iteration++) {
    if (current.state === "ARCHIVED") return status();
    const now = Date.now();
    const due = await queries.nextSweepDue({ tenantId, definitionId, atRiskAfter: atRiskSweptUntil, asOf: now, statsRetryAt });
    // Bucket deadlines to the minute: one timer serves every streak due within it.
    let wakeAt = due === null ? now + maxSleepMs : Math.ceil(due / MINUTE) * MINUTE;
    // Something the last sweep should have finalised is still due (a row written meanwhile): look again, but
    // not in a tight loop.
    if (due !== null && lastSweepAt !== null && due <= lastSweepAt) wakeAt = Math.max(wakeAt, lastSweepAt + MINUTE);
    wakeAt = Math.min(wakeAt, now + maxSleepMs);

    if (wakeAt <= now) {
      const scope = { tenantId, definitionId, asOf: now };
      totals.broken += await sweeps.sweepBreaks(scope);
      totals.advanced += await sweeps.sweepAdvance(scope);
      if (current.state === "LIVE") totals.atRisk += await sweeps.sweepAtRisk(scope);
      // Program analytics (issue 13): the day's stats, after what this sweep finalised. Patched: runs started
      // before it replay without the activity.
      if (patched("definition-stats")) {
        try {
          await stats.snapshotDefinitionStats(scope);
          statsRetryAt = null;
        } catch (error) {
          if (!(error instanceof ActivityFailure)) throw error;
          // The day stays due for its stats; try again in an hour, not at every minute's look.
          statsRetryAt = now + HOUR;
        }
      }
      atRiskSweptUntil = now;
      lastSweepAt = now;
      continue;
    }

    nextWakeAt = wakeAt;
    changed = false;
    await condition(() => changed, wakeAt - now);
    nextWakeAt = null;
    const state = stateNow();
    if (state !== "ARCHIVED" && (workflowInfo().continueAsNewSuggested || iteration >= maxIterations)) {
      await continueAsNew<typeof definitionSweeperWorkflow>({ ...input, state, atRiskSweptUntil });
    }
  }
}
