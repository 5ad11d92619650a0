// Recording an activity: one PostgreSQL transaction that upserts the member, stores the immutable activity,
// applies it to every definition it feeds through the domain core, and writes what follows from that — rewards,
// events and outbox rows for Temporal — so either all of it happens or none of it does.
//
// This is the hot path, so it talks to PostgreSQL through `pg` directly rather than the ORM (STYLE.md allows it
// where the ORM costs too much): a handful of statements per activity and no unit-of-work bookkeeping. The rows
// it writes are the same tables the entities in src/db/entities map, and the integration tests read them back
// through the ORM.
//
// Correctness under concurrency: the member-streak row is locked (SELECT … FOR UPDATE) before it is read, so two
// activities of one member serialise on it and neither update is lost. Rows are locked in definition-id order,
// so fan-out to several definitions cannot deadlock against another fan-out. Idempotency is the key
// (tenant, member, unique_identifier) in activity_key, written by the activity table's insert trigger (migration
// 0016): a duplicate inserts nothing (the trigger skips the row) and answers with the current state.
import { randomUUID } from "node:crypto";
import type { Pool, PoolClient } from "pg";
import { applyActivity, advance, type ApplyOutcome, type MemberStreakState, type StreakEffect, type WindowRecord } from "../../domain/streak-machine.ts";
import type { ActivityRecord } from "../../db/entities/index.ts";
import type { CatalogDefinition, DefinitionCatalog } from "../definitions/definition-catalog.ts";
import { planRewards, type PlannedReward } from "../rewards/reward-plan.ts";
import { eventsForEffects, type PlannedEvent } from "./streak-events.ts";
import type { RewardFactsByDefinition } from "../reads/progress-reader.ts";
import { EngineError } from "../engine-error.ts";
import { insertStreakWindowsSql, streakWindowRecords, type HistoryOwner } from "../history/streak-history.ts";
import { insertEvents, insertRewardsAndOutbox, lockMemberStreak, readMemberStreakStates, saveMemberStreak } from "./streak-persistence.ts";
import { applyTeamActivityInTransaction, teamRuleOf, type TeamActivityResult } from "../teams/team-streaks.ts";
import { IF_MEMBER_ABSENT, isNewMemberRace, memberIdFor, ON_MEMBER_KEY } from "../../db/member-id.ts";

// Re-exported for callers that imported it from here before it moved beside the other shared writes.
export { insertEvents };

/**
 * Gamopanda `ownedBy`: an inline profile updates the member, but only with the fields it carries; a field it
 * leaves out keeps the stored value. Shared by the single and the batched ingest paths.
 */
export const MERGE_INLINE_PROFILE = `${ON_MEMBER_KEY} do update set
         first_name = coalesce(excluded.first_name, member.first_name),
         last_name = coalesce(excluded.last_name, member.last_name),
         email = coalesce(excluded.email, member.email),
         phone = coalesce(excluded.phone, member.phone),
         time_zone = coalesce(excluded.time_zone, member.time_zone),
         locale = coalesce(excluded.locale, member.locale),
         updated_at = now()`;

export interface MemberProfile {
  readonly firstName?: string | undefined;
  readonly lastName?: string | undefined;
  readonly email?: string | undefined;
  readonly phone?: string | undefined;
  readonly timeZone?: string | undefined;
  readonly locale?: string | undefined;
}

export interface RecordActivityInput {
  readonly tenantId: string;
  readonly memberExternalId: string;
  /** Present when the request carried an inline member upsert (Gamopanda `ownedBy`). */
  readonly profile?: MemberProfile | undefined;
  readonly target: { readonly definitionId: string } | { readonly eventType: string };
  readonly occurredAt: number;
  readonly value?: number | undefined;
  readonly distinctKey?: string | undefined;
  readonly uniqueIdentifier: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly platform?: string | undefined;
}

/** Every reason an activity is stored but not applied to a streak; each has a name in the API's enum. */
export const NOT_APPLIED_REASONS = [
  "TOO_LATE", "IN_FUTURE", "INVALID_VALUE", "DEFINITION_PAUSED", "BEFORE_START", "AFTER_END", "DUPLICATE", "MISSING_VALUE", "MISSING_DISTINCT_KEY",
] as const;

export type NotAppliedReason = (typeof NOT_APPLIED_REASONS)[number];

/** Client clocks drift: an event dated up to this far ahead of the server is taken as "now". */
export const FUTURE_TOLERANCE_MS = 5 * 60_000;

export interface StreakOutcome {
  readonly definition: CatalogDefinition;
  readonly memberStreakId: string;
  readonly applied: boolean;
  readonly notAppliedReason: NotAppliedReason | null;
  readonly outcome: ApplyOutcome | null;
  readonly state: MemberStreakState;
  readonly effects: readonly StreakEffect[];
  /** Rewards this activity created (empty for duplicates). */
  readonly rewards: readonly PlannedReward[];
}

export interface RecordActivityResult {
  readonly activity: ActivityRecord;
  readonly duplicate: boolean;
  readonly member: { readonly id: string; readonly externalId: string; readonly timeZone: string | null };
  readonly streaks: readonly StreakOutcome[];
  /**
   * Reward facts (unclaimed rewards, total earned) per definition for this member, read after the commit, when
   * the ingestor already has them (the batched ingestor reads them for a whole batch in one query); callers
   * read them themselves when absent.
   */
  readonly rewardFacts?: ((definitionId: string) => RewardFactsByDefinition) | undefined;
}

export class TargetDefinitionError extends Error {
  readonly definitionId: string;
  readonly found: boolean;
  constructor(definitionId: string, found: boolean) {
    super(found ? `definition ${definitionId} is not live` : `definition ${definitionId} not found`);
    this.name = "TargetDefinitionError";
    this.definitionId = definitionId;
    this.found = found;
  }
}

export interface ActivityIngestor {
  record(input: RecordActivityInput): Promise<RecordActivityResult>;
}

/**
 * Refuses an activity that cannot be counted before anything of it is stored: a negative or non-finite value, or
 * a time that is not a number. The API's schema rules refuse these first; this keeps every other caller of the
 * ingestors (the batched path, tools, benchmarks) from storing a member, a streak row or an activity for one.
 */
export function assertRecordable(input: RecordActivityInput): void {
  if (input.value !== undefined && !(Number.isFinite(input.value) && input.value >= 0)) {
    throw new EngineError("INVALID_ARGUMENT", "INVALID_VALUE", `value must be a finite number of at least 0, got ${input.value}`, {}, "value");
  }
  if (!Number.isFinite(input.occurredAt)) {
    throw new EngineError("INVALID_ARGUMENT", "INVALID_VALUE", "occur_time is not a valid time", {}, "occur_time");
  }
}

/**
 * The definitions an activity feeds, in definition-id order (the lock order); refuses an activity that cannot be
 * counted (assertRecordable) and a target that is not live. Both ingest paths call it before they write.
 */
export async function resolveTargets(catalog: DefinitionCatalog, input: RecordActivityInput): Promise<CatalogDefinition[]> {
  assertRecordable(input);
  if ("definitionId" in input.target) {
    const def = await catalog.get(input.tenantId, input.target.definitionId);
    if (!def || (def.state !== "LIVE" && def.state !== "PAUSED")) throw new TargetDefinitionError(input.target.definitionId, def !== undefined);
    return [def];
  }
  return [...(await catalog.byEventType(input.tenantId, input.target.eventType))].sort((a, b) => (a.id < b.id ? -1 : 1));
}

/**
 * `history: false` stores no window history (streak_window) when recording: a measuring aid, see KINDLING_HISTORY.
 * `citus`: the database is a Citus coordinator (src/db/database-kind.ts); every statement then names the member's
 * shard.
 */
export function createActivityIngestor(deps: { pool: Pool; catalog: DefinitionCatalog; now: () => number; history?: boolean; citus?: boolean }): ActivityIngestor {
  const { pool, catalog } = deps;
  const history = deps.history ?? true;
  const citus = deps.citus ?? false;

  return {
    async record(input) {
      const defs = await resolveTargets(catalog, input);
      const now = deps.now();
      // A concurrent creation of the same new member can fail an inline profile's upsert on the member's id
      // (isNewMemberRace): the transaction stored nothing, and run again it finds the member.
      for (let attempt = 1; ; attempt++) {
        const client = await pool.connect();
        try {
          await client.query("begin");
          const result = await recordInTransaction(client, input, defs, now, history, citus);
          await client.query("commit");
          return result;
        } catch (error) {
          await client.query("rollback").catch(() => undefined);
          if (error instanceof DuplicateActivity) return readDuplicate(pool, input, defs, now, citus);
          if (attempt < 3 && isNewMemberRace(error)) continue;
          throw error;
        } finally {
          client.release();
        }
      }
    },
  };
}

async function upsertMember(client: PoolClient, input: RecordActivityInput, citus: boolean): Promise<{ id: string; timeZone: string | null }> {
  const p = input.profile;
  const id = memberIdFor(input.tenantId, input.memberExternalId);
  if (p) {
    const { rows } = await client.query<{ id: string; time_zone: string | null }>(
      `insert into member (id, tenant_id, external_id, first_name, last_name, email, phone, time_zone, locale, points_balance, created_at, updated_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, now(), now())
       ${MERGE_INLINE_PROFILE}
       returning id, time_zone`,
      [id, input.tenantId, input.memberExternalId, p.firstName ?? null, p.lastName ?? null, p.email ?? null, p.phone ?? null, p.timeZone ?? null, p.locale ?? null],
    );
    return { id: rows[0]!.id, timeZone: rows[0]!.time_zone };
  }
  if (citus) return upsertCitusMember(client, id, input);
  // Members are created on first sight (Phoenix and Loyalteez identify users by their own ids only). One round
  // trip either way: insert-if-absent, else read the existing row.
  const { rows } = await client.query<{ id: string; time_zone: string | null }>(
    `with created as (
       insert into member (id, tenant_id, external_id, points_balance, created_at, updated_at)
       values ($1, $2, $3, 0, now(), now())
       ${IF_MEMBER_ABSENT}
       returning id, time_zone)
     select id, time_zone from created
     union all
     select id, time_zone from member where tenant_id = $2 and external_id = $3
     limit 1`,
    [id, input.tenantId, input.memberExternalId],
  );
  if (rows[0]) return { id: rows[0].id, timeZone: rows[0].time_zone };
  // A concurrent first activity of the same member inserted it after this statement's snapshot was taken: the
  // insert waited for that commit and did nothing, and the select could not see the row yet. A new statement can.
  const again = await client.query<{ id: string; time_zone: string | null }>(
    "select id, time_zone from member where tenant_id = $1 and external_id = $2",
    [input.tenantId, input.memberExternalId],
  );
  return { id: again.rows[0]!.id, timeZone: again.rows[0]!.time_zone };
}

/**
 * On Citus a member's id is always memberIdFor(tenant, external id) (no member predates migration 0018 there), so
 * each statement names the member's shard: a read by id first (the common case, one shard), else the insert.
 */
async function upsertCitusMember(client: PoolClient, id: string, input: RecordActivityInput): Promise<{ id: string; timeZone: string | null }> {
  const read = () => client.query<{ id: string; time_zone: string | null }>(
    "select id, time_zone from member where id = $1 and tenant_id = $2 and external_id = $3", [id, input.tenantId, input.memberExternalId]);
  const found = await read();
  if (found.rows[0]) return { id, timeZone: found.rows[0].time_zone };
  const created = await client.query<{ id: string; time_zone: string | null }>(
    `insert into member (id, tenant_id, external_id, points_balance, created_at, updated_at) values ($1, $2, $3, 0, now(), now())
     ${IF_MEMBER_ABSENT} returning id, time_zone`,
    [id, input.tenantId, input.memberExternalId],
  );
  const row = created.rows[0] ?? (await read()).rows[0]!;
  return { id, timeZone: row.time_zone };
}

export interface ActivityRow {
  id: string; member_id: string; definition_id: string | null; event_type: string | null; applied_definition_ids: string[]; occurred_at: Date; value: number | null;
  distinct_key: string | null; unique_identifier: string; metadata: Record<string, string>; platform: string | null; recorded_at: Date; imported: boolean;
}

export function activityRecord(row: ActivityRow, externalId: string): ActivityRecord {
  return {
    id: row.id, memberId: row.member_id, memberExternalId: externalId, definitionId: row.definition_id, eventType: row.event_type,
    appliedDefinitionIds: row.applied_definition_ids,
    occurredAt: row.occurred_at.getTime(), value: row.value, distinctKey: row.distinct_key, uniqueIdentifier: row.unique_identifier,
    metadata: row.metadata, platform: row.platform, recordedAt: row.recorded_at.getTime(), imported: row.imported,
  };
}

export const ACTIVITY_COLUMNS = "id, member_id, definition_id, event_type, applied_definition_ids, occurred_at, value, distinct_key, unique_identifier, metadata, platform, recorded_at, imported";

/** Thrown inside the transaction when the idempotency key already exists; the caller rolls back and re-reads. */
class DuplicateActivity extends Error {}

async function recordInTransaction(
  client: PoolClient, input: RecordActivityInput, defs: readonly CatalogDefinition[], now: number, history: boolean, citus: boolean,
): Promise<RecordActivityResult> {
  const member = await upsertMember(client, input, citus);
  const memberRef = { id: member.id, externalId: input.memberExternalId, timeZone: member.timeZone };
  const activityId = randomUUID();
  const streaks: StreakOutcome[] = [];
  const events: PlannedEvent[] = [];
  const rewards: PlannedReward[] = [];
  const windows: { owner: HistoryOwner; windows: readonly WindowRecord[] }[] = [];
  // Streaks first, the activity row last: that row's unique key decides "duplicate", and inserting it last lets
  // it carry the definitions that counted it without a second write. A duplicate rolls all of this back.
  for (const def of defs) {
    const row = await lockMemberStreak(client, input.tenantId, member.id, def);
    const opts = { pausedIntervals: def.pauses };
    const gate = gateReason(def, input);
    let next: { state: MemberStreakState; outcome: ApplyOutcome | null; effects: readonly StreakEffect[]; finalised?: readonly WindowRecord[] };
    if (gate) {
      // Not counted, but windows that closed meanwhile still finalise, so the stored state is never stale.
      const advanced = advance(def.rules, row.state, now, opts);
      next = { state: advanced.state, outcome: null, effects: advanced.effects, finalised: advanced.finalised };
    } else {
      next = applyActivity(
        def.rules,
        row.state,
        { id: input.uniqueIdentifier, occurredAt: input.occurredAt, value: input.value ?? 0, distinctKey: input.distinctKey ?? null, memberTimezone: member.timeZone },
        { now, pausedIntervals: def.pauses, futureToleranceMs: FUTURE_TOLERANCE_MS },
      );
    }
    if (next.outcome?.kind === "DUPLICATE") throw new DuplicateActivity();
    const notApplied: NotAppliedReason | null = gate ?? (next.outcome?.kind === "NOT_APPLIED" ? next.outcome.reason : null);
    await saveMemberStreak(client, row.id, member.id, def, next.state, now);
    if (history && next.finalised !== undefined && next.finalised.length > 0) {
      windows.push({ owner: { tenantId: input.tenantId, memberId: member.id, definitionId: def.id, memberStreakId: row.id }, windows: next.finalised });
    }
    // Team definitions: the member's own streak above is their window aggregate and view; the team's streak
    // changes in this same transaction (its row locked after the member's), and its milestones pay every member
    // on the roster instead of the member's own milestones.
    const individual = teamRuleOf(def) === null;
    let teamResult: TeamActivityResult | null = null;
    if (!individual && gate === null) {
      teamResult = await applyTeamActivityInTransaction(
        client, def, input.tenantId, member.id,
        { id: input.uniqueIdentifier, occurredAt: input.occurredAt, value: input.value ?? 0, distinctKey: input.distinctKey ?? null },
        activityId, now, FUTURE_TOLERANCE_MS,
      );
    }
    const planned = individual
      ? planRewards(def, { tenantId: input.tenantId, memberId: member.id, memberStreakId: row.id, activityId }, next.effects, now)
      : [...(teamResult?.rewards ?? [])];
    rewards.push(...planned);
    const wasReset = next.outcome?.kind === "APPLIED" && next.outcome.wasReset;
    events.push(...eventsForEffects({ tenantId: input.tenantId, memberId: member.id, memberExternalId: input.memberExternalId, definitionId: def.id, memberStreakId: row.id, activityId, wasReset }, next.effects, individual ? planned : [], now));
    // The team's own events (streak.* naming the team, per roster member): the same keys the team sweeps write.
    events.push(...(teamResult?.events ?? []));
    streaks.push({ definition: def, memberStreakId: row.id, applied: notApplied === null, notAppliedReason: notApplied, outcome: next.outcome, state: next.state, effects: next.effects, rewards: planned });
  }
  const inserted = await client.query<ActivityRow>(
    `insert into activity (id, tenant_id, member_id, definition_id, event_type, applied_definition_ids, occurred_at, value, distinct_key, unique_identifier, platform, metadata, recorded_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
     returning ${ACTIVITY_COLUMNS}`,
    [
      activityId, input.tenantId, member.id,
      "definitionId" in input.target ? input.target.definitionId : null,
      "eventType" in input.target ? input.target.eventType : null,
      streaks.filter((s) => s.applied).map((s) => s.definition.id),
      new Date(input.occurredAt), input.value ?? null, input.distinctKey ?? null, input.uniqueIdentifier,
      input.platform ?? null, JSON.stringify(input.metadata), new Date(now),
    ],
  );
  if (inserted.rows.length === 0) throw new DuplicateActivity();
  await insertRewardsAndOutbox(client, rewards);
  await insertEvents(client, events);
  if (windows.length > 0) await client.query(insertStreakWindowsSql(1), [streakWindowRecords(windows, now)]);
  return { activity: activityRecord(inserted.rows[0]!, input.memberExternalId), duplicate: false, member: memberRef, streaks };
}

/** The answer to a duplicate: the stored activity and the current states, read without changing anything. */
async function readDuplicate(pool: Pool, input: RecordActivityInput, defs: readonly CatalogDefinition[], now: number, citus: boolean): Promise<RecordActivityResult> {
  const { rows } = await pool.query<ActivityRow & { time_zone: string | null }>(
    `select ${ACTIVITY_COLUMNS.split(", ").map((c) => `a.${c}`).join(", ")}, m.time_zone
       from member m
       join activity_key k on k.tenant_id = m.tenant_id and k.member_id = m.id and k.unique_identifier = $3
       join activity a on a.member_id = k.member_id and a.id = k.activity_id and a.recorded_at = k.recorded_at
      where m.tenant_id = $1 and m.external_id = $2${citus ? " and m.id = $4 and k.member_id = $4 and a.member_id = $4" : ""}`,
    [input.tenantId, input.memberExternalId, input.uniqueIdentifier, ...(citus ? [memberIdFor(input.tenantId, input.memberExternalId)] : [])],
  );
  const row = rows[0];
  // A key and its activity are deleted together (retention, erasure), in a transaction that committed between
  // the insert that found the key and this read.
  if (!row) throw new Error("duplicate activity vanished: removed by retention or erasure meanwhile");
  const streaks = await currentStreaks(pool, input.tenantId, row.member_id, defs, now);
  return {
    activity: activityRecord(row, input.memberExternalId),
    duplicate: true,
    member: { id: row.member_id, externalId: input.memberExternalId, timeZone: row.time_zone },
    streaks,
  };
}

export function gateReason(def: CatalogDefinition, input: RecordActivityInput): NotAppliedReason | null {
  if (def.state === "PAUSED") return "DEFINITION_PAUSED";
  if (def.startAt !== null && input.occurredAt < def.startAt) return "BEFORE_START";
  if (def.endAt !== null && input.occurredAt >= def.endAt) return "AFTER_END";
  // Gamopanda: activityValue is required when the streak sums values; a DISTINCT streak needs the key it counts.
  if (def.rules.condition.type === "SUM" && input.value === undefined) return "MISSING_VALUE";
  if (def.rules.condition.type === "DISTINCT" && !input.distinctKey) return "MISSING_DISTINCT_KEY";
  return null;
}

/** Current states for a duplicate's answer: read without locking and evaluated at `now`, changing nothing. */
async function currentStreaks(client: Pick<Pool, "query">, tenantId: string, memberId: string, defs: readonly CatalogDefinition[], now: number): Promise<StreakOutcome[]> {
  const rows = await readMemberStreakStates(client, tenantId, memberId, defs.map((d) => d.id));
  return defs.flatMap((def) => {
    const row = rows.find((r) => r.definition_id === def.id);
    if (!row) return [];
    const state = advance(def.rules, row.state, now, { pausedIntervals: def.pauses }).state;
    return [{ definition: def, memberStreakId: row.id, applied: false, notAppliedReason: "DUPLICATE" as const, outcome: { kind: "DUPLICATE" as const }, state, effects: [], rewards: [] }];
  });
}
