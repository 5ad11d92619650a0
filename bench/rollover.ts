// `npm run bench:rollover`: closing a window for 1,000,000 member streaks (PRODUCT §7), and proof that Temporal
// work grows with windows and rewards, not with members or activities.
//
//   1. embedded PostgreSQL in a temporary directory (durable: fsync and synchronous_commit on);
//   2. a LIVE daily definition (UTC, 4 h at-risk lead, no grace); one real member streak is produced by the real
//      ingestor (one activity today), and its JSON state and projected columns are copied to N members with one
//      INSERT … SELECT generate_series — every row is a valid domain state, one day into its streak;
//   3. the real definition sweeper workflow runs on a time-skipping Temporal server with the real activities:
//      at 20:00 it sends N at-risk reminders, at midnight it breaks N streaks (set-based, 50k rows a statement)
//      and closes the day's stats (src/engine/history/definition-stats.ts); we time the sweeps, the stats snapshots and
//      the whole rollover, check every row is BROKEN with its streak.broken event and its missed window stored as
//      history (streak_window), and
//      read the workflow's history size (events, bytes) — for N = 10,000 and N = 1,000,000, each from empty member
//      tables (the first run's rows are truncated before the second seeds);
//   4. actions per recorded activity: members record a week of activity (3 a day) on a definition with a
//      points-ledger milestone at day 7 while the relay and the worker run; we count what reached Temporal
//      (workflows started, activities, timers, signals) from the histories.
// Results: bench/results/rollover.json. Knobs: ROLLOVER_MEMBERS (default 1000000), ROLLOVER_SMALL (10000),
// ACTIONS_MEMBERS (300), ROLLOVER_SHARED_BUFFERS (1GB) and ROLLOVER_MAX_WAL_SIZE (8GB) — PostgreSQL sized to the data
// for a 10M run; both rollovers of one run share them.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { create } from "@bufbuild/protobuf";
import { TestWorkflowEnvironment } from "@temporalio/testing";
import { Worker, bundleWorkflowCode } from "@temporalio/worker";
import proto from "@temporalio/proto";
import { createTemporaryDataRoot, startEmbeddedPostgres } from "../src/infra/embedded-postgres.ts";
import { resolveTemporalTestServer } from "../src/infra/temporal-binaries.ts";
import { createOrm, migrate } from "../src/db/orm.ts";
import { createTenantWithAdminKey } from "../src/db/repositories/tenant.repository.ts";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind, StreakDefinitionSchema } from "../src/gen/kindling/v1/definition_pb.js";
import { specFromMessage } from "../src/api/mappers/definition.mapper.ts";
import { createDefinitionCatalog } from "../src/engine/definitions/definition-catalog.ts";
import { createActivityIngestor } from "../src/engine/ingest/activity-ingestor.ts";
import { createOutboxRelay } from "../src/engine/delivery/outbox-relay.ts";
import { createActivities } from "../src/activities/index.ts";
import { createLogger } from "../src/observability/logger.ts";
import { definitionChangedSignal, sweeperStatusQuery, sweeperWorkflowId } from "../src/workflows/messages.ts";
import { WORKFLOWS_PATH } from "../workers/worker.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const bigN = Number(process.env.ROLLOVER_MEMBERS ?? 1_000_000);
const smallN = Number(process.env.ROLLOVER_SMALL ?? 10_000);
const actionMembers = Number(process.env.ACTIONS_MEMBERS ?? 300);
const sharedBuffers = process.env.ROLLOVER_SHARED_BUFFERS ?? "1GB";
const maxWalSize = process.env.ROLLOVER_MAX_WAL_SIZE ?? "8GB";
const log = (message: string) => process.stdout.write(`[rollover] ${message}\n`);

const root = await createTemporaryDataRoot("kindling-rollover-");
const postgres = await startEmbeddedPostgres({
  dataDir: join(root, "postgres"),
  // Durable; only room for a bulk UPDATE's WAL without a checkpoint every few seconds.
  settings: { max_wal_size: maxWalSize, shared_buffers: sharedBuffers, max_connections: "100" },
});
const testServer = (await resolveTemporalTestServer()).path;
// A fresh time-skipping server per phase, so each starts from the same simulated time of day.
let env: TestWorkflowEnvironment = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: "existing-path", path: testServer } } });
async function freshEnv(): Promise<void> {
  await env.teardown();
  env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: "existing-path", path: testServer } } });
  // Start every phase at 12:00 UTC simulated, so both rollovers make the same number of hourly look-ups.
  const now = await env.currentTimeMs();
  await env.sleep(Math.ceil((now - 12 * HOUR) / DAY) * DAY + 12 * HOUR - now);
}
const pool = new pg.Pool({ connectionString: postgres.databaseUrl, max: 16 });
const History = proto.temporal.api.history.v1.History;

try {
  const orm = await createOrm(postgres.databaseUrl, 2);
  await migrate(orm);
  const { tenantId } = await createTenantWithAdminKey(orm.em.fork(), { id: randomUUID(), name: "rollover" });
  await orm.close();
  const bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH });

  // Sweep timings are taken inside the real activities.
  const timings: Record<string, number[]> = {};
  const real = createActivities({ pool });
  const timed = <K extends "sweepBreaks" | "sweepAtRisk" | "sweepAdvance" | "snapshotDefinitionStats">(name: K) =>
    (async (input: Parameters<(typeof real)[K]>[0]) => {
      const started = performance.now();
      const n = await real[name](input);
      if (n > 0) (timings[name] ??= []).push(performance.now() - started);
      return n;
    }) as (typeof real)[K];
  const activities = {
    ...real, sweepBreaks: timed("sweepBreaks"), sweepAtRisk: timed("sweepAtRisk"), sweepAdvance: timed("sweepAdvance"),
    snapshotDefinitionStats: timed("snapshotDefinitionStats"),
  };

  async function definition(name: string, extra: Record<string, unknown> = {}): Promise<string> {
    const id = randomUUID();
    const message = create(StreakDefinitionSchema, {
      name,
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 1 },
      atRiskLeadDuration: { seconds: BigInt(4 * 3600) },
      ...extra,
    });
    await pool.query(
      "insert into streak_definition (id, tenant_id, name, state, event_types, spec, pauses, version, created_at, updated_at) values ($1, $2, $3, 'LIVE', '{}', $4, '[]', 1, now(), now())",
      [id, tenantId, name, JSON.stringify(specFromMessage(message))],
    );
    return id;
  }

  async function rollover(n: number) {
    await freshEnv();
    const taskQueue = `rollover-${n}`;
    const def = await definition(`Rollover ${n}`);
    const catalog = createDefinitionCatalog(pool, 0);
    const clock = await env.currentTimeMs();
    const ingestor = createActivityIngestor({ pool, catalog, now: () => clock });
    await ingestor.record({ tenantId, memberExternalId: `template-${n}`, target: { definitionId: def }, occurredAt: clock, uniqueIdentifier: "template", metadata: {} });

    const seedStarted = performance.now();
    await pool.query(
      `insert into member (id, tenant_id, external_id, points_balance, created_at, updated_at)
       select gen_random_uuid(), $1, 'r' || $2::int || '-' || g, 0, now(), now() from generate_series(1, $2::int) g`,
      [tenantId, n],
    );
    await pool.query(
      `with t as (
         select s.*, st.state from member_streak s join member_streak_state st on st.member_streak_id = s.id where s.definition_id = $2
       ), copied as (
         insert into member_streak (id, tenant_id, member_id, definition_id, status, current_count, longest_count, window_start_at, window_close_at,
           at_risk_at, break_at, break_kind, break_window_key, last_activity_at, version, created_at, updated_at)
         select gen_random_uuid(), t.tenant_id, m.id, t.definition_id, t.status, t.current_count, t.longest_count, t.window_start_at, t.window_close_at,
           t.at_risk_at, t.break_at, t.break_kind, t.break_window_key, t.last_activity_at, 1, now(), now()
           from member m cross join t
          where m.tenant_id = $1 and m.external_id like 'r' || $3::int || '-%'
         returning id, member_id
       )
       insert into member_streak_state (member_streak_id, member_id, state) select copied.id, copied.member_id, t.state from copied cross join t`,
      [tenantId, def, n],
    );
    await pool.query("vacuum analyze member_streak");
    await pool.query("vacuum analyze member_streak_state");
    await pool.query("vacuum analyze member");
    const seedMs = performance.now() - seedStarted;
    const template = (await pool.query<{ break_at: Date; at_risk_at: Date }>("select break_at, at_risk_at from member_streak where definition_id = $1 limit 1", [def])).rows[0]!;
    log(`${n}: seeded in ${(seedMs / 1000).toFixed(1)} s; at risk at ${template.at_risk_at.toISOString()}, break at ${template.break_at.toISOString()}`);

    for (const k of Object.keys(timings)) delete timings[k];
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: bundle, activities });
    const workflowId = sweeperWorkflowId(tenantId, def);
    let rolloverMs = 0;
    const result = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start("definitionSweeperWorkflow", { taskQueue, workflowId, args: [{ version: 1, tenantId, definitionId: def, state: "LIVE" }] });
      // Skip simulated time up to each deadline only: while time skips, a long activity's heartbeat timeout would
      // fire in simulated time. Past the deadline the server clock runs at real speed and the sweep runs for real.
      const through = async (deadline: number, done: () => Promise<boolean>) => {
        await env.sleep(Math.max(0, deadline - 30_000 - (await env.currentTimeMs())));
        const started = performance.now();
        await env.sleep(31_000);
        while (!(await done())) await new Promise((r) => setTimeout(r, 250));
        return performance.now() - started;
      };
      const status = () => handle.query(sweeperStatusQuery);
      await through(template.at_risk_at.getTime(), async () => (await status()).atRisk >= n + 1);
      // The rollover is done when every row is broken and the closed day's stats are written (issue 13).
      const closedDay = new Date(template.break_at.getTime() - DAY).toISOString().slice(0, 10);
      const statsClosed = async () =>
        (await pool.query("select 1 from definition_stats_day where tenant_id = $1 and definition_id = $2 and day = $3 and closed", [tenantId, def, closedDay])).rowCount === 1;
      rolloverMs = await through(template.break_at.getTime(), async () => (await status()).broken >= n + 1 && (await statsClosed()));
      await handle.signal(definitionChangedSignal, { state: "ARCHIVED", version: 2 });
      await handle.result();
      return handle.fetchHistory();
    });
    const counts = (await pool.query<{ broken: number; events: number; at_risk: number; windows: number }>(
      `select (select count(*)::int from member_streak where definition_id = $1 and status = 'BROKEN') as broken,
              (select count(*)::int from streak_window where definition_id = $1 and outcome = 'MISSED') as windows,
              (select count(*)::int from streak_event where definition_id = $1 and type = 'streak.broken') as events,
              (select count(*)::int from streak_event where definition_id = $1 and type = 'streak.at_risk') as at_risk`,
      [def],
    )).rows[0]!;
    const historyBytes = History.encode(History.fromObject(result)).finish().length;
    const out = {
      members: n + 1,
      seedSeconds: +(seedMs / 1000).toFixed(2),
      breakSweepSeconds: +((timings.sweepBreaks ?? [0]).reduce((a, b) => a + b, 0) / 1000).toFixed(2),
      // From the deadline's timer to every row broken and the day's stats closed, as the workflow saw it
      // (includes a 1 s simulated step).
      rolloverSeconds: +(rolloverMs / 1000).toFixed(2),
      atRiskSweepSeconds: +((timings.sweepAtRisk ?? [0]).reduce((a, b) => a + b, 0) / 1000).toFixed(2),
      // Every stats snapshot of the run (at the sweeper's start, after the at-risk sweep, after the break sweep).
      statsSnapshots: (timings.snapshotDefinitionStats ?? []).length,
      statsSnapshotSeconds: +((timings.snapshotDefinitionStats ?? [0]).reduce((a, b) => a + b, 0) / 1000).toFixed(2),
      brokenRows: counts.broken,
      brokenEvents: counts.events,
      // Broken windows stored as history (streak_window) by the break sweep.
      missedWindowRows: counts.windows,
      atRiskEvents: counts.at_risk,
      historyEvents: result.events?.length ?? 0,
      historyBytes,
      // The history's events by type, so a difference between two sizes says what it is (a workflow task that
      // timed out on a saturated machine adds three, for one).
      historyEventTypes: eventTypes(result.events ?? []),
    };
    log(`${n}: ${JSON.stringify(out)}`);
    if (counts.broken !== n + 1 || counts.events !== n + 1 || counts.windows !== n + 1) throw new Error(`rollover incomplete: ${JSON.stringify(counts)}`);
    return out;
  }

  function eventTypes(events: readonly { eventType?: unknown }[]): Record<string, number> {
    const byType: Record<string, number> = {};
    for (const e of events) {
      const name = typeof e.eventType === "number" ? proto.temporal.api.enums.v1.EventType[e.eventType] ?? String(e.eventType) : String(e.eventType);
      const type = name.replace(/^EVENT_TYPE_/, "");
      byType[type] = (byType[type] ?? 0) + 1;
    }
    return byType;
  }

  async function actionsPerActivity() {
    await freshEnv();
    const taskQueue = "rollover-actions";
    const def = await definition("Actions", {
      milestones: [{ threshold: 7, reward: { kind: RewardKind.POINTS, points: 100, fulfilmentMode: FulfilmentMode.PROVIDER, provider: { kind: { case: "pointsLedger", value: { currency: "PTS" } } } } }],
    });
    const catalog = createDefinitionCatalog(pool, 0);
    let clock = 0;
    const ingestor = createActivityIngestor({ pool, catalog, now: () => clock });
    const relay = createOutboxRelay({ pool, client: env.client, taskQueue, logger: createLogger("warn"), pollMs: 50, searchAttributes: false });
    // What publishing would have enqueued: the sweeper starts through the relay like every other workflow.
    await pool.query("insert into outbox_message (tenant_id, kind, dedupe_key, payload, created_at, attempts) values ($1, 'definition.changed', $2, $3, now(), 0)", [
      tenantId, `definition:${def}:v1`, JSON.stringify({ tenantId, definitionId: def, state: "LIVE", version: 1 }),
    ]);
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: bundle, activities: real });
    let recorded = 0;
    await worker.runUntil(async () => {
      relay.start();
      const d0 = Math.ceil((await env.currentTimeMs()) / DAY) * DAY;
      for (let day = 0; day < 7; day++) {
        await env.sleep(d0 + day * DAY + 9 * HOUR - (await env.currentTimeMs()));
        clock = await env.currentTimeMs();
        for (let m = 0; m < actionMembers; m++) {
          for (let k = 0; k < 3; k++) {
            await ingestor.record({ tenantId, memberExternalId: `a-${m}`, target: { definitionId: def }, occurredAt: clock + k * 60_000, uniqueIdentifier: `a-${m}-${day}-${k}`, metadata: {} });
            recorded++;
          }
        }
      }
      for (let i = 0; (await relay.lagMs()) > 0; i++) {
        if (i > 600) throw new Error("outbox not drained");
        await new Promise((r) => setTimeout(r, 100));
      }
      await env.sleep(2 * DAY);
      await env.client.workflow.getHandle(sweeperWorkflowId(tenantId, def)).signal(definitionChangedSignal, { state: "ARCHIVED", version: 2 });
      await env.client.workflow.getHandle(sweeperWorkflowId(tenantId, def)).result();
      await relay.stop();
    });
    const rewards = (await pool.query<{ id: string; state: string }>("select id, state from reward where definition_id = $1", [def])).rows;
    const ids = [sweeperWorkflowId(tenantId, def), ...rewards.map((r) => `reward/${tenantId}/${r.id}`)];
    // workflows counts runs (a continue-as-new is a new run, billed like a start).
    const tally = { workflows: 0, activities: 0, timers: 0, signals: 0 };
    for (const id of ids) {
      // Every run of the chain: the sweeper continues as new.
      let runId: string | undefined;
      for (;;) {
        const h = await env.client.workflow.getHandle(id, runId).fetchHistory();
        tally.workflows++;
        for (const e of h.events ?? []) {
          if (e.activityTaskScheduledEventAttributes) tally.activities++;
          if (e.timerStartedEventAttributes) tally.timers++;
          if (e.workflowExecutionSignaledEventAttributes) tally.signals++;
        }
        runId = h.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
        if (!runId) break;
      }
    }
    const actions = tally.workflows + tally.activities + tally.timers + tally.signals;
    const out = {
      recordedActivities: recorded,
      members: actionMembers,
      rewardsIssued: rewards.filter((r) => r.state === "ISSUED").length,
      ...tally,
      temporalActions: actions,
      actionsPerRecordedActivity: +(actions / recorded).toFixed(4),
    };
    log(`actions: ${JSON.stringify(out)}`);
    return out;
  }

  const small = await rollover(smallN);
  // The big rollover starts from empty member tables, as the small one did: the small run's rows (about 6 GB a
  // million member streaks once swept, with their events) go first, so a 10M run needs only its own disk.
  await pool.query("truncate member, member_streak, member_streak_state, streak_window, streak_event, streak_event_key, activity, activity_key");
  // And the big run does not start in the checkpoint the small run's WAL would bring on.
  await pool.query("checkpoint");
  const big = await rollover(bigN);
  const actions = await actionsPerActivity();
  const results = {
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "", memoryGiB: Math.round(totalmem() / 2 ** 30) },
    postgres: `embedded 17, durable (fsync on), max_wal_size ${maxWalSize}, shared_buffers ${sharedBuffers}`,
    note: "members = seeded + the template member; sweep seconds are wall time inside the activities; history is the sweeper workflow's whole run (hourly look-ups, the at-risk sweep, the break sweep, the stats snapshots, archive); rolloverSeconds ends when the closed day's stats row is written",
    rollover: { small, big, targetSeconds: 60, withinTarget: big.breakSweepSeconds < 60 },
    historyGrowsWithMembers: big.historyEvents > small.historyEvents || big.historyBytes > 2 * small.historyBytes,
    actions,
  };
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(new URL("./results/rollover.json", import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
  log(`written bench/results/rollover.json`);
} finally {
  await pool.end();
  await env.teardown();
  await postgres.stop();
  rmSync(root, { recursive: true, force: true });
}
