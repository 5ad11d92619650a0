// Program analytics at scale (issue 13, item 3: set-based, a read is one indexed query). On six definitions of a
// few thousand member streaks each (counts in every histogram bucket, opted-out members) and a few thousand
// events over five days, after ANALYZE:
// - the snapshot statement reads member_streak and streak_event through indexes (no sequential scan), and the
//   read is one range of definition_stats_day's primary key, under a generic and a custom plan;
// - what the snapshot writes equals the same numbers counted here in TypeScript from every row and event.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COUNT_BUCKETS, READ_SQL, SNAPSHOT_SQL, readDefinitionStats, snapshotArgs, snapshotDefinitionStats } from "../../src/engine/history/definition-stats.ts";
import { createOrchestrationDb, dailyUtc, DAY, HOUR, type OrchestrationDb } from "../support/orchestration.ts";
import { preparedPlans, withoutEmptyPartitionScans } from "../support/plans.ts";

const MEMBERS = 4000;
const D0 = Date.UTC(2025, 5, 1);
// streak_event's week partitions count as streak_event.
const SCANNED_TABLES = /Seq Scan on (member_streak|streak_event(_legacy|_default|_p\d{8})?|definition_stats_day)\b/;
const TYPES = ["streak.incremented", "streak.broken", "streak.freeze_used", "streak.at_risk", "streak.milestone_reached", "reward.issued", "reward.claimed", "reward.expired", "streak.completed"];

let db: OrchestrationDb;
let defs: string[];

beforeAll(async () => {
  db = await createOrchestrationDb("stats_plans");
  // Five neighbours: the definition is a sixth of the table, as one of a tenant's many.
  defs = [await db.definition(dailyUtc({ name: "Stats" }))];
  for (let i = 0; i < 5; i++) defs.push(await db.definition(dailyUtc({ name: `Neighbour ${i}` })));
  await db.pool.query(
    `insert into member (id, tenant_id, external_id, created_at, updated_at, leaderboard_opt_out)
     select gen_random_uuid(), $1, 'm' || i, now(), now(), i % 13 = 0 from generate_series(1, $2) i`,
    [db.tenantId, MEMBERS],
  );
  // Counts 0..149 (every bucket, and 0), opted-out rows among them, for every definition.
  await db.pool.query(
    `insert into member_streak (id, tenant_id, member_id, definition_id, status, current_count, longest_count, leaderboard_opt_out, version, created_at, updated_at)
     select gen_random_uuid(), $1, m.id, d.id, 'IN_PROGRESS', (substr(m.external_id, 2)::int * 7919) % 150, 150, m.leaderboard_opt_out, 1, now(), now()
       from member m cross join unnest($2::uuid[]) as d(id) where m.tenant_id = $1`,
    [db.tenantId, defs],
  );
  // Events over days 0-4 for every definition: every counted type, increments to 1 and to more, milestones 3 and 7.
  await db.pool.query(
    `insert into streak_event (tenant_id, type, member_id, definition_id, dedupe_key, payload, occurred_at, created_at)
     select $1, ($3::text[])[1 + i % array_length($3::text[], 1)], null, d.id, d.id::text || ':' || i,
            jsonb_build_object('new_count', 1 + i % 3, 'threshold', case when i % 2 = 0 then 3 else 7 end),
            $4::timestamptz + make_interval(mins => (i * 37) % (5 * 24 * 60)), now()
       from generate_series(1, 6000) i cross join unnest($2::uuid[]) as d(id)`,
    [db.tenantId, defs, TYPES, new Date(D0).toISOString()],
  );
  await db.pool.query("vacuum analyze member_streak");
  await db.pool.query("vacuum analyze streak_event");
}, 120_000);
afterAll(async () => {
  await db?.close();
});

describe("definition stats statements", () => {
  it("plans/snapshot_and_read_use_indexes_without_a_sequential_scan", async () => {
    const scope = { tenantId: db.tenantId, definitionId: defs[0]! };
    const args = snapshotArgs(scope, D0, D0 + 4 * DAY, D0 + 4 * DAY + HOUR).map((v) => (v instanceof Date ? v.toISOString() : v));
    const planned = [
      ...(await preparedPlans(db.pool, SNAPSHOT_SQL, ["uuid", "uuid", "text", "text", "timestamptz", "timestamptz", "timestamptz"], args)),
      ...(await preparedPlans(db.pool, READ_SQL, ["uuid", "uuid", "text", "text"], [scope.tenantId, scope.definitionId, "2025-06-01", "2025-06-30"])),
    ];
    for (const plan of planned) expect(withoutEmptyPartitionScans(plan)).not.toMatch(SCANNED_TABLES);
    expect(planned.join("\n")).toMatch(/member_streak_leaderboard_current/);
    expect(planned.join("\n")).toMatch(/member_streak_opted_out_counts/);
    // The partitioned index, as each week's partition names it (streak_event_p20261130_definition_id_occurred_at_idx).
    expect(planned.join("\n")).toMatch(/streak_event_(definition_time|(legacy|default|p\d{8})_definition_id_occurred_at_idx)/);
    expect(planned.slice(2).join("\n")).toMatch(/definition_stats_day_pkey/);
  });

  it("stats/snapshot_equals_the_rows_and_events_counted_one_by_one", async () => {
    const scope = { tenantId: db.tenantId, definitionId: defs[0]! };
    // A sweeper that was down since day 0: the snapshot on day 4 fills days 0-3 (closed; state only for day 3)
    // and day 4.
    await snapshotDefinitionStats(db.pool, scope, D0 + 4 * DAY + HOUR);
    const days = await readDefinitionStats(db.pool, scope, "2025-06-01", "2025-06-05");

    const { rows: streaks } = await db.pool.query<{ current_count: number }>("select current_count from member_streak where definition_id = $1", [scope.definitionId]);
    const active = streaks.filter((s) => s.current_count > 0);
    const histogram = COUNT_BUCKETS.map(([min, max]) => active.filter((s) => s.current_count >= min && (max === null || s.current_count <= max)).length);
    const { rows: events } = await db.pool.query<{ type: string; payload: { new_count: number; threshold: number }; occurred_at: Date }>(
      "select type, payload, occurred_at from streak_event where definition_id = $1",
      [scope.definitionId],
    );
    const expected = [0, 1, 2, 3, 4].map((day) => {
      const on = events.filter((e) => Math.floor((e.occurred_at.getTime() - D0) / DAY) === day);
      const n = (type: string) => on.filter((e) => e.type === type).length;
      const milestones = [3, 7].map((threshold) => ({ threshold, reached: on.filter((e) => e.type === "streak.milestone_reached" && e.payload.threshold === threshold).length }));
      const hasState = day >= 3;
      return {
        day: new Date(D0 + day * DAY).toISOString().slice(0, 10), closed: day < 4, hasState,
        active: hasState ? active.length : 0, histogram: hasState ? histogram : [],
        atRisk: n("streak.at_risk"), broken: n("streak.broken"), frozen: n("streak.freeze_used"),
        started: on.filter((e) => e.type === "streak.incremented" && e.payload.new_count === 1).length,
        milestones, rewardsIssued: n("reward.issued"), rewardsClaimed: n("reward.claimed"), rewardsExpired: n("reward.expired"),
      };
    });
    expect(days.map(({ computedAt: _, ...d }) => d)).toEqual(expected);
    expect(histogram.every((n) => n > 0)).toBe(true);
    expect(active.length).toBeLessThan(streaks.length);
  });
});
