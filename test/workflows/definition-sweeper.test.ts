// The definition sweeper on a time-skipping Temporal server against real PostgreSQL: a simulated week of daily
// windows (UTC, 2 h grace, reminders 4 h before close), with members who act every day, stop, act late inside
// grace, act after the reminder, hold a freeze, or sit out a definition pause. Activity is recorded through the
// real ingestor at the server's simulated time; everything after that is the sweeper's doing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestWorkflowEnvironment } from "@temporalio/testing";
import { Worker } from "@temporalio/worker";
import { createTimeSkippingEnvironment, uniqueTaskQueue } from "../support/temporal.ts";
import { createOrchestrationDb, dailyUtc, DAY, HOUR, MINUTE, type OrchestrationDb } from "../support/orchestration.ts";
import { createActivities } from "../../src/activities/index.ts";
import { WORKFLOWS_PATH } from "../../workers/worker.ts";
import { definitionChangedSignal, sweeperStatusQuery, sweeperWorkflowId } from "../../src/workflows/messages.ts";
import type { definitionSweeperWorkflow } from "../../src/workflows/definition-sweeper.workflow.ts";

let env: TestWorkflowEnvironment;
let db: OrchestrationDb;
beforeAll(async () => {
  [env, db] = await Promise.all([createTimeSkippingEnvironment(), createOrchestrationDb("sweeper")]);
});
afterAll(async () => {
  await env?.teardown();
  await db?.close();
});

const dayKey = (ms: number) => new Date(ms).toISOString().slice(0, 10);

describe("definition sweeper over a simulated week", () => {
  it("breaks/at_risk/freeze/grace/pause_each_happen_once_at_their_time", async () => {
    const taskQueue = uniqueTaskQueue("sweeper");
    const rules = { graceDuration: { seconds: BigInt(2 * 3600) }, atRiskLeadDuration: { seconds: BigInt(4 * 3600) } };
    const daily = await db.definition(dailyUtc({ name: "Daily", ...rules }));
    const frozen = await db.definition(dailyUtc({ name: "With freezes", ...rules, freezePolicy: { maxHeld: 2, initialGrant: 1 } }));
    const paused = await db.definition(dailyUtc({ name: "Paused mid-week", ...rules }));

    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: WORKFLOWS_PATH, activities: createActivities({ pool: db.pool }) });
    await worker.runUntil(async () => {
      const start = async (definitionId: string) =>
        env.client.workflow.start<typeof definitionSweeperWorkflow>("definitionSweeperWorkflow", {
          taskQueue,
          workflowId: sweeperWorkflowId(db.tenantId, definitionId),
          args: [{ version: 1, tenantId: db.tenantId, definitionId, state: "LIVE" }],
        });
      const sweepers = await Promise.all([start(daily), start(frozen), start(paused)]);

      // Day 0 starts at the next UTC midnight (plus one day of slack for the setup).
      const d0 = Math.ceil(((await env.currentTimeMs()) + HOUR) / DAY) * DAY;
      const at = (day: number, hour: number, minute = 0) => d0 + day * DAY + hour * HOUR + minute * MINUTE;
      const goTo = async (t: number) => {
        const now = await env.currentTimeMs();
        if (t > now) await env.sleep(t - now);
        return env.currentTimeMs();
      };
      const record = async (member: string, def: string, occurredAt: number) => db.record(member, def, occurredAt, await goTo(Math.max(occurredAt, await env.currentTimeMs())));

      for (let day = 0; day < 7; day++) {
        if (day === 3) {
          // Dave's day 2 purchase at 23:30 arrives at 01:00 on day 3, inside the 2 h grace: it still counts.
          await db.record("dave", daily, at(2, 23, 30), await goTo(at(3, 1)), "dave-late");
        }
        if (day === 4) {
          // Bob's day 3 closes at day 4 00:00 + 2 h grace: not broken a minute before, broken a minute after.
          await goTo(at(4, 1, 59));
          expect(await db.streak("bob", daily)).toMatchObject({ status: "IN_PROGRESS", current_count: 3 });
          await goTo(at(4, 2, 1));
          expect(await db.streak("bob", daily)).toMatchObject({ status: "BROKEN", current_count: 0, break_at: null });
        }
        // 10:00 — before the 20:00 reminder.
        await record("alice", daily, at(day, 10));
        if (day < 3) await record("bob", daily, at(day, 10));
        if (day !== 2) await record("dave", daily, at(day, 10));
        if (day === 3) await record("alice-spare", daily, at(day, 10));
        if (day !== 2 && day < 4) await record("erin", frozen, at(day, 10));
        if (day < 2) await record("pablo", paused, at(day, 10));
        if (day === 0) await record("paula", paused, at(day, 10));
        // Pause "paused" from day 2 12:00 to day 3 12:00: day 2's window closes inside it.
        if (day === 2) {
          await goTo(at(2, 12));
          await db.setState(paused, "PAUSED", [{ from: at(2, 12), to: null }]);
          await sweepers[2].signal(definitionChangedSignal, { state: "PAUSED", version: 2 });
        }
        if (day === 3) {
          await goTo(at(3, 12));
          await db.setState(paused, "LIVE", [{ from: at(2, 12), to: at(3, 12) }]);
          await sweepers[2].signal(definitionChangedSignal, { state: "LIVE", version: 3 });
          await record("pablo", paused, at(day, 13));
        }
        // Bob is unsatisfied on day 3: exactly one reminder, due at 20:00.
        if (day === 3) {
          await goTo(at(3, 19, 59));
          expect((await db.events("streak.at_risk", daily)).filter((e) => e.member === "bob")).toHaveLength(0);
          await goTo(at(3, 20, 1));
          const bobRisk = (await db.events("streak.at_risk", daily)).filter((e) => e.member === "bob");
          expect(bobRisk).toHaveLength(1);
          expect(bobRisk[0]!.payload).toMatchObject({ user_id: "bob", definition_id: daily, current_count: 3, window_end_time: new Date(at(4, 0)).toISOString(), window_key: dayKey(at(3, 0)) });
          expect(bobRisk[0]!.occurredAt).toBe(at(3, 20));
        }
        // Cora acts at 21:00, after the reminder went out.
        await record("cora", daily, at(day, 21));
      }
      await goTo(at(7, 3));

      const broken = await db.events("streak.broken");
      expect(broken.map((e) => e.member).sort()).toEqual(["alice-spare", "bob", "erin", "pablo", "paula"]);
      const bobBroken = broken.find((e) => e.member === "bob")!;
      expect(bobBroken.payload).toMatchObject({ final_count: 3, window_key: dayKey(at(3, 0)) });
      expect(bobBroken.occurredAt).toBe(at(4, 2));

      const atRisk = await db.events("streak.at_risk", daily);
      const count = (m: string) => atRisk.filter((e) => e.member === m).length;
      // Alice always acts before 20:00; Cora every day from day 1 (day 0 she had no run yet); Bob on day 3 only.
      expect({ alice: count("alice"), bob: count("bob"), cora: count("cora"), dave: count("dave") }).toEqual({ alice: 0, bob: 1, cora: 6, dave: 1 });
      // Dave's reminder was for day 2 (he was unsatisfied at 20:00), and a late event inside grace saved it.
      expect(atRisk.find((e) => e.member === "dave")!.payload).toMatchObject({ window_key: dayKey(at(2, 0)) });

      expect(await db.streak("alice", daily)).toMatchObject({ status: "IN_PROGRESS", current_count: 7 });
      expect(await db.streak("cora", daily)).toMatchObject({ status: "IN_PROGRESS", current_count: 7 });
      expect(await db.streak("dave", daily)).toMatchObject({ status: "IN_PROGRESS", current_count: 7 });

      // Erin: day 2 missed → freeze used (count carries on), day 4 missed with no freeze left → broken at 3.
      const freezes = await db.events("streak.freeze_used", frozen);
      expect(freezes.map((e) => [e.member, e.payload.window_key])).toEqual([["erin", dayKey(at(2, 0))]]);
      expect(broken.find((e) => e.member === "erin")!.payload).toMatchObject({ final_count: 3, window_key: dayKey(at(4, 0)) });

      // Pablo: day 2 closed during the pause → neutral, day 3 continued the run, day 4 (missed) broke it at 3.
      // Paula broke before the pause.
      expect(broken.find((e) => e.member === "pablo")!.payload).toMatchObject({ final_count: 3, window_key: dayKey(at(4, 0)) });
      expect(broken.find((e) => e.member === "paula")!.payload).toMatchObject({ final_count: 1, window_key: dayKey(at(1, 0)) });

      // Program analytics: the sweeper snapshotted the daily stats as it went. Each day 0-6 is closed, with its
      // state taken at midnight — the sweeper wakes then to close the day, before the 02:00 breaks: at day 3's
      // close all five members of "daily" were active, Bob in grace — and its counters equal that day's events.
      const { rows: statRows } = await db.pool.query<{ day: string; closed: boolean; has_state: boolean; active: number; broken: number; at_risk: number; frozen: number }>(
        "select day::text as day, closed, has_state, active, broken, at_risk, frozen from definition_stats_day where definition_id = any($1) and day >= $2 and day < $3 order by definition_id = $4 desc, day",
        [[daily, frozen], dayKey(at(0, 0)), dayKey(at(7, 0)), daily],
      );
      const onDay = (events: { occurredAt: number }[], day: number) => events.filter((e) => dayKey(e.occurredAt) === dayKey(at(day, 0))).length;
      const dailyBroken = await db.events("streak.broken", daily);
      const frozenAtRisk = await db.events("streak.at_risk", frozen);
      const days = [0, 1, 2, 3, 4, 5, 6];
      expect(statRows.map(({ day, closed, has_state, broken, at_risk, frozen }) => ({ day, closed, has_state, broken, at_risk, frozen }))).toEqual([
        ...days.map((d) => ({ day: dayKey(at(d, 0)), closed: true, has_state: true, broken: onDay(dailyBroken, d), at_risk: onDay(atRisk, d), frozen: 0 })),
        ...days.map((d) => ({ day: dayKey(at(d, 0)), closed: true, has_state: true, broken: onDay(broken.filter((e) => e.payload.definition_id === frozen), d), at_risk: onDay(frozenAtRisk, d), frozen: onDay(freezes, d) })),
      ]);
      expect(statRows[3]!.active).toBe(5);
      expect(statRows.reduce((n, r) => n + r.broken, 0)).toBe(dailyBroken.length + broken.filter((e) => e.payload.definition_id === frozen).length);

      const status = await sweepers[0].query(sweeperStatusQuery);
      expect(status.state).toBe("LIVE");

      // Archiving stops the sweeper.
      await sweepers[0].signal(definitionChangedSignal, { state: "ARCHIVED", version: 9 });
      expect(await sweepers[0].result()).toMatchObject({ state: "ARCHIVED" });
      for (const s of sweepers.slice(1)) await s.terminate("test over");
    });
  });
});
