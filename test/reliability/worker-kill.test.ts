// Issue 17, item 3: the worker SIGKILLed in the middle of a break sweep and in the middle of a batch of reward
// fulfilments, then started again. Each streak is broken once (one streak.broken event, breaks = 1), each reward
// issued once (one coupon, one reward.issued event).
// A killed sweep resumes when Temporal declares the lost attempt dead: the sweep activity's heartbeat timeout
// (2 minutes), so this file takes minutes and runs in `npm run test:reliability`, not in `npm test`.
// Sizes: RELIABILITY_SWEEP_STREAKS (reduced 4,000; full 100,000), RELIABILITY_REWARDS (reduced 60; full 1,000).
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createActivityIngestor } from "../../src/engine/ingest/activity-ingestor.ts";
import { createDefinitionCatalog } from "../../src/engine/definitions/definition-catalog.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";
import { connectToSharedTemporal, type SharedTemporal } from "../support/temporal.ts";
import { clientFor, createTenant, dailyDefinition, transportFor, type Tenant } from "./shared.ts";
import { eventually, size, sleep, startKindlingChild, writeFigures, type KindlingChild } from "./support.ts";

const STREAKS = size("RELIABILITY_SWEEP_STREAKS", 4_000, 100_000);
const REWARDS = size("RELIABILITY_REWARDS", 60, 1_000);
const DAY = 86_400_000;
const WORKER = fileURLToPath(new URL("./fixtures/worker.ts", import.meta.url));

let database: TestDatabase;
let temporal: SharedTemporal;
let api: KindlingChild;
let tenant: Tenant;
let pool: pg.Pool;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  [database, temporal] = await Promise.all([createTestDatabase({ label: "worker_kill" }), connectToSharedTemporal("worker-kill")]);
  api = await startKindlingChild("api", { databaseUrl: database.url });
  tenant = await createTenant(database.url);
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
});
afterAll(async () => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill("SIGKILL");
  await pool?.end();
  await api?.kill();
  await temporal?.close();
  await database?.drop();
});

async function startWorkerProcess(pageSize: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [WORKER, database.url, temporal.address, temporal.namespace, temporal.taskQueue, String(pageSize)], { stdio: ["ignore", "pipe", "pipe"] });
  workers.push(child);
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (output += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (output += c));
  await eventually(async () => (output.includes("READY") ? true : child.exitCode !== null ? Promise.reject(new Error(output)) : undefined), 60_000, "worker start");
  return child;
}

async function sigkill(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGKILL");
  await exited;
}

describe("reliability: worker killed mid-sweep and mid-fulfilment", () => {
  it("reliability/worker_sigkill_mid_break_sweep_breaks_each_streak_once", async () => {
    const transport = transportFor(api.url!, tenant, "grpc");
    const definitionId = await dailyDefinition(transport, "Sweep kill", undefined, Date.now() - 3 * DAY);
    // One real streak, one day in, whose next window closed unsatisfied at midnight: its break is due. Copied to
    // STREAKS members (valid domain states), before any worker runs.
    // Recorded through the real ingestor at a clock two days back (the API would call it too late, rightly).
    const past = Date.now() - 2 * DAY;
    const ingestor = createActivityIngestor({ pool, catalog: createDefinitionCatalog(pool, 0, () => past), now: () => past });
    const recorded = await ingestor.record({ tenantId: tenant.tenantId, memberExternalId: "template", target: { definitionId }, occurredAt: past, uniqueIdentifier: "template", metadata: {} });
    expect(recorded.streaks[0]?.notAppliedReason).toBeNull();
    expect(recorded.streaks[0]?.applied).toBe(true);
    const seedStarted = Date.now();
    await pool.query(
      `insert into member (id, tenant_id, external_id, points_balance, created_at, updated_at)
       select gen_random_uuid(), $1, 'sweep-' || g, 0, now(), now() from generate_series(1, $2::int) g`,
      [tenant.tenantId, STREAKS - 1],
    );
    await pool.query(
      `with t as (
         select s.*, st.state from member_streak s join member_streak_state st on st.member_streak_id = s.id where s.definition_id = $2
       ), copied as (
         insert into member_streak (id, tenant_id, member_id, definition_id, status, current_count, longest_count, window_close_at, at_risk_at,
           break_at, break_kind, break_window_key, last_activity_at, version, created_at, updated_at)
         select gen_random_uuid(), t.tenant_id, m.id, t.definition_id, t.status, t.current_count, t.longest_count, t.window_close_at, t.at_risk_at,
           t.break_at, t.break_kind, t.break_window_key, t.last_activity_at, 1, now(), now()
           from member m cross join t
          where m.tenant_id = $1 and m.external_id like 'sweep-%'
         returning id, member_id
       )
       insert into member_streak_state (member_streak_id, member_id, state) select copied.id, copied.member_id, t.state from copied cross join t`,
      [tenant.tenantId, definitionId],
    );
    await pool.query("analyze member_streak");
    const seedMs = Date.now() - seedStarted;
    const broken = async () => (await pool.query<{ n: number }>("select count(*)::int as n from member_streak where definition_id = $1 and status = 'BROKEN'", [definitionId])).rows[0]!.n;
    expect(await broken()).toBe(0);

    const pageSize = Math.max(25, Math.floor(STREAKS / 50));
    const sweepStarted = Date.now();
    const first = await startWorkerProcess(pageSize);
    let brokenAtKill = 0;
    for (;;) {
      brokenAtKill = await broken();
      if (brokenAtKill > 0) break;
      await sleep(5);
    }
    await sigkill(first);
    const killedAt = Date.now();
    brokenAtKill = await broken();
    await startWorkerProcess(pageSize);
    await eventually(async () => ((await broken()) === STREAKS ? true : undefined), 300_000, "every streak broken");
    const resumedMs = Date.now() - killedAt;

    const events = await pool.query<{ n: number; streaks: number }>(
      "select count(*)::int as n, count(distinct member_id)::int as streaks from streak_event where definition_id = $1 and type = 'streak.broken'",
      [definitionId],
    );
    // The sweep writes the swept columns (the stored JSON state is left as it was and reads as broken the same).
    const keys = await pool.query<{ n: number }>("select count(distinct dedupe_key)::int as n from streak_event where definition_id = $1 and type = 'streak.broken'", [definitionId]);
    await writeFigures("3-worker-kill-sweep", { streaks: STREAKS, pageSize, seedMs, brokenAtKill, killedAfterMs: killedAt - sweepStarted, allBrokenAfterKillMs: resumedMs, brokenEvents: events.rows[0], distinctBreakKeys: keys.rows[0]!.n });

    expect(brokenAtKill).toBeLessThan(STREAKS); // killed in the middle of the sweep
    expect(events.rows[0]).toEqual({ n: STREAKS, streaks: STREAKS });
    expect(keys.rows[0]!.n).toBe(STREAKS);
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) await sigkill(w);
  });

  it("reliability/worker_sigkill_mid_reward_batch_issues_each_reward_once", async () => {
    const transport = transportFor(api.url!, tenant, "grpc");
    const defs = clientFor(DefinitionService, transport);
    const { definition } = await defs.createDefinition({
      definition: {
        name: "Coupon kill",
        eventTypes: [],
        window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
        condition: { type: ConditionType.COUNT, min: 1 },
        milestones: [{
          threshold: 1,
          reward: {
            kind: RewardKind.COUPON,
            name: "10% off",
            fulfilmentMode: FulfilmentMode.PROVIDER,
            provider: { kind: { case: "codeGenerator", value: { prefix: "REL-", length: 12 } }, attemptTimeoutDuration: { seconds: 2n } },
          },
        }],
      },
    });
    const definitionId = definition!.id;
    await defs.publishDefinition({ definitionId });
    // REWARDS members earn the reward while no worker runs: every fulfilment waits in the outbox.
    const activities = clientFor(ActivityService, transport);
    for (let from = 0; from < REWARDS; from += 100) {
      const items = Array.from({ length: Math.min(100, REWARDS - from) }, (_, i) => ({
        memberRef: { case: "memberExternalId" as const, value: `coupon-${from + i}` },
        target: { case: "definitionId" as const, value: definitionId },
        uniqueIdentifier: `coupon-${from + i}`,
      }));
      await activities.recordActivities({ activities: items, omitProgress: true });
    }
    const issued = async () => (await pool.query<{ n: number }>("select count(*)::int as n from reward where definition_id = $1 and state = 'ISSUED'", [definitionId])).rows[0]!.n;
    const total = (await pool.query<{ n: number }>("select count(*)::int as n from reward where definition_id = $1", [definitionId])).rows[0]!.n;
    expect(total).toBe(REWARDS);

    const first = await startWorkerProcess(1_000);
    let issuedAtKill = 0;
    for (;;) {
      issuedAtKill = await issued();
      if (issuedAtKill > 0) break;
      await sleep(5);
    }
    await sigkill(first);
    const killedAt = Date.now();
    issuedAtKill = await issued();
    await startWorkerProcess(1_000);
    await eventually(async () => ((await issued()) === REWARDS ? true : undefined), 300_000, "every reward issued");
    const allIssuedMs = Date.now() - killedAt;

    const coupons = await pool.query<{ n: number; distinct: number }>(
      "select count(coupon_code)::int as n, count(distinct coupon_code)::int as distinct from reward where definition_id = $1",
      [definitionId],
    );
    const events = await pool.query<{ n: number; rewards: number }>(
      "select count(*)::int as n, count(distinct payload->>'reward_id')::int as rewards from streak_event where definition_id = $1 and type = 'reward.issued'",
      [definitionId],
    );
    await writeFigures("3-worker-kill-rewards", { rewards: REWARDS, issuedAtKill, allIssuedAfterKillMs: allIssuedMs, coupons: coupons.rows[0], issuedEvents: events.rows[0] });

    expect(issuedAtKill).toBeLessThan(REWARDS);
    expect(coupons.rows[0]).toEqual({ n: REWARDS, distinct: REWARDS });
    expect(events.rows[0]).toEqual({ n: REWARDS, rewards: REWARDS });
  });
});
