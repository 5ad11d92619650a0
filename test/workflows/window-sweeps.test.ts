// The set-based sweeps against real PostgreSQL, without Temporal: what they write equals what the domain says,
// and re-running any of them changes nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { advance } from "../../src/domain/streak-machine.ts";
import { progressView } from "../../src/domain/progress-view.ts";
import { nextDueAt, sweepAdvance, sweepAtRisk, sweepBreaks } from "../../src/engine/sweeps/window-sweeps.ts";
import { createOrchestrationDb, dailyUtc, DAY, HOUR, type OrchestrationDb } from "../support/orchestration.ts";

let db: OrchestrationDb;
beforeAll(async () => {
  db = await createOrchestrationDb("sweeps");
});
afterAll(async () => {
  await db?.close();
});

const D0 = Date.UTC(2030, 0, 7);
const at = (day: number, hour: number) => D0 + day * DAY + hour * HOUR;

async function snapshot() {
  const rows = await db.pool.query("select s.id, s.status, s.current_count, s.break_at, s.break_kind, s.break_window_key, s.at_risk_notified_window, st.state from member_streak s join member_streak_state st on st.member_streak_id = s.id order by s.id");
  const events = await db.pool.query("select dedupe_key, payload from streak_event order by dedupe_key");
  return { rows: rows.rows, events: events.rows };
}

describe("window sweeps", () => {
  it("sweeps/rerun_changes_nothing_and_matches_the_domain", async () => {
    const rules = { graceDuration: { seconds: BigInt(3600) }, atRiskLeadDuration: { seconds: BigInt(4 * 3600) } };
    const plain = await db.definition(dailyUtc({ name: "Plain", ...rules }));
    const frozen = await db.definition(dailyUtc({ name: "Frozen", ...rules, freezePolicy: { maxHeld: 1, initialGrant: 1 } }));
    for (const m of ["a", "b", "c"]) {
      await db.record(m, plain, at(0, 9), at(0, 9), `${m}-plain-0`);
      await db.record(m, frozen, at(0, 9), at(0, 9), `${m}-frozen-0`);
    }
    await db.record("a", plain, at(1, 9), at(1, 9), "a-plain-1");
    await db.record("a", frozen, at(1, 9), at(1, 9), "a-frozen-1");
    const plainDef = await db.catalogDefinition(plain);
    const frozenDef = await db.catalogDefinition(frozen);

    // Day 1, 21:00: b and c are at risk on both definitions; a is not.
    const t1 = at(1, 21);
    expect(await sweepAtRisk(db.pool, plainDef, t1)).toBe(2);
    expect(await sweepAtRisk(db.pool, frozenDef, t1)).toBe(2);
    const afterRisk = await snapshot();
    expect(await sweepAtRisk(db.pool, plainDef, t1 + HOUR)).toBe(0);
    expect(await snapshot()).toEqual(afterRisk);

    // Day 2, 01:00 (close + grace): b and c break on "plain" set-based, use their freeze on "frozen" via advance.
    const t2 = at(2, 1);
    expect(await nextDueAt(db.pool, { tenantId: db.tenantId, definitionId: plain }, t1)).toBe(t2);
    expect(await sweepBreaks(db.pool, plainDef, t2)).toBe(2);
    expect(await sweepBreaks(db.pool, frozenDef, t2)).toBe(0);
    expect(await sweepAdvance(db.pool, frozenDef, t2)).toBe(2);
    const afterClose = await snapshot();
    for (const sweep of [sweepBreaks, sweepAdvance, sweepAtRisk]) {
      expect(await sweep(db.pool, plainDef, t2)).toBe(0);
      expect(await sweep(db.pool, frozenDef, t2)).toBe(0);
    }
    expect(await snapshot()).toEqual(afterClose);

    // The set-based break wrote exactly the event the domain would have: same dedupe key, same payload.
    const { rows } = await db.pool.query<{ id: string; state: Parameters<typeof advance>[1]; external_id: string; member_id: string }>(
      "select s.id, st.state, m.external_id, s.member_id from member_streak s join member_streak_state st on st.member_streak_id = s.id join member m on m.id = s.member_id where s.definition_id = $1 and m.external_id = 'b'",
      [plain],
    );
    const b = rows[0]!;
    const domain = advance(plainDef.rules, b.state, t2, { pausedIntervals: plainDef.pauses });
    const broken = domain.effects.find((e) => e.type === "streak.broken")!;
    const stored = (await db.events("streak.broken", plain)).find((e) => e.member === "b")!;
    expect(stored.dedupeKey).toBe(`${b.id}:broken:${broken.type === "streak.broken" ? broken.windowKey : ""}`);
    expect(stored.payload).toEqual({ user_id: "b", definition_id: plain, final_count: 1, window_key: "2030-01-08" });
    expect(stored.occurredAt).toBe(t2);
    // And the untouched JSON state still reads as broken, exactly like the swept columns say.
    expect(progressView(plainDef.rules, b.state, t2, {}).current).toBe(0);
    expect(await db.streak("b", plain)).toMatchObject({ status: "BROKEN", current_count: 0 });
    expect(await db.streak("b", frozen)).toMatchObject({ status: "IN_PROGRESS", current_count: 1, break_kind: "BREAK" });
    expect((await db.events("streak.freeze_used", frozen)).map((e) => e.member).sort()).toEqual(["b", "c"]);
  });
});
