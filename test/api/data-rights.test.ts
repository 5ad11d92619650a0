// Data rights end to end on the real PostgreSQL and Temporal: ExportMember returns everything about one member as
// one streamed JSON document, and EraseMember leaves nothing identifying them — checked in every table of the
// database (not only the ones the coverage map lists), through every read of the API, and in Temporal, where the
// member's reward workflow is cancelled and its history deleted by the worker's relay.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { WorkflowNotFoundError } from "@temporalio/client";
import type { WorkflowBundle } from "@temporalio/worker";
import type pg from "pg";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberService } from "../../src/gen/kindling/v1/member_service_pb.js";
import { RewardService } from "../../src/gen/kindling/v1/reward_service_pb.js";
import { EventService } from "../../src/gen/kindling/v1/event_service_pb.js";
import { LeaderboardMetric, LeaderboardService } from "../../src/gen/kindling/v1/leaderboard_service_pb.js";
import { FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { createLogger } from "../../src/observability/logger.ts";
import { bundleWorkflows, startWorker, type RunningWorker } from "../../workers/worker.ts";
import { rewardWorkflowId } from "../../src/workflows/messages.ts";
import { citusMemberRowsSql, MEMBER_DATA, memberRowsSql } from "../../src/engine/data-rights/coverage.ts";
import { startTestApi, type Protocol, type TestApi } from "../support/api.ts";
import { connectToSharedTemporal, type SharedTemporal } from "../support/temporal.ts";
import { DAY, createLiveDefinition, expectFailure, sqlPool, today, untilWaitingForLock } from "../support/fixtures.ts";

let api: TestApi;
let db: pg.Pool;
let temporal: SharedTemporal;
let bundle: WorkflowBundle;
let worker: RunningWorker;
let daily: string;
let weekly: string;

beforeAll(async () => {
  [api, temporal, bundle] = await Promise.all([startTestApi({ label: "data_rights" }), connectToSharedTemporal("data-rights"), bundleWorkflows()]);
  db = sqlPool(api.databaseUrl);
  worker = await startWorker({
    databaseUrl: api.databaseUrl,
    temporalAddress: temporal.address,
    namespace: temporal.namespace,
    taskQueue: temporal.taskQueue,
    logger: createLogger("silent"),
    workflowBundle: bundle,
    relayPollMs: 100,
  });
  const defs = api.client(DefinitionService);
  // A CLAIM reward at the first check-in: its workflow waits for the claim, so it is running when the member is erased.
  daily = (await createLiveDefinition(defs, { name: "Daily check-in", milestones: [{ threshold: 1, reward: { kind: RewardKind.POINTS, points: 10, fulfilmentMode: FulfilmentMode.CLAIM } }] })).id;
  weekly = (await createLiveDefinition(defs, { name: "Second streak" })).id;
  // Deliveries to a host that never answers stay pending (RETRYING): what erasure must stop.
  await api.client(EventService).createWebhookSubscription({ url: "https://hooks.invalid/kindling" });
}, 120_000);
afterAll(async () => {
  await worker?.stop();
  await db?.end();
  await temporal?.close();
  await api?.close();
});

/** A member with a profile, three activities on two definitions (with metadata), a reward, events and deliveries. */
async function memberWithHistory(externalId: string): Promise<{ memberId: string; rewardId: string }> {
  const activities = api.client(ActivityService);
  const record = (definitionId: string, day: number, key: string) =>
    activities.recordActivity({
      activity: {
        memberRef: { case: "member", value: { externalId, firstName: "Ada", lastName: `Lovelace-${externalId}`, email: `${externalId}@example.com`, phoneNumber: "+14155552671" } },
        target: { case: "definitionId", value: definitionId },
        occurTime: timestampFromMs(Math.min(today() + day * DAY + 3_600_000, Date.now())),
        uniqueIdentifier: `${externalId}-${key}`,
        metadata: { store: `store of ${externalId}`, order: key },
      },
    });
  const first = await record(daily, 0, "a");
  await record(daily, 0, "b");
  await record(weekly, 0, "c");
  const rewardId = first.results[0]!.rewards[0]!.id;
  const { rows } = await db.query<{ id: string }>("select id from member where tenant_id = $1 and external_id = $2", [api.admin.tenantId, externalId]);
  return { memberId: rows[0]!.id, rewardId };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function exportText(externalId: string, protocol: Protocol = "connect-json"): Promise<{ text: string; pieces: number[] }> {
  const pieces: Uint8Array[] = [];
  for await (const res of api.client(MemberService, api.admin, protocol).exportMember({ memberExternalId: externalId })) pieces.push(res.data);
  return { text: Buffer.concat(pieces).toString("utf8"), pieces: pieces.map((p) => p.length) };
}

interface ExportDocument {
  format: string;
  export_time?: string | undefined;
  member_external_id: string;
  tables: Record<string, Record<string, unknown>[] | undefined>;
}

/** The member's workflow and deliveries exist: the relay started it and the dispatcher queued their events. */
async function settled(memberId: string, rewardId: string): Promise<void> {
  await until("reward workflow", async () => {
    try {
      return (await temporal.client.workflow.getHandle(rewardWorkflowId(api.admin.tenantId, rewardId)).describe()).status.name === "RUNNING" ? true : undefined;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return undefined;
      throw error;
    }
  });
  await until("webhook deliveries", async () => {
    const { rows } = await db.query<{ n: number }>(
      "select count(*)::int as n from webhook_delivery d join streak_event e on e.id = d.event_id where e.member_id = $1",
      [memberId],
    );
    return rows[0]!.n > 0 ? true : undefined;
  });
}

/**
 * Every row of every table of the database whose text mentions the member's UUID or external id, per table: not
 * only the tables the coverage map knows.
 */
async function mentions(memberId: string, externalId: string): Promise<Record<string, number>> {
  const { rows: tables } = await db.query<{ table_name: string }>(
    "select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name",
  );
  const found: Record<string, number> = {};
  for (const { table_name } of tables) {
    const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from "${table_name}" t where strpos(t::text, $1) > 0 or strpos(t::text, $2) > 0`, [
      memberId,
      externalId,
    ]);
    if (rows[0]!.n > 0) found[table_name] = rows[0]!.n;
  }
  return found;
}

describe("ExportMember", () => {
  it("export/one_document_with_every_table_of_the_member_and_nothing_of_others", async () => {
    const { memberId, rewardId } = await memberWithHistory("exp-ada");
    await memberWithHistory("exp-bob");
    await settled(memberId, rewardId);

    const { text } = await exportText("exp-ada");
    const doc = JSON.parse(text) as ExportDocument;
    expect(doc.format).toBe("kindling.member_export.v1");
    expect(doc.member_external_id).toBe("exp-ada");
    expect(Object.keys(doc.tables)).toEqual(MEMBER_DATA.map((t) => t.table));
    expect(doc.tables.member).toEqual([expect.objectContaining({ id: memberId, external_id: "exp-ada", email: "exp-ada@example.com", phone: "+14155552671" })]);
    expect(doc.tables.member_streak!.map((s) => s.definition_id).sort()).toEqual([daily, weekly].sort());
    expect(doc.tables.member_streak_state).toHaveLength(2);
    const activities = doc.tables.activity!.sort((a, b) => String(a.unique_identifier).localeCompare(String(b.unique_identifier)));
    expect(activities.map((a) => a.unique_identifier)).toEqual(["exp-ada-a", "exp-ada-b", "exp-ada-c"]);
    expect(activities[0]!.metadata).toEqual({ store: "store of exp-ada", order: "a" });
    expect(doc.tables.reward).toEqual([expect.objectContaining({ id: rewardId, state: "AVAILABLE" })]);
    expect(doc.tables.streak_event!.length).toBeGreaterThanOrEqual(3);
    expect(doc.tables.streak_event!.every((e) => e.member_id === memberId)).toBe(true);
    expect(doc.tables.webhook_delivery!.length).toBeGreaterThan(0);
    expect(doc.tables.outbox_message).toEqual([expect.objectContaining({ kind: "reward.lifecycle", payload: expect.objectContaining({ rewardId }) })]);
    // The other member appears nowhere in it.
    expect(text).not.toContain("exp-bob");
  });

  it("export/streams_a_long_history_in_pieces_of_at_most_64_kib", async () => {
    const { memberId } = await memberWithHistory("exp-long");
    // Four years of daily activity, written directly: the API would take longer and change nothing here.
    await db.query(
      `insert into activity (id, tenant_id, member_id, definition_id, applied_definition_ids, occurred_at, unique_identifier, metadata, recorded_at)
       select gen_random_uuid(), $1::uuid, $2::uuid, $3::uuid, array[$3::text], now() - make_interval(days => i), 'old-' || i, jsonb_build_object('note', repeat('x', 200)), now()
         from generate_series(1, 1500) i`,
      [api.admin.tenantId, memberId, daily],
    );
    const { text, pieces } = await exportText("exp-long");
    expect(pieces.length).toBeGreaterThan(4);
    expect(Math.max(...pieces)).toBeLessThanOrEqual(64 * 1024);
    const doc = JSON.parse(text) as ExportDocument;
    expect(doc.tables.activity).toHaveLength(1503);
    // The same document over gRPC and gRPC-Web, but for what the worker keeps changing meanwhile (the webhook
    // dispatcher retrying deliveries, the relay marking outbox rows) and the export's own time.
    const stable = (d: ExportDocument) => ({ ...d, export_time: undefined, tables: { ...d.tables, webhook_delivery: undefined, outbox_message: undefined } });
    for (const protocol of ["grpc", "grpc-web"] as const) {
      expect(stable(JSON.parse((await exportText("exp-long", protocol)).text) as ExportDocument)).toEqual(stable(doc));
    }
  });

  it("export/unknown_member_is_not_found_and_bad_input_invalid", async () => {
    await expectFailure(exportText("nobody-by-this-id"), Code.NotFound, "MEMBER_NOT_FOUND");
    await expectFailure(exportText(""), Code.InvalidArgument, "INVALID_REQUEST");
  });
});

describe("EraseMember", () => {
  // Erasure on Citus selects some tables' rows by other conditions (named by the member's id, or by the reward and
  // event ids read first: coverage.ts `citus`); on this database's rows of a member with history and a neighbour
  // they select exactly what the plain conditions do, table by table.
  it("erase/citus_conditions_select_the_rows_of_the_plain_ones", async () => {
    const { memberId, rewardId } = await memberWithHistory("era-cit");
    await memberWithHistory("era-cit-other");
    await settled(memberId, rewardId);
    const client = await db.connect();
    try {
      // One snapshot for both reads: the worker keeps relaying outbox rows and retrying deliveries meanwhile.
      await client.query("begin isolation level repeatable read");
      const rewards = (await client.query<{ id: string }>("select id::text from reward where tenant_id = $1 and member_id = $2", [api.admin.tenantId, memberId])).rows.map((r) => r.id);
      const events = (await client.query<{ id: string }>("select id::text from streak_event where tenant_id = $1 and member_id = $2", [api.admin.tenantId, memberId])).rows.map((r) => r.id);
      const read = async (text: string, values: unknown[]) => (await client.query<{ r: string }>(text, values)).rows.map((x) => x.r).sort();
      const withCitus = MEMBER_DATA.filter((entry) => entry.citus !== undefined);
      expect(withCitus.map((entry) => entry.table).sort()).toEqual(["member_streak_state", "outbox_message", "streak_event", "streak_event_key", "streak_window", "webhook_delivery"]);
      for (const entry of MEMBER_DATA) {
        if (entry.erase !== "delete") continue;
        const plain = await read(memberRowsSql(entry, "select row_to_json(t)::text as r from"), [api.admin.tenantId, memberId, "era-cit"]);
        const citus = citusMemberRowsSql(entry, "select row_to_json(t)::text as r from", [api.admin.tenantId, memberId, rewards, events]);
        expect(await read(citus.text, citus.values), entry.table).toEqual(plain);
        // The member has rows in each table with its own Citus condition (no window is final yet on day one).
        if (entry.citus !== undefined && entry.table !== "streak_window") expect(plain.length, entry.table).toBeGreaterThan(0);
      }
    } finally {
      await client.query("rollback");
      client.release();
    }
  });

  it("erase/leaves_nothing_identifying_in_any_table_api_read_or_workflow", async () => {
    const { memberId, rewardId } = await memberWithHistory("era-cyd");
    const other = await memberWithHistory("era-dan");
    await settled(memberId, rewardId);
    const othersExport = JSON.parse((await exportText("era-dan")).text) as ExportDocument;
    const eventsBefore = await api.client(EventService).listEvents({ memberExternalId: "era-cyd" });
    expect(eventsBefore.events.length).toBeGreaterThan(0);

    // Before: the member is in every table the coverage map deletes from (no reward code pool here).
    const before = await mentions(memberId, "era-cyd");
    for (const t of ["member", "member_streak", "activity", "reward", "streak_event", "outbox_message"]) expect(before[t], t).toBeGreaterThan(0);

    const res = await api.client(MemberService).eraseMember({ memberExternalId: "era-cyd" });
    expect(res.erased).toBe(true);
    expect(res.cancelledRewardCount).toBe(1);
    const deleted = Object.fromEntries(res.tables.map((t) => [t.table, Number(t.deletedCount)]));
    expect(deleted).toMatchObject({ member: 1, member_streak: 2, member_streak_state: 2, activity: 3, reward: 1, outbox_message: 1 });
    expect(deleted.streak_event).toBeGreaterThanOrEqual(3);
    expect(deleted.webhook_delivery).toBeGreaterThan(0);

    // Table by table, every table of the schema: nothing mentions the member's id or external id any more.
    expect(await mentions(memberId, "era-cyd")).toEqual({});
    // Nor their profile (their email, their last name).
    expect(await mentions("era-cyd@example.com", "Lovelace-era-cyd")).toEqual({});
    // What is left is the anonymised tally, per definition.
    const tally = await db.query("select definition_id, erased_members, erased_activities::int as erased_activities, erased_rewards, erased_reward_points from member_erasure_tally where tenant_id = $1 order by erased_activities desc", [api.admin.tenantId]);
    expect(tally.rows).toEqual([
      { definition_id: daily, erased_members: 1, erased_activities: 2, erased_rewards: 1, erased_reward_points: 10 },
      { definition_id: weekly, erased_members: 1, erased_activities: 1, erased_rewards: 0, erased_reward_points: 0 },
    ]);

    // Through the API: every read answers as for a member that never existed.
    await expectFailure(api.client(MemberService).getMember({ memberExternalId: "era-cyd" }), Code.NotFound, "MEMBER_NOT_FOUND");
    await expectFailure(exportText("era-cyd"), Code.NotFound, "MEMBER_NOT_FOUND");
    await expectFailure(api.client(RewardService).getReward({ rewardId }), Code.NotFound, "REWARD_NOT_FOUND");
    expect((await api.client(ActivityService).listActivities({ memberExternalId: "era-cyd" })).activities).toEqual([]);
    expect((await api.client(RewardService).listRewards({ memberExternalId: "era-cyd" })).rewards).toEqual([]);
    expect((await api.client(EventService).listEvents({ memberExternalId: "era-cyd" })).events).toEqual([]);
    const allEvents = await api.client(EventService).listEvents({ pageSize: 1000 });
    expect(JSON.stringify(allEvents.events.map((e) => e.payload))).not.toContain("era-cyd");
    expect(allEvents.events.some((e) => e.memberExternalId === "era-dan")).toBe(true);
    const board = await api.client(LeaderboardService).getLeaderboard({ definitionId: daily, metric: LeaderboardMetric.LONGEST_COUNT, limit: 100 });
    expect(board.entries.map((e) => e.memberExternalId)).not.toContain("era-cyd");
    // The event stream replays from before the member's first event without them.
    const stop = new AbortController();
    const seen: string[] = [];
    const watching = (async () => {
      for await (const { event } of api.client(EventService).watchEvents({ afterCursor: eventsBefore.events[0]!.cursor }, { signal: stop.signal })) {
        seen.push(event!.memberExternalId);
        if (event!.memberExternalId === "era-dan") stop.abort();
      }
    })().catch(() => undefined);
    await until("watched events", async () => (seen.includes("era-dan") ? true : undefined));
    stop.abort();
    await watching;
    expect(seen).not.toContain("era-cyd");

    // The other member is untouched.
    const othersAfter = JSON.parse((await exportText("era-dan")).text) as ExportDocument;
    expect({ ...othersAfter.tables, webhook_delivery: [], outbox_message: [] }).toEqual({ ...othersExport.tables, webhook_delivery: [], outbox_message: [] });
    expect(othersAfter.tables.reward!.map((r) => r.id)).toEqual([other.rewardId]);

    // Temporal: the running reward workflow is cancelled and its history (which names the member) deleted.
    await until("reward workflow deleted", async () => {
      try {
        await temporal.client.workflow.getHandle(rewardWorkflowId(api.admin.tenantId, rewardId)).describe();
        return undefined;
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) return true;
        throw error;
      }
    });
    // The cancellation row names only the reward id, which resolves to nothing; everything it was about is gone.
    expect(await mentions(memberId, "era-cyd")).toEqual({});
  }, 90_000);

  it("erase/is_idempotent_and_a_repeat_changes_nothing", async () => {
    await memberWithHistory("era-eve");
    expect((await api.client(MemberService).eraseMember({ memberExternalId: "era-eve" })).erased).toBe(true);
    const snapshot = async () =>
      (await db.query<{ n: string }>(`select (${MEMBER_DATA.map((t) => `(select count(*) from ${t.table})`).join(" + ")} + (select sum(erased_members) from member_erasure_tally))::text as n`)).rows[0]!.n;
    const before = await snapshot();
    const again = await api.client(MemberService).eraseMember({ memberExternalId: "era-eve" });
    expect(again).toMatchObject({ erased: false, tables: [], cancelledRewardCount: 0 });
    const never = await api.client(MemberService).eraseMember({ memberExternalId: "never-existed" });
    expect(never.erased).toBe(false);
    expect(await snapshot()).toBe(before);
  });

  it("erase/bad_input_is_invalid_argument_and_changes_nothing", async () => {
    await memberWithHistory("era-fay");
    await expectFailure(api.client(MemberService).eraseMember({ memberExternalId: "" }), Code.InvalidArgument, "INVALID_REQUEST");
    await expectFailure(api.client(MemberService).eraseMember({ memberExternalId: "x".repeat(257) }), Code.InvalidArgument, "INVALID_REQUEST");
    expect((await api.client(MemberService).getMember({ memberExternalId: "era-fay" })).member!.email).toBe("era-fay@example.com");
  });

  it("erase/a_pass_chosen_as_a_deadlock_victim_runs_again_and_erases", async () => {
    const { memberId } = await memberWithHistory("era-dl");
    const holder = await db.connect();
    try {
      // Another writer holds one of the member's streak rows; only the erasure may detect the deadlock below.
      await holder.query("begin");
      await holder.query("set local deadlock_timeout = '60s'");
      await holder.query("select id from member_streak where member_id = $1 order by id limit 1 for update", [memberId]);
      const erasing = api.client(MemberService).eraseMember({ memberExternalId: "era-dl" });
      // The erasure holds the member and waits for the streak row.
      await untilWaitingForLock(db, ["select id from member_streak where tenant_id = $1 and member_id = $2 order by id for update"], "the erasure");
      // Now the writer waits for the member: a cycle. PostgreSQL rolls the erasure's pass back (40P01), the writer
      // gets the member and commits, and the pass runs again.
      await holder.query("select id from member where id = $1 for update", [memberId]);
      await holder.query("commit");
      const answer = await erasing;
      expect(answer.erased).toBe(true);
      expect(await mentions(memberId, "era-dl")).toEqual({});
    } finally {
      await holder.query("rollback").catch(() => undefined);
      holder.release();
    }
  }, 60_000);

  it("erase/activity_recorded_during_the_erasure_leaves_no_orphan_rows", async () => {
    const activities = api.client(ActivityService);
    for (let round = 0; round < 8; round++) {
      const member = `era-race-${round}`;
      await memberWithHistory(member);
      // Erasure and new activity for the same member, at once: whichever goes first, no row may point at a member
      // that no longer exists.
      const results = await Promise.allSettled([
        api.client(MemberService).eraseMember({ memberExternalId: member }),
        activities.recordActivity({
          activity: { memberRef: { case: "memberExternalId", value: member }, target: { case: "definitionId", value: daily }, occurTime: timestampFromMs(Date.now()), uniqueIdentifier: `${member}-late` },
        }),
        activities.recordActivity({
          activity: { memberRef: { case: "memberExternalId", value: member }, target: { case: "definitionId", value: weekly }, occurTime: timestampFromMs(Date.now()), uniqueIdentifier: `${member}-late-2` },
        }),
      ]);
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
    }
    const orphans = await db.query<{ t: string; n: number }>(
      `select 'activity' as t, count(*)::int as n from activity a where not exists (select 1 from member m where m.id = a.member_id)
       union all select 'member_streak', count(*)::int from member_streak s where not exists (select 1 from member m where m.id = s.member_id)
       union all select 'reward', count(*)::int from reward r where not exists (select 1 from member m where m.id = r.member_id)
       union all select 'streak_event', count(*)::int from streak_event e where e.member_id is not null and not exists (select 1 from member m where m.id = e.member_id)`,
    );
    expect(orphans.rows).toEqual([
      { t: "activity", n: 0 },
      { t: "member_streak", n: 0 },
      { t: "reward", n: 0 },
      { t: "streak_event", n: 0 },
    ]);
  }, 60_000);
});
