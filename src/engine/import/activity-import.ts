// ImportActivities: historical activity for many members in one transaction. Live recording folds each activity
// into the stored state and refuses what falls behind the grace horizon; an import instead stores the activities
// (marked imported; duplicates by unique_identifier skipped) and recomputes every member streak they reach from
// the member's whole applied history in event time — the domain's `recompute`, which property test (a) in
// test/domain/properties.test.ts holds equal to incremental processing. The member streak row is locked (created
// when absent) before its history is read, as recording locks it, so live recording for the same member either
// committed first (and is part of the history) or waits and then applies on top of the recomputed state.
//
// Milestones reached inside the history are what `diffEffects` finds between the stored state and the recomputed
// one: milestones already earned are never reached again, and reward rows are unique per (member, definition,
// threshold, cycle, repetition), so no import — repeated or not — grants one twice.
//
// Retention (src/engine/retention/retention.ts) may have removed a member's older activities. A recomputation without them
// would rebuild the streak from the retained part only, so the import refuses (FAILED_PRECONDITION,
// HISTORY_EXPIRED) when the stored state counts more applied activities (activityCount) than the retained history
// holds, and changes nothing.
import { IF_MEMBER_ABSENT, isNewMemberRace, memberIdFor } from "../../db/member-id.ts";
import { randomUUID } from "node:crypto";
import type { Pool, PoolClient } from "pg";
import { advance, diffEffects, recompute, type ActivityInput as DomainActivity, type MemberStreakState, type StreakEffect } from "../../domain/streak-machine.ts";
import { MERGE_INLINE_PROFILE, gateReason, resolveTargets, type RecordActivityInput } from "../ingest/activity-ingestor.ts";
import type { CatalogDefinition, DefinitionCatalog } from "../definitions/definition-catalog.ts";
import { planRewards, type PlannedReward } from "../rewards/reward-plan.ts";
import { teamRuleOf } from "../teams/team-streaks.ts";
import { eventsForEffects } from "../ingest/streak-events.ts";
import { insertEvents, insertRewardsAndOutbox, lockMemberStreak, saveMemberStreak } from "../ingest/streak-persistence.ts";
import { inRetriedTransaction } from "../transaction.ts";
import { EngineError } from "../engine-error.ts";

export type MilestonePolicy = "NONE" | "RECORD" | "GRANT";

export interface ImportRequest {
  readonly tenantId: string;
  readonly activities: readonly RecordActivityInput[];
  readonly milestonePolicy: MilestonePolicy;
  readonly emitEvents: boolean;
}

export interface ImportedStreak {
  readonly memberExternalId: string;
  readonly definitionId: string;
  readonly state: MemberStreakState;
  readonly milestonesReached: number;
}

export interface ImportResult {
  readonly imported: number;
  readonly duplicates: number;
  readonly notApplied: number;
  readonly streaks: readonly ImportedStreak[];
}

/**
 * Deadlocks with live recording (which locks streak rows in id order), serialization failures and a concurrent
 * creation of one of its new members (isNewMemberRace) run it again.
 */
const MAX_ATTEMPTS = 5;

interface MemberRow {
  id: string;
  external_id: string;
  time_zone: string | null;
}

async function upsertMembers(client: PoolClient, tenantId: string, activities: readonly RecordActivityInput[]): Promise<Map<string, MemberRow>> {
  const externalIds = [...new Set(activities.map((a) => a.memberExternalId))].sort();
  // Inline profiles first, in request order (each merges over the previous, as recording would).
  for (const a of activities) {
    const p = a.profile;
    if (!p) continue;
    await client.query(
      `insert into member (id, tenant_id, external_id, first_name, last_name, email, phone, time_zone, locale, points_balance, created_at, updated_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, now(), now())
       ${MERGE_INLINE_PROFILE}`,
      [memberIdFor(tenantId, a.memberExternalId), tenantId, a.memberExternalId, p.firstName ?? null, p.lastName ?? null, p.email ?? null, p.phone ?? null, p.timeZone ?? null, p.locale ?? null],
    );
  }
  await client.query(
    `insert into member (id, tenant_id, external_id, points_balance, created_at, updated_at)
     select x.id, $1, x.external_id, 0, now(), now() from unnest($2::text[], $3::uuid[]) with ordinality as x(external_id, id, n) order by x.n
     ${IF_MEMBER_ABSENT}`,
    [tenantId, externalIds, externalIds.map((x) => memberIdFor(tenantId, x))],
  );
  const { rows } = await client.query<MemberRow>("select id, external_id, time_zone from member where tenant_id = $1 and external_id = any($2::text[])", [tenantId, externalIds]);
  return new Map(rows.map((r) => [r.external_id, r]));
}

/** The rewards a policy writes for the milestones an import reached. */
function rewardsFor(policy: MilestonePolicy, def: CatalogDefinition, owner: Parameters<typeof planRewards>[1], effects: readonly StreakEffect[], now: number): PlannedReward[] {
  // Team definitions reward the team's milestones to its members, never a member's own (src/engine/teams/team-streaks.ts).
  if (policy === "NONE" || teamRuleOf(def) !== null) return [];
  const planned = planRewards(def, owner, effects, now);
  if (policy === "GRANT") return planned;
  // RECORD: earned when the history reached it and fulfilled elsewhere; nothing to claim, issue or run.
  const earnedAt = new Map(effects.flatMap((e) => (e.type === "streak.milestone_reached" ? [[`${e.threshold}:${e.cycle}:${e.occurrence}`, e.earnedAt] as const] : [])));
  return planned.map((r) => ({ ...r, state: "ISSUED", claimDeadlineAt: null, issuedAt: earnedAt.get(`${r.threshold}:${r.cycle}:${r.repetition}`) ?? now, needsWorkflow: false }));
}

async function importOnce(client: PoolClient, req: ImportRequest, targets: readonly CatalogDefinition[][], now: number): Promise<ImportResult> {
  const members = await upsertMembers(client, req.tenantId, req.activities);
  const records = req.activities.map((a, i) => {
    const applied = targets[i]!.filter((def) => {
      const reason = gateReason(def, a);
      // A pause is about when the definition ran live; history is counted like the windows it falls in.
      return reason === null || reason === "DEFINITION_PAUSED";
    });
    return {
      id: randomUUID(),
      tenant_id: req.tenantId,
      member_id: members.get(a.memberExternalId)!.id,
      definition_id: "definitionId" in a.target ? a.target.definitionId : null,
      event_type: "eventType" in a.target ? a.target.eventType : null,
      applied_definition_ids: applied.map((d) => d.id),
      occurred_at: new Date(a.occurredAt).toISOString(),
      value: a.value ?? null,
      distinct_key: a.distinctKey ?? null,
      unique_identifier: a.uniqueIdentifier,
      platform: a.platform ?? null,
      metadata: a.metadata,
    };
  });
  const inserted = await client.query<{ id: string; member_id: string; applied_definition_ids: string[] }>(
    `insert into activity (id, tenant_id, member_id, definition_id, event_type, applied_definition_ids, occurred_at, value, distinct_key,
       unique_identifier, platform, metadata, recorded_at, imported)
     select x.id, x.tenant_id, x.member_id, x.definition_id, x.event_type, x.applied_definition_ids, x.occurred_at, x.value, x.distinct_key,
            x.unique_identifier, x.platform, x.metadata, now(), true
       from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, member_id uuid, definition_id uuid, event_type varchar,
         applied_definition_ids text[], occurred_at timestamptz, value double precision, distinct_key varchar, unique_identifier varchar,
         platform varchar, metadata jsonb)
     returning id, member_id, applied_definition_ids`,
    [JSON.stringify(records)],
  );

  // The member streaks the new activities reach, each recomputed once, in (member, definition) order.
  const definitions = new Map(targets.flat().map((d) => [d.id, d]));
  const byMemberId = new Map([...members.values()].map((m) => [m.id, m]));
  const pairs = new Map<string, { member: MemberRow; def: CatalogDefinition }>();
  for (const row of inserted.rows) {
    for (const defId of row.applied_definition_ids) pairs.set(`${row.member_id}:${defId}`, { member: byMemberId.get(row.member_id)!, def: definitions.get(defId)! });
  }
  const ordered = [...pairs.values()].sort((a, b) => a.member.external_id.localeCompare(b.member.external_id) || (a.def.id < b.def.id ? -1 : a.def.id > b.def.id ? 1 : 0));

  const streaks: ImportedStreak[] = [];
  for (const { member, def } of ordered) {
    const opts = { pausedIntervals: def.pauses };
    const row = await lockMemberStreak(client, req.tenantId, member.id, def);
    const history = await client.query<{ id: string; occurred_at: Date; value: number | null; distinct_key: string | null }>(
      `select id, occurred_at, value, distinct_key from activity
        where tenant_id = $1 and member_id = $2 and $3 = any(applied_definition_ids) order by occurred_at, id`,
      [req.tenantId, member.id, def.id],
    );
    const activities: DomainActivity[] = history.rows.map((a) => ({
      id: a.id, occurredAt: a.occurred_at.getTime(), value: a.value ?? undefined, distinctKey: a.distinct_key ?? undefined, memberTimezone: member.time_zone,
    }));
    const imported = new Set(inserted.rows.map((r) => r.id));
    const kept = history.rows.filter((a) => !imported.has(a.id)).length;
    if (kept < row.state.activityCount) {
      throw new EngineError(
        "FAILED_PRECONDITION",
        "HISTORY_EXPIRED",
        `member ${member.external_id} has ${row.state.activityCount - kept} applied activities of definition ${def.id} removed by retention: a recomputation would miss them`,
        { member_external_id: member.external_id, definition_id: def.id },
      );
    }
    const before = advance(def.rules, row.state, now, opts).state;
    const next = recompute(def.rules, activities, now, opts);
    const effects = diffEffects(def.rules, before, next);
    const owner = { tenantId: req.tenantId, memberId: member.id, memberStreakId: row.id, activityId: null };
    const rewards = rewardsFor(req.milestonePolicy, def, owner, effects, now);
    await saveMemberStreak(client, row.id, member.id, def, next, now);
    await insertRewardsAndOutbox(client, rewards);
    if (req.emitEvents) await insertEvents(client, eventsForEffects({ ...owner, memberExternalId: member.external_id, definitionId: def.id }, effects, rewards, now));
    streaks.push({ memberExternalId: member.external_id, definitionId: def.id, state: next, milestonesReached: effects.filter((e) => e.type === "streak.milestone_reached").length });
  }
  const notApplied = inserted.rows.filter((r) => r.applied_definition_ids.length === 0).length;
  return { imported: inserted.rows.length, duplicates: records.length - inserted.rows.length, notApplied, streaks };
}

export async function importActivities(deps: { pool: Pool; catalog: DefinitionCatalog; now: () => number }, req: ImportRequest): Promise<ImportResult> {
  // Everything that can refuse the request is checked before anything is written.
  const targets: CatalogDefinition[][] = [];
  for (const a of req.activities) targets.push(await resolveTargets(deps.catalog, a));
  return inRetriedTransaction(deps.pool, (client) => importOnce(client, req, targets, deps.now()), { attempts: MAX_ATTEMPTS, alsoRetry: isNewMemberRace });
}
