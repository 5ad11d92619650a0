// One attempt of a batch (batch-ingestor.ts): one transaction — duplicates and members read, members created
// or their profiles applied, member-streak rows locked or created, the domain run in memory in arrival order,
// and every write in one statement sent with COMMIT.
import { randomUUID } from "node:crypto";
import { IF_MEMBER_ABSENT, memberIdFor } from "../../db/member-id.ts";
import type { PoolClient, QueryResult } from "pg";
import { advance, applyActivity, initialState, type ApplyOutcome, type MemberStreakState, type StreakEffect, type WindowRecord } from "../../domain/streak-machine.ts";
import {
  FUTURE_TOLERANCE_MS,
  activityRecord,
  gateReason,
  type ActivityRow,
  MERGE_INLINE_PROFILE,
  type MemberProfile,
  type NotAppliedReason,
  type RecordActivityInput,
  type RecordActivityResult,
  type StreakOutcome,
} from "./activity-ingestor.ts";
import type { CatalogDefinition } from "../definitions/definition-catalog.ts";
import type { Settled } from "../group-batcher.ts";
import type { ActivityRecord, OutboxPayloads } from "../../db/entities/index.ts";
import { addRewardFact, type RewardFactRow, type RewardFactsByDefinition } from "../reads/progress-reader.ts";
import { planRewards, type PlannedReward } from "../rewards/reward-plan.ts";
import { eventsForEffects, type PlannedEvent } from "./streak-events.ts";
import { eventRecords, memberStreakRecords, wholeMillis } from "./streak-persistence.ts";
import { streakWindowRecords, type HistoryOwner } from "../history/streak-history.ts";
import { BATCH_STATEMENTS } from "./batch-sql.ts";
import { batchMessage, type Statement } from "./batch-message.ts";
import { storedDouble, storedJsonbObject, storedVarchar } from "./stored-values.ts";

export interface Pending {
  readonly input: RecordActivityInput;
  readonly defs: readonly CatalogDefinition[];
}

/** The batch saw something it cannot order exactly (a concurrent profile change): run it again. */
export class RetryBatch extends Error {}

/**
 * Something failed after the batch committed (answering it, not storing it): running it again would answer its
 * items as duplicates of themselves, so each item fails with the cause instead; a client's retry then answers
 * `duplicate` with what was stored.
 */
export class CommittedBatchError extends Error {}

function afterCommit<T>(answer: () => T): T {
  try {
    return answer();
  } catch (error) {
    throw new CommittedBatchError("batch committed, answering it failed", { cause: error });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One attempt: one transaction.

export type Attempt = { kind: "done"; results: Settled<RecordActivityResult>[] } | { kind: "conflict"; conflicts: number[] };

interface MemberInfo {
  readonly id: string;
  readonly timeZone: string | null;
}

interface StreakSlot {
  readonly id: string;
  readonly def: CatalogDefinition;
  state: MemberStreakState;
  saves: number;
  /** Index of the first item that made this row exist (-1: it existed before the batch). */
  readonly existsFrom: number;
}

type Kind = { kind: "fresh" } | { kind: "stored"; row: ActivityRow } | { kind: "repeat"; first: number };

/**
 * Records for `jsonb_to_recordset`, each with its position `n`, so an insert can keep their order (lock order).
 * The records are the caller's temporaries: `n` is set on them (last, as a spread copy would put it) rather than
 * on a copy of each.
 */
function numbered(records: readonly object[]): string {
  for (let n = 0; n < records.length; n++) (records[n] as { n?: number }).n = n;
  return JSON.stringify(records);
}
/** The order members are created and locked in, by every batch: (tenant, external id). */
const byMember = (a: { tenantId: string; externalId: string }, b: { tenantId: string; externalId: string }) =>
  a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : a.externalId < b.externalId ? -1 : a.externalId > b.externalId ? 1 : 0;
const memberKey = (tenantId: string, externalId: string) => `${tenantId}\u0000${externalId}`;
const streakKey = (memberId: string, definitionId: string) => `${memberId}\u0000${definitionId}`;
const PROFILE_FIELDS = ["firstName", "lastName", "email", "phone", "timeZone", "locale"] as const satisfies readonly (keyof MemberProfile)[];

export async function attemptBatch(client: PoolClient, items: readonly Pending[], now: number, prepared: boolean, history: boolean): Promise<Attempt> {
  // 1. Duplicates: stored keys and keys repeated inside the batch, with the stored members (one SELECT). Without
  //    inline profiles, the member-streak rows of the stored members are locked in the same round trip as BEGIN
  //    and that SELECT (one simple-protocol message); with profiles, members are locked before streak rows (the
  //    one-at-a-time path's order), so streak rows wait for step 3.
  const classifyQuery = classifySql(items);
  let classified: ClassifyRow[];
  let prelocked: readonly StreakRow[] | null = null;
  if (items.some((p) => p.input.profile)) {
    await client.query("begin");
    classified = (await client.query<ClassifyRow>(classifyQuery.text, [...classifyQuery.values])).rows;
  } else {
    // Absent members are created first, while the batch holds no lock (every writer creates members before it
    // locks streak rows; waiting for a concurrent creator of the same member here can close no cycle).
    const [, , c, l] = await batchMessage(client, ["begin", createMembersSql(items), classifyQuery, prelockSql(items)], prepared);
    classified = c!.rows as ClassifyRow[];
    prelocked = l!.rows as StreakRow[];
  }
  const { kinds, stored } = classify(items, classified);

  // 2. Members: created when absent, profiles applied.
  const { members, zoneAt } = await upsertMembers(client, items, kinds, stored);
  // Looked up once per item: the domain loop, the writes and the answers ask for it several times an item.
  const memberAt = items.map((p) => members.get(memberKey(p.input.tenantId, p.input.memberExternalId))!);
  const memberOf = (i: number) => memberAt[i]!;

  // 3. Member-streak rows, locked in id order (unless locked in step 1); absent ones (needed by new activities) created.
  const slots = await lockStreaks(client, items, kinds, memberOf, prelocked);

  // 4. The domain, in memory, in arrival order.
  const activityIds = items.map(() => randomUUID());
  const outcomes: (StreakOutcome[] | null)[] = items.map(() => null);
  const rewards: PlannedReward[] = [];
  const events: PlannedEvent[] = [];
  const windows: { owner: HistoryOwner; windows: readonly WindowRecord[] }[] = [];
  const conflicts: number[] = [];
  const duplicateStreaks = (i: number): StreakOutcome[] => {
    const member = memberOf(i);
    return items[i]!.defs.flatMap((def) => {
      const slot = slots.get(streakKey(member.id, def.id));
      if (!slot || slot.existsFrom >= i) return [];
      const state = advance(def.rules, slot.state, now, { pausedIntervals: def.pauses }).state;
      return [{ definition: def, memberStreakId: slot.id, applied: false, notAppliedReason: "DUPLICATE" as const, outcome: { kind: "DUPLICATE" as const }, state, effects: [], rewards: [] }];
    });
  };
  for (let i = 0; i < items.length; i++) {
    const kind = kinds[i]!;
    const { input, defs } = items[i]!;
    if (kind.kind !== "fresh") {
      outcomes[i] = duplicateStreaks(i);
      continue;
    }
    const member = memberOf(i);
    const zone = zoneAt[i] ?? null;
    const streaks: StreakOutcome[] = [];
    const planned: PlannedReward[] = [];
    const planEvents: PlannedEvent[] = [];
    const planWindows: { owner: HistoryOwner; windows: readonly WindowRecord[] }[] = [];
    let duplicate = false;
    for (const def of defs) {
      const slot = slots.get(streakKey(member.id, def.id))!;
      const gate = gateReason(def, input);
      let next: { state: MemberStreakState; outcome: ApplyOutcome | null; effects: readonly StreakEffect[]; finalised?: readonly WindowRecord[] };
      if (gate) {
        const advanced = advance(def.rules, slot.state, now, { pausedIntervals: def.pauses });
        next = { state: advanced.state, outcome: null, effects: advanced.effects, finalised: advanced.finalised };
      } else {
        next = applyActivity(
          def.rules,
          slot.state,
          { id: input.uniqueIdentifier, occurredAt: input.occurredAt, value: input.value ?? 0, distinctKey: input.distinctKey ?? null, memberTimezone: zone },
          { now, pausedIntervals: def.pauses, futureToleranceMs: FUTURE_TOLERANCE_MS },
        );
      }
      if (next.outcome?.kind === "DUPLICATE") {
        duplicate = true;
        break;
      }
      const notApplied: NotAppliedReason | null = gate ?? (next.outcome?.kind === "NOT_APPLIED" ? next.outcome.reason : null);
      const owner = { tenantId: input.tenantId, memberId: member.id, memberStreakId: slot.id, activityId: activityIds[i]! };
      const granted = planRewards(def, owner, next.effects, now);
      planned.push(...granted);
      const wasReset = next.outcome?.kind === "APPLIED" && next.outcome.wasReset;
      planEvents.push(...eventsForEffects({ ...owner, memberExternalId: input.memberExternalId, definitionId: def.id, wasReset }, next.effects, granted, now));
      if (history && next.finalised !== undefined && next.finalised.length > 0) {
        planWindows.push({ owner: { tenantId: input.tenantId, memberId: member.id, definitionId: def.id, memberStreakId: slot.id }, windows: next.finalised });
      }
      streaks.push({ definition: def, memberStreakId: slot.id, applied: notApplied === null, notAppliedReason: notApplied, outcome: next.outcome, state: next.state, effects: next.effects, rewards: granted });
    }
    if (duplicate) {
      // Stored by a transaction that committed after the pre-check: nothing of it is kept; answered one at a time.
      conflicts.push(i);
      continue;
    }
    for (const s of streaks) {
      const slot = slots.get(streakKey(member.id, s.definition.id))!;
      slot.state = s.state;
      slot.saves += 1;
    }
    outcomes[i] = streaks;
    rewards.push(...planned);
    events.push(...planEvents);
    windows.push(...planWindows);
  }
  // Every item repeating a conflicting key follows it to the one-at-a-time path.
  if (conflicts.length > 0) {
    for (let i = 0; i < items.length; i++) {
      const kind = kinds[i]!;
      if (kind.kind === "repeat" && conflicts.includes(kind.first)) conflicts.push(i);
    }
    await client.query("rollback");
    return { kind: "conflict", conflicts };
  }

  // 5. One statement writes everything: streak rows (once each), activities, rewards with their outbox rows,
  //    events; COMMIT goes in the same round trip. An activity stored concurrently makes the statement raise
  //    KB001 (kindling_batch_check) before anything commits: the batch runs again (runBatch), and sees it stored.
  const fresh = items.map((_, i) => i).filter((i) => kinds[i]!.kind === "fresh");
  const { inserted, facts } = await writeBatch(client, prepared, {
    streaks: [...slots.values()].filter((s) => s.saves > 0), items, fresh, activityIds, outcomes, memberOf, rewards, events, windows, now,
  });

  const results: Settled<RecordActivityResult>[] = afterCommit(() => items.map((item, i) => {
    const kind = kinds[i]!;
    const member = memberOf(i);
    const ownerIndex = kind.kind === "repeat" ? kind.first : i;
    const activity: ActivityRecord =
      kind.kind === "stored" ? activityRecord(kind.row, item.input.memberExternalId) : activityRecord(inserted.get(ownerIndex)!, item.input.memberExternalId);
    return {
      ok: true,
      value: {
        activity,
        duplicate: kind.kind !== "fresh",
        member: { id: member.id, externalId: item.input.memberExternalId, timeZone: zoneAt[i] ?? null },
        streaks: outcomes[i]!,
        // The rewards stored before the batch and those created by items up to this one: item i's response
        // shows the member as item i left them, like its streak state, not as a later item of the batch did.
        rewardFacts: (definitionId: string) => facts(i, member.id, definitionId),
      },
    };
  }));
  return { kind: "done", results };
}

/**
 * Duplicates (stored keys, and keys repeated inside the batch) and the stored member of every item, in one
 * SELECT: each item's member, with its activity of the same idempotency key when one is stored.
 *
 * Lookups per key are written as LATERAL subqueries with `offset 0`, which keeps the planner from flattening
 * them into joins: each is then one unique-index probe with every key column bound, whatever the statistics
 * say. Flattened, stale statistics after a bulk load (measured in bench/: members seeded, not yet analysed) gave
 * a hash join over a sequential scan of `member` and an activity probe on (tenant_id, unique_identifier) alone
 * that walked the tenant's whole index — 9–12 ms instead of 0.4 ms for 32 keys.
 */
type ClassifyRow = ActivityRow & { k_tenant_id: string; k_external_id: string; k_uid: string; m_id: string; m_time_zone: string | null };

const keyOf = (p: Pending) => `${p.input.tenantId}\u0000${p.input.memberExternalId}\u0000${p.input.uniqueIdentifier}`;

function classifySql(items: readonly Pending[]): Statement {
  const tenants: string[] = [];
  const externals: string[] = [];
  const uids: string[] = [];
  const seen = new Set<string>();
  for (const p of items) {
    const k = keyOf(p);
    if (seen.has(k)) continue;
    seen.add(k);
    tenants.push(p.input.tenantId);
    externals.push(p.input.memberExternalId);
    uids.push(p.input.uniqueIdentifier);
  }
  return {
    ...BATCH_STATEMENTS.classify,
    values: [tenants, externals, uids],
  };
}

/** Creates the batch's members that do not exist yet (no profile applied: the batches that carry one do not use it). */
function createMembersSql(items: readonly Pending[]): Statement {
  const members = new Map(items.map((p) => [memberKey(p.input.tenantId, p.input.memberExternalId), { tenantId: p.input.tenantId, externalId: p.input.memberExternalId }]));
  const sorted = [...members.values()].sort(byMember);
  return {
    // In (tenant, external id) order, like upsertMembers, so two batches creating the same members wait in one order.
    ...BATCH_STATEMENTS.createMembers,
    values: [sorted.map((m) => m.tenantId), sorted.map((m) => m.externalId), sorted.map((m) => memberIdFor(m.tenantId, m.externalId))],
  };
}

/**
 * Locks the member-streak rows of the batch's stored members (found by external id) for every definition an
 * item feeds, in id order, as lockStreaks does once members are known; rows that do not exist yet are created
 * there.
 */
function prelockSql(items: readonly Pending[]): Statement {
  const keys = new Map<string, { tenantId: string; externalId: string; definitionId: string }>();
  for (const p of items) {
    for (const def of p.defs) keys.set(`${memberKey(p.input.tenantId, p.input.memberExternalId)}\u0000${def.id}`, { tenantId: p.input.tenantId, externalId: p.input.memberExternalId, definitionId: def.id });
  }
  const list = [...keys.values()];
  return {
    // Fenced as lockStreakRowsSql says (the member id a scalar subquery, so the streak probe binds all three key
    // columns). Left to the planner, stale statistics after a bulk load gave a
    // hash join of every key with every streak row of the definition (306,464 pairs for 244 keys, 667 ms), and,
    // with the member joined, a probe on (tenant, definition) alone that walked all of them (8 ms a key).
    ...BATCH_STATEMENTS.prelock,
    values: [list.map((k) => k.tenantId), list.map((k) => k.externalId), list.map((k) => k.definitionId)],
  };
}

function classify(items: readonly Pending[], rows: readonly ClassifyRow[]): { kinds: Kind[]; stored: Map<string, MemberRow> } {
  const activities = new Map<string, ActivityRow>();
  const members = new Map<string, MemberRow>();
  for (const r of rows) {
    members.set(memberKey(r.k_tenant_id, r.k_external_id), { id: r.m_id, tenant_id: r.k_tenant_id, external_id: r.k_external_id, time_zone: r.m_time_zone });
    if (r.id !== null) activities.set(`${r.k_tenant_id}\u0000${r.k_external_id}\u0000${r.k_uid}`, r);
  }
  const firstAt = new Map<string, number>();
  const kinds = items.map((p, i): Kind => {
    const k = keyOf(p);
    const row = activities.get(k);
    if (row) return { kind: "stored", row };
    const first = firstAt.get(k);
    if (first !== undefined) return { kind: "repeat", first };
    firstAt.set(k, i);
    return { kind: "fresh" };
  });
  return { kinds, stored: members };
}

interface MemberRow {
  id: string;
  tenant_id: string;
  external_id: string;
  time_zone: string | null;
}

/**
 * Finds or creates every member of the batch and applies the inline profiles of new activities, merged in
 * arrival order (a field takes the last non-null value, as consecutive `coalesce` upserts leave it). Members
 * with a profile are locked first, so the time zone each item sees (`zoneAt`) is computed from the exact stored
 * value; a member that someone else created between our read and our upsert makes the batch run again.
 */
async function upsertMembers(
  client: PoolClient,
  items: readonly Pending[],
  kinds: readonly Kind[],
  stored: ReadonlyMap<string, MemberRow>,
): Promise<{ members: Map<string, MemberInfo>; zoneAt: (string | null)[] }> {
  const all = new Map<string, { tenantId: string; externalId: string }>();
  const profiles = new Map<string, { tenantId: string; externalId: string; merged: Record<(typeof PROFILE_FIELDS)[number], string | null> }>();
  items.forEach((p, i) => {
    const k = memberKey(p.input.tenantId, p.input.memberExternalId);
    all.set(k, { tenantId: p.input.tenantId, externalId: p.input.memberExternalId });
    const profile = p.input.profile;
    if (!profile || kinds[i]!.kind !== "fresh") return;
    const entry = profiles.get(k) ?? {
      tenantId: p.input.tenantId, externalId: p.input.memberExternalId,
      merged: { firstName: null, lastName: null, email: null, phone: null, timeZone: null, locale: null },
    };
    for (const f of PROFILE_FIELDS) entry.merged[f] = profile[f] ?? entry.merged[f];
    profiles.set(k, entry);
  });
  const byKey = (rows: readonly MemberRow[]) => new Map(rows.map((r) => [memberKey(r.tenant_id, r.external_id), r]));
  const select = async (keys: readonly { tenantId: string; externalId: string }[], lock: boolean) =>
    byKey(
      (
        await client.query<MemberRow>(
          (lock ? BATCH_STATEMENTS.lockMembers : BATCH_STATEMENTS.readMembers).text,
          [keys.map((k) => k.tenantId), keys.map((k) => k.externalId)],
        )
      ).rows,
    );
  const sorted = (map: Map<string, { tenantId: string; externalId: string }>) => [...map.values()].sort(byMember);

  const plain = new Map([...all].filter(([k]) => !profiles.has(k)));
  // Members without a profile to apply were read with the duplicates (classify); only profiles need a lock.
  const found = new Map([...plain.keys()].flatMap((k) => (stored.has(k) ? [[k, stored.get(k)!] as const] : [])));
  // Stored zone of each member before this batch's profiles apply.
  const before = new Map<string, string | null>();
  const final = new Map<string, MemberRow>(found);
  if (profiles.size > 0) {
    const locked = await select(sorted(profiles), true);
    for (const [k, r] of locked) before.set(k, r.time_zone);
    const list = sorted(profiles).map((m) => profiles.get(memberKey(m.tenantId, m.externalId))!);
    const { rows } = await client.query<MemberRow & { inserted: boolean }>(
      `insert into member (id, tenant_id, external_id, first_name, last_name, email, phone, time_zone, locale, points_balance, created_at, updated_at)
       select x.id, x.tenant_id, x.external_id, x.first_name, x.last_name, x.email, x.phone, x.time_zone, x.locale, 0, now(), now()
         from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, external_id varchar, first_name varchar, last_name varchar,
           email varchar, phone varchar, time_zone varchar, locale varchar, n bigint)
        order by n
       ${MERGE_INLINE_PROFILE}
       returning id, tenant_id, external_id, time_zone, (xmax = 0) as inserted`,
      [
        numbered(
          list.map((m) => ({
            id: memberIdFor(m.tenantId, m.externalId), tenant_id: m.tenantId, external_id: m.externalId, first_name: m.merged.firstName, last_name: m.merged.lastName,
            email: m.merged.email, phone: m.merged.phone, time_zone: m.merged.timeZone, locale: m.merged.locale,
          })),
        ),
      ],
    );
    for (const r of rows) {
      const k = memberKey(r.tenant_id, r.external_id);
      // Created by someone else after our locking read: its prior zone is unknown to us, so start over.
      if (!r.inserted && !before.has(k)) throw new RetryBatch();
      if (r.inserted) before.set(k, null);
      final.set(k, r);
    }
  }
  const absent = new Map([...plain].filter(([k]) => !found.has(k)));
  if (absent.size > 0) {
    const list = sorted(absent);
    const { rows } = await client.query<MemberRow>(
      `insert into member (id, tenant_id, external_id, points_balance, created_at, updated_at)
       select x.id, x.tenant_id, x.external_id, 0, now(), now()
         from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, external_id varchar, n bigint)
        order by n
       ${IF_MEMBER_ABSENT}
       returning id, tenant_id, external_id, time_zone`,
      [numbered(list.map((m) => ({ id: memberIdFor(m.tenantId, m.externalId), tenant_id: m.tenantId, external_id: m.externalId })))],
    );
    for (const r of rows) final.set(memberKey(r.tenant_id, r.external_id), r);
    // Created concurrently after this statement's snapshot: the insert waited and did nothing, a new statement sees it.
    const still = list.filter((m) => !final.has(memberKey(m.tenantId, m.externalId)));
    if (still.length > 0) for (const [k, r] of await select(still, false)) final.set(k, r);
  }
  for (const [k, r] of final) if (!before.has(k)) before.set(k, r.time_zone);

  // The zone each item sees: the stored one, changed by earlier new activities' profiles in arrival order.
  const current = new Map(before);
  const zoneAt = items.map((p, i) => {
    const k = memberKey(p.input.tenantId, p.input.memberExternalId);
    const tz = p.input.profile?.timeZone;
    if (kinds[i]!.kind === "fresh" && p.input.profile && tz != null) current.set(k, tz);
    return current.get(k) ?? null;
  });
  for (const [k, r] of final) if (profiles.has(k) && (current.get(k) ?? null) !== r.time_zone) throw new RetryBatch();
  const members = new Map<string, MemberInfo>();
  for (const [k, r] of final) members.set(k, { id: r.id, timeZone: r.time_zone });
  if (members.size !== all.size) throw new Error("batch: member not found after upsert");
  return { members, zoneAt };
}

interface StreakRow {
  id: string;
  member_id: string;
  definition_id: string;
  state: MemberStreakState;
}

/**
 * Locks every member-streak row the batch reads, in id order (the order the window sweeps lock in), and creates
 * the ones new activities need; rows of duplicates are only read, never created (a duplicate changes nothing).
 */
async function lockStreaks(
  client: PoolClient,
  items: readonly Pending[],
  kinds: readonly Kind[],
  memberOf: (i: number) => MemberInfo,
  prelocked: readonly StreakRow[] | null,
): Promise<Map<string, StreakSlot>> {
  const wanted = new Map<string, { tenantId: string; memberId: string; def: CatalogDefinition; createFor: number }>();
  items.forEach((p, i) => {
    const member = memberOf(i);
    for (const def of p.defs) {
      const k = streakKey(member.id, def.id);
      const create = kinds[i]!.kind === "fresh" ? i : -1;
      const have = wanted.get(k);
      if (!have) wanted.set(k, { tenantId: p.input.tenantId, memberId: member.id, def, createFor: create });
      else if (have.createFor < 0 && create >= 0) wanted.set(k, { ...have, createFor: create });
    }
  });
  const slots = new Map<string, StreakSlot>();
  if (wanted.size === 0) return slots;
  const select = async (keys: readonly { tenantId: string; memberId: string; def: CatalogDefinition }[]) =>
    (
      await client.query<StreakRow>(BATCH_STATEMENTS.lockStreaks.text, [keys.map((k) => k.tenantId), keys.map((k) => k.memberId), keys.map((k) => k.def.id)])
    ).rows;
  const take = (rows: readonly StreakRow[]) => {
    for (const r of rows) {
      const k = streakKey(r.member_id, r.definition_id);
      slots.set(k, { id: r.id, def: wanted.get(k)!.def, state: r.state, saves: 0, existsFrom: -1 });
    }
  };
  // Rows locked with BEGIN (prelockSql) are all the stored rows of members that existed then; a member created
  // since has none but those its creator made, which the insert below runs into and locks.
  take(prelocked ?? (await select([...wanted.values()])));
  const create = [...wanted.entries()].filter(([k, w]) => !slots.has(k) && w.createFor >= 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (create.length === 0) return slots;
  const initial = new Map<string, MemberStreakState>();
  const { rows } = await client.query<{ id: string; member_id: string; definition_id: string }>(
    `with x as materialized (
       select * from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, member_id uuid, definition_id uuid, status varchar, state jsonb, n bigint)
     ), created as (
       insert into member_streak (id, tenant_id, member_id, definition_id, status, current_count, longest_count, version, created_at, updated_at, leaderboard_opt_out)
       select x.id, x.tenant_id, x.member_id, x.definition_id, x.status, 0, 0, 1, now(), now(),
              coalesce((select m.leaderboard_opt_out from member m where m.id = x.member_id), false)
         from x
        order by n
       on conflict (tenant_id, member_id, definition_id) do nothing
       returning id, member_id, definition_id
     ), states as (
       insert into member_streak_state (member_streak_id, member_id, state) select c.id, c.member_id, x.state from created c join x on x.id = c.id
     )
     select id, member_id, definition_id from created`,
    [
      numbered(
        create.map(([k, w]) => {
          const state = initialState(w.def.rules);
          initial.set(k, state);
          return { id: randomUUID(), tenant_id: w.tenantId, member_id: w.memberId, definition_id: w.def.id, status: state.status, state };
        }),
      ),
    ],
  );
  for (const r of rows) {
    const k = streakKey(r.member_id, r.definition_id);
    const w = wanted.get(k)!;
    slots.set(k, { id: r.id, def: w.def, state: initial.get(k)!, saves: 0, existsFrom: w.createFor });
  }
  // Another transaction created some between our select and insert; they are committed or we wait for them.
  const again = create.filter(([k]) => !slots.has(k)).map(([, w]) => w);
  if (again.length > 0) take(await select(again));
  return slots;
}

interface BatchWrites {
  readonly streaks: readonly StreakSlot[];
  readonly items: readonly Pending[];
  readonly fresh: readonly number[];
  readonly activityIds: readonly string[];
  readonly outcomes: readonly (StreakOutcome[] | null)[];
  readonly memberOf: (i: number) => MemberInfo;
  readonly rewards: readonly PlannedReward[];
  readonly events: readonly PlannedEvent[];
  /** The windows the batch's transitions finalised (streak_window rows). */
  readonly windows: readonly { readonly owner: HistoryOwner; readonly windows: readonly WindowRecord[] }[];
  readonly now: number;
}

/**
 * The batch's writes in one statement (data-modifying WITH items), sent with COMMIT in one simple-protocol
 * message: the streak rows, the fresh activities (`returning`; the key trigger skips a stored key, so a concurrent duplicate is a
 * missing row, and kindling_batch_check then aborts the statement and so the commit), the rewards (once each,
 * by reward_grant_once) with a lifecycle outbox row for each one created that needs it, and the events. Returns
 * the inserted activities by item index, and the reward facts for the responses, read in the same round trip: for
 * item i and one (member, definition), the rewards stored before this statement (its snapshot) plus the ones it
 * created for items 0..i (by their activity_id), so each response shows the rewards as of its own item.
 * Every reward row is written under the lock of its member-streak row (taken in lockStreaks), so the snapshot
 * cannot miss a reward another transaction is writing for the same pair.
 */
async function writeBatch(
  client: PoolClient,
  prepared: boolean,
  w: BatchWrites,
): Promise<{ inserted: Map<number, ActivityRow>; facts: (i: number, memberId: string, definitionId: string) => RewardFactsByDefinition }> {
  const pairs = new Map<string, { tenant_id: string; member_id: string; definition_id: string }>();
  w.items.forEach((p, i) => {
    const member = w.memberOf(i);
    for (const def of p.defs) pairs.set(streakKey(member.id, def.id), { tenant_id: p.input.tenantId, member_id: member.id, definition_id: def.id });
  });
  const byId = new Map(w.fresh.map((i) => [w.activityIds[i]!, i]));
  // Each fresh activity as its row will be stored (stored-values.ts): the answer's activity, since the write
  // returns only the ids of the rows it inserted.
  const stored = new Map<number, ActivityRow>();
  const activities = w.fresh.map((i) => {
    const input = w.items[i]!.input;
    const row = {
      id: w.activityIds[i]!, tenant_id: input.tenantId, member_id: w.memberOf(i).id,
      definition_id: "definitionId" in input.target ? input.target.definitionId : null,
      event_type: "eventType" in input.target ? input.target.eventType : null,
      applied_definition_ids: w.outcomes[i]!.filter((s) => s.applied).map((s) => s.definition.id),
      occurred_at: wholeMillis(input.occurredAt),
      // As text, so NaN and ±Infinity reach float8 as the one-at-a-time path's parameters do.
      value: input.value === undefined ? null : String(input.value),
      distinct_key: input.distinctKey ?? null, unique_identifier: input.uniqueIdentifier, platform: input.platform ?? null,
      metadata: input.metadata, recorded_at: wholeMillis(w.now),
    };
    stored.set(i, {
      id: row.id, member_id: row.member_id, definition_id: row.definition_id, event_type: storedVarchar(row.event_type, 128),
      applied_definition_ids: row.applied_definition_ids, occurred_at: new Date(input.occurredAt),
      value: input.value === undefined ? null : storedDouble(input.value), distinct_key: storedVarchar(row.distinct_key, 256),
      unique_identifier: storedVarchar(row.unique_identifier, 256), metadata: storedJsonbObject(input.metadata) as Record<string, string>,
      platform: storedVarchar(row.platform, 64), recorded_at: new Date(w.now), imported: false,
    });
    return row;
  });
  activities.sort((a, b) => (a.member_id < b.member_id ? -1 : a.member_id > b.member_id ? 1 : a.unique_identifier < b.unique_identifier ? -1 : 1));
  const ms = (v: number | null) => (v === null ? null : new Date(v).toISOString());
  const rewards = w.rewards.map((r) => ({
    id: r.id, tenant_id: r.tenantId, member_id: r.memberId, definition_id: r.definitionId, threshold: r.threshold, cycle: r.cycle,
    repetition: r.repetition, kind: r.kind, name: r.name, value: r.value, points: r.points, state: r.state, mode: r.mode,
    claim_deadline_at: ms(r.claimDeadlineAt), issued_at: ms(r.issuedAt), streak_count: r.streakCount, multiplier: r.multiplier,
    activity_id: r.activityId, created_at: ms(r.createdAt),
  }));
  const outbox = w.rewards
    .filter((r) => r.needsWorkflow)
    .map((r) => {
      const payload: OutboxPayloads["reward.lifecycle"] = { rewardId: r.id, tenantId: r.tenantId, memberId: r.memberId, definitionId: r.definitionId };
      return { reward_id: r.id, tenant_id: r.tenantId, kind: "reward.lifecycle", dedupe_key: `reward:${r.id}`, payload };
    });
  const write: Statement = {
    ...BATCH_STATEMENTS.write,
    values: [
      memberStreakRecords(w.streaks, w.now), numbered(activities), numbered(rewards), numbered(outbox), eventRecords(w.events), JSON.stringify([...pairs.values()]),
      activities.length, streakWindowRecords(w.windows, w.now),
    ],
  };
  const [written] = await batchMessage(client, [write, "commit"], prepared);
  return afterCommit(() => answers(written!));

  // Reads the rows the statement answered (already committed): the inserted activities by item index, and each
  // item's reward facts.
  function answers(result: QueryResult) {
    const rows = result.rows as ({
      row_kind: "activity" | "reward" | "check"; id: string | null; r_id: string | null; r_member_id: string | null; r_definition_id: string | null; r_threshold: number | null;
      r_kind: string | null; r_points: number | null; r_value: string | null; r_state: string | null; r_claim_deadline_at: Date | null; r_created_at: Date | null;
      r_activity_id: string | null;
    })[];
    const inserted = new Map<number, ActivityRow>();
    const rewardRows: (RewardFactRow & { member_id: string; created_at: Date; createdBy: number })[] = [];
    for (const r of rows) {
      if (r.row_kind === "check") continue;
      if (r.row_kind === "activity") {
        const i = byId.get(r.id!)!;
        inserted.set(i, stored.get(i)!);
      }
      else {
        const createdBy = r.r_activity_id === null ? -1 : byId.get(r.r_activity_id);
        if (createdBy === undefined) throw new Error(`batch: reward ${r.r_id} created for an activity not in the batch`);
        rewardRows.push({
          id: r.r_id!, member_id: r.r_member_id!, definition_id: r.r_definition_id!, threshold: r.r_threshold!, kind: r.r_kind!, points: r.r_points!,
          value: r.r_value!, state: r.r_state!, claim_deadline_at: r.r_claim_deadline_at, created_at: r.r_created_at!, createdBy,
        });
      }
    }
    if (w.fresh.some((i) => !inserted.has(i))) throw new Error("batch: an activity missing after a checked write");
    // The order the single read lists them in.
    rewardRows.sort((a, b) => a.threshold - b.threshold || a.created_at.getTime() - b.created_at.getTime());
    const byKey = new Map<string, typeof rewardRows>();
    for (const r of rewardRows) {
      const key = streakKey(r.member_id, r.definition_id);
      const list = byKey.get(key);
      if (list) list.push(r);
      else byKey.set(key, [r]);
    }
    const facts = (i: number, memberId: string, definitionId: string): RewardFactsByDefinition => {
      const f = new Map<string, RewardFactsByDefinition>();
      for (const r of byKey.get(streakKey(memberId, definitionId)) ?? []) if (r.createdBy <= i) addRewardFact(f, definitionId, r);
      return f.get(definitionId) ?? { unclaimed: [], total: 0 };
    };
    return { inserted, facts };
  }
}
