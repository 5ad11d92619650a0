// The sweeper's look-up activity: with an at-risk lead the sweeper never sleeps longer than half the lead, so a
// reminder that became due while it slept still goes out before its window closes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDefinitionCatalog } from "../../src/engine/definitions/definition-catalog.ts";
import { createSweepActivities } from "../../src/activities/sweep.activities.ts";
import { createOrchestrationDb, dailyUtc, DAY, HOUR, MINUTE, type OrchestrationDb } from "../support/orchestration.ts";

let db: OrchestrationDb;
beforeAll(async () => {
  db = await createOrchestrationDb("sweep_activities");
});
afterAll(async () => {
  await db?.close();
});

const D0 = Date.UTC(2030, 0, 7);
const at = (day: number, hour: number, minute = 0) => D0 + day * DAY + hour * HOUR + minute * MINUTE;

describe("nextSweepDue", () => {
  it("next_sweep_due/at_most_half_the_at_risk_lead_ahead_for_a_live_definition", async () => {
    const activities = createSweepActivities({ pool: db.pool, catalog: createDefinitionCatalog(db.pool, 0) });
    const lead = { atRiskLeadDuration: { seconds: BigInt(10 * 60) } };
    const live = await db.definition(dailyUtc({ name: "Short lead", ...lead }));
    const paused = await db.definition(dailyUtc({ name: "Paused short lead", ...lead }), "PAUSED");
    const noLead = await db.definition(dailyUtc({ name: "No lead" }));
    const nextDue = (definitionId: string, asOf: number) => activities.nextSweepDue({ tenantId: db.tenantId, definitionId, atRiskAfter: null, asOf });
    // Before its first stats snapshot a sweeper is due at once (the start of the day)...
    expect(await nextDue(noLead, at(0, 12))).toBe(at(0, 0));
    // ... and then every sweep snapshots the day's stats, so the stats are next due at the coming UTC midnight.
    const ask = async (definitionId: string, asOf: number) => {
      await activities.snapshotDefinitionStats({ tenantId: db.tenantId, definitionId, asOf });
      return nextDue(definitionId, asOf);
    };

    // Nothing due at all: look again in lead/2 (5 min) — only when reminders can be due; otherwise at the next
    // UTC midnight, where the day's stats close.
    expect(await ask(live, at(0, 12))).toBe(at(0, 12, 5));
    expect(await ask(paused, at(0, 12))).toBe(at(1, 0));
    expect(await ask(noLead, at(0, 12))).toBe(at(1, 0));

    // A member satisfies day 0: the day-1 window's reminder is due at day 1 23:50.
    await db.record("m", live, at(0, 9), at(0, 9), "m-0");
    expect(await ask(live, at(1, 12))).toBe(at(1, 12, 5));
    expect(await ask(live, at(1, 23, 48))).toBe(at(1, 23, 50));
  });
});
