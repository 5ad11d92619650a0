// EraseMember: deletes every row the coverage map lists for the member (but the ones it keeps, and says why), in
// one transaction, after adding the member's counts to the tenant's anonymised totals (member_erasure_tally), and
// enqueues the cancellation of the member's reward workflows in the same transaction (the outbox relay cancels
// them in Temporal, so an outage there delays it and loses nothing).
//
// Concurrency: the member row, then the member's streak rows (in id order, as recording activity locks them) are
// locked first, so recording already under way for the member commits before the erasure reads. Recording that
// read the member's id but had not locked yet can still write under that id after the erasure commits; a second
// pass, once every transaction open at the commit has ended, deletes what it wrote. Recording that starts after
// the commit finds no member and creates a new one for the external id.
//
// On Citus (`citus`; migration 0018) the same passes run one member's shard at a time: the member is locked by its
// derived id (memberIdFor), every statement on a distributed table names the member's id (the coverage map's `citus`
// conditions), and the coordinator tables are written with what was read from the shards (the tally's figures, the
// member's reward and event ids) instead of statements that join them with distributed tables, which Citus
// refuses or runs on every shard. The outbox is a Citus local table, so the transaction commits on the member's
// worker and the coordinator together (two-phase commit).
import type { Pool, PoolClient } from "pg";
import { memberIdFor } from "../../db/member-id.ts";
import { enqueueOutbox } from "../delivery/outbox.ts";
import { inRetriedTransaction } from "../transaction.ts";
import { citusMemberRowsSql, MEMBER_DATA, memberRowsSql } from "./coverage.ts";

export interface Erasure {
  /** False when the tenant had no such member (never had, or already erased): nothing changed. */
  readonly erased: boolean;
  /** Rows deleted per table, in deletion order. */
  readonly tables: readonly { table: string; deleted: number }[];
  /** Reward workflows asked to stop. */
  readonly cancelledRewards: number;
}

/** How long an erasure waits for transactions that may still write under the erased member's id. */
const SETTLE_TIMEOUT_MS = 30_000;
const SETTLE_POLL_MS = 20;

export interface ErasureOptions {
  /** The database is a Citus coordinator (src/db/database-kind.ts; default false). */
  readonly citus?: boolean;
}

interface Pass {
  readonly tables: { table: string; deleted: number }[];
  readonly rewards: number;
}

/**
 * Deletes the member's rows table by table, after adding them to the tally, and enqueues the cancellation of their
 * reward workflows. `externalId` null matches rows by member id only (the settling pass: the external id may by
 * then name a new member), and the tally then counts no member (the first pass did).
 */
async function erasePass(client: PoolClient, tenantId: string, memberId: string, externalId: string | null, citus: boolean): Promise<Pass> {
  // The aggregate kept: per definition, the member, their activities and rewards. No member id survives in it.
  const figures = `select d.definition_id, sum(d.members) as members, sum(d.activities) as activities, sum(d.rewards) as rewards, sum(d.points) as points
       from (select s.definition_id, $3::int as members, 0 as activities, 0 as rewards, 0::double precision as points
               from member_streak s where s.tenant_id = $1 and s.member_id = $2
             union all
             select unnest(a.applied_definition_ids)::uuid, 0, 1, 0, 0 from activity a where a.tenant_id = $1 and a.member_id = $2
             union all
             select r.definition_id, 0, 0, 1, r.points * r.multiplier from reward r where r.tenant_id = $1 and r.member_id = $2) d
      group by d.definition_id`;
  const addToTally = `insert into member_erasure_tally (tenant_id, definition_id, erased_members, erased_activities, erased_rewards, erased_reward_points, updated_at)`;
  const onConflict = `on conflict (tenant_id, definition_id) do update set
       erased_members = member_erasure_tally.erased_members + excluded.erased_members,
       erased_activities = member_erasure_tally.erased_activities + excluded.erased_activities,
       erased_rewards = member_erasure_tally.erased_rewards + excluded.erased_rewards,
       erased_reward_points = member_erasure_tally.erased_reward_points + excluded.erased_reward_points,
       updated_at = now()`;
  const members = externalId === null ? 0 : 1;
  // Read, then written: on Citus the figures come from the member's shard and the tally is a coordinator table, and
  // Citus plans no INSERT into one from a SELECT of the other as one statement (one more round trip elsewhere).
  const { rows } = await client.query<{ definition_id: string; members: string; activities: string; rewards: string; points: number }>(figures, [tenantId, memberId, members]);
  if (rows.length > 0) {
    await client.query(
      `${addToTally}
       select $1::uuid, f.definition_id, f.members, f.activities, f.rewards, f.points, now()
         from unnest($2::uuid[], $3::int[], $4::bigint[], $5::int[], $6::double precision[]) as f(definition_id, members, activities, rewards, points)
       ${onConflict}`,
      [tenantId, rows.map((r) => r.definition_id), rows.map((r) => r.members), rows.map((r) => r.activities), rows.map((r) => r.rewards), rows.map((r) => r.points)],
    );
  }

  const rewards = await client.query<{ id: string; attempts: number }>("select id, attempts from reward where tenant_id = $1 and member_id = $2 order by id", [tenantId, memberId]);

  // On Citus: the member's event ids, for the coordinator's rows that name them (read before the events go).
  const events = citus
    ? (await client.query<{ id: string }>("select id::text from streak_event where tenant_id = $1 and member_id = $2", [tenantId, memberId])).rows.map((r) => r.id)
    : [];

  const tables: { table: string; deleted: number }[] = [];
  for (const entry of [...MEMBER_DATA].reverse()) {
    if (entry.erase !== "delete") continue;
    // The table name and conditions come from the coverage map (code), never from the request.
    const statement = citus
      ? citusMemberRowsSql(entry, "delete from", [tenantId, memberId, rewards.rows.map((r) => r.id), events])
      : { text: memberRowsSql(entry, "delete from"), values: [tenantId, memberId, externalId] };
    const { rowCount } = await client.query(statement.text, statement.values);
    tables.push({ table: entry.table, deleted: rowCount ?? 0 });
  }

  // After the outbox rows about the member are gone: these name only reward ids that no longer resolve.
  for (const reward of rewards.rows) {
    await enqueueOutbox(client, tenantId, "reward.cancel", `reward:${reward.id}:cancel`, { tenantId, rewardId: reward.id, attempts: reward.attempts });
  }
  return { tables, rewards: rewards.rows.length };
}

/**
 * Waits until every client transaction that was open at `since` has ended (or SETTLE_TIMEOUT_MS passed; a session
 * idle in a transaction for that long is not one of Kindling's writers). PostgreSQL's activity view shows this
 * database user's sessions, which are all of Kindling's; autovacuum and other background work are left out.
 */
async function settle(pool: Pool, since: Date): Promise<void> {
  const end = Date.now() + SETTLE_TIMEOUT_MS;
  while (Date.now() < end) {
    const { rows } = await pool.query<{ open: number }>(
      `select count(*)::int as open from pg_stat_activity
        where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()
          and xact_start is not null and xact_start < $1`,
      [since],
    );
    if (rows[0]!.open === 0) return;
    await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
  }
}

/** Runs of each erasure pass at most (see eraseMember). */
const ERASE_ATTEMPTS = 5;

export async function eraseMember(pool: Pool, tenantId: string, externalId: string, options: ErasureOptions = {}): Promise<Erasure> {
  const citus = options.citus ?? false;
  // Each pass runs again if PostgreSQL chose it as a deadlock's victim (another writer, e.g. a retention page, held
  // rows of the member the pass needed while waiting for one the pass had locked): it rolled back whole, and
  // erasing is idempotent.
  const first = await inRetriedTransaction(pool, async (client) => {
    // On Citus a member's id is memberIdFor(tenant, external id) (no member there predates it): naming it routes
    // the lock to the member's shard, the only place Citus takes a row lock.
    const found = citus
      ? await client.query<{ id: string }>("select id from member where tenant_id = $1 and external_id = $2 and id = $3 for update", [tenantId, externalId, memberIdFor(tenantId, externalId)])
      : await client.query<{ id: string }>("select id from member where tenant_id = $1 and external_id = $2 for update", [tenantId, externalId]);
    const memberId = found.rows[0]?.id;
    if (memberId === undefined) return undefined;
    await client.query("select id from member_streak where tenant_id = $1 and member_id = $2 order by id for update", [tenantId, memberId]);
    return { memberId, ...(await erasePass(client, tenantId, memberId, externalId, citus)) };
  }, { attempts: ERASE_ATTEMPTS });
  if (first === undefined) return { erased: false, tables: [], cancelledRewards: 0 };

  // Recording activity reads the member's id at the start of its transaction and writes under it later. One that
  // read it before the erasure committed may still write (rows under an id no member has any more); once every
  // transaction open at the commit has ended, a second pass by member id deletes whatever they wrote.
  const committed = (await pool.query<{ at: Date }>("select clock_timestamp() as at")).rows[0]!.at;
  await settle(pool, committed);
  const second = await inRetriedTransaction(pool, (client) => erasePass(client, tenantId, first.memberId, null, citus), { attempts: ERASE_ATTEMPTS });
  const tables = first.tables.map((t, i) => ({ table: t.table, deleted: t.deleted + second.tables[i]!.deleted }));
  return { erased: true, tables, cancelledRewards: first.rewards + second.rewards };
}
