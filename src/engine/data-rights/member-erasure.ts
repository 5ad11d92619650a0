// EraseMember: deletes every row the coverage map lists for the member (but the ones it keeps, and says why), in
// one transaction, after adding the member's counts to the tenant's anonymised totals (member_erasure_tally), and
// enqueues the cancellation of the member's reward workflows in the same transaction (the outbox relay cancels
// them in Temporal, so an outage there delays it and loses nothing).
//
// Concurrency: the member row, then the member's streak rows (in id order, as recording activity locks them) are
// locked first. An activity recorded concurrently for a streak the member already has either committed before
// (and is erased with the rest) or waits for the erasure and then finds neither the streak nor the member, and
// creates a new member for the external id.
import type { Pool } from "pg";
import { enqueueOutbox } from "../outbox.ts";
import { inTransaction } from "../transaction.ts";
import { MEMBER_DATA } from "./coverage.ts";

export interface Erasure {
  /** False when the tenant had no such member (never had, or already erased): nothing changed. */
  readonly erased: boolean;
  /** Rows deleted per table, in deletion order. */
  readonly tables: readonly { table: string; deleted: number }[];
  /** Reward workflows asked to stop. */
  readonly cancelledRewards: number;
}

export async function eraseMember(pool: Pool, tenantId: string, externalId: string): Promise<Erasure> {
  return inTransaction(pool, async (client) => {
    const found = await client.query<{ id: string }>("select id from member where tenant_id = $1 and external_id = $2 for update", [tenantId, externalId]);
    const memberId = found.rows[0]?.id;
    if (memberId === undefined) return { erased: false, tables: [], cancelledRewards: 0 };
    const params = [tenantId, memberId, externalId];
    await client.query("select id from member_streak where tenant_id = $1 and member_id = $2 order by id for update", [tenantId, memberId]);

    // The aggregate kept: per definition, one member, their activities and rewards. No member id survives in it.
    await client.query(
      `insert into member_erasure_tally (tenant_id, definition_id, erased_members, erased_activities, erased_rewards, erased_reward_points, updated_at)
       select $1, d.definition_id, sum(d.members), sum(d.activities), sum(d.rewards), sum(d.points), now()
         from (select s.definition_id, 1 as members, 0 as activities, 0 as rewards, 0::double precision as points
                 from member_streak s where s.tenant_id = $1 and s.member_id = $2
               union all
               select unnest(a.applied_definition_ids)::uuid, 0, 1, 0, 0 from activity a where a.tenant_id = $1 and a.member_id = $2
               union all
               select r.definition_id, 0, 0, 1, r.points * r.multiplier from reward r where r.tenant_id = $1 and r.member_id = $2) d
        group by d.definition_id
       on conflict (tenant_id, definition_id) do update set
         erased_members = member_erasure_tally.erased_members + excluded.erased_members,
         erased_activities = member_erasure_tally.erased_activities + excluded.erased_activities,
         erased_rewards = member_erasure_tally.erased_rewards + excluded.erased_rewards,
         erased_reward_points = member_erasure_tally.erased_reward_points + excluded.erased_reward_points,
         updated_at = now()`,
      params,
    );

    const rewards = await client.query<{ id: string; attempts: number }>("select id, attempts from reward where tenant_id = $1 and member_id = $2 order by id", [tenantId, memberId]);

    const tables: { table: string; deleted: number }[] = [];
    for (const entry of [...MEMBER_DATA].reverse()) {
      if (entry.erase !== "delete") continue;
      // The table name and conditions come from the coverage map (code), never from the request.
      const { rowCount } = await client.query(`delete from ${entry.table} t where ${entry.rows}`, params);
      tables.push({ table: entry.table, deleted: rowCount ?? 0 });
    }

    // After the outbox rows about the member are gone: these name only reward ids that no longer resolve.
    for (const reward of rewards.rows) {
      await enqueueOutbox(client, tenantId, "reward.cancel", `reward:${reward.id}:cancel`, { tenantId, rewardId: reward.id, attempts: reward.attempts });
    }
    return { erased: true, tables, cancelledRewards: rewards.rows.length };
  });
}
