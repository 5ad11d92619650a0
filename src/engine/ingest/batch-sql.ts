// The batched ingestor's statement texts (batch-ingestor.ts, batch-attempt.ts).
import { ACTIVITY_COLUMNS } from "./activity-ingestor.ts";
import { IF_MEMBER_ABSENT } from "../../db/member-id.ts";
import { EPOCH_MS, insertEventsSql, saveMemberStreaksSql } from "./streak-persistence.ts";
import { insertStreakWindowsSql } from "../history/streak-history.ts";
import { arrayParameter } from "./batch-message.ts";

// The batch's statement texts, built once: they are the same for every batch (only their values change), and a
// prepared statement is looked up by its text.
const CLASSIFY_SQL = `select ${ACTIVITY_COLUMNS.split(", ").map((c) => `a.${c}`).join(", ")},
            k.tenant_id as k_tenant_id, k.external_id as k_external_id, k.uid as k_uid, m.id as m_id, m.time_zone as m_time_zone
       from unnest(${arrayParameter(1, "uuid")}, ${arrayParameter(2, "text")}, ${arrayParameter(3, "text")}) as k(tenant_id, external_id, uid)
       cross join lateral (select m.id, m.time_zone from member m where m.tenant_id = k.tenant_id and m.external_id = k.external_id offset 0) m
       left join lateral (
         select a.* from activity_key ak join activity a on a.id = ak.activity_id and a.recorded_at = ak.recorded_at
          where ak.tenant_id = k.tenant_id and ak.member_id = m.id and ak.unique_identifier = k.uid offset 0
       ) a on true`;

// `offset 0` keeps NOT EXISTS a per-key index probe (a subplan) instead of an anti join, which the planner made a
// hash join over a sequential scan of `member` at a few thousand members (bench/).
const CREATE_MEMBERS_SQL = `insert into member (id, tenant_id, external_id, points_balance, created_at, updated_at)
           select k.id, k.tenant_id, k.external_id, 0, now(), now()
             from unnest(${arrayParameter(1, "uuid")}, ${arrayParameter(2, "text")}, ${arrayParameter(3, "uuid")}) with ordinality as k(tenant_id, external_id, id, n)
            where not exists (select 1 from member m where m.tenant_id = k.tenant_id and m.external_id = k.external_id offset 0)
            order by k.n
           ${IF_MEMBER_ABSENT}`;

// The profile path's member read, fenced like the streak-row locks below: each key is found by a unique-index
// probe in a LATERAL with `offset 0`, and the rows read or locked are joined by primary key.
const MEMBERS_SQL = `select m.id, m.tenant_id, m.external_id, m.time_zone
             from unnest(${arrayParameter(1, "uuid")}, ${arrayParameter(2, "text")}) as k(tenant_id, external_id)
             cross join lateral (select x.id from member x where x.tenant_id = k.tenant_id and x.external_id = k.external_id offset 0) x
             join member m on m.id = x.id`;

/**
 * Locks member-streak rows in id order, each found by unique-index probes inside one fenced LATERAL (every key
 * column bound) and joined to the rows it locks by primary key, so no plan can pair keys with rows of other
 * members. The keys are ($1 tenant, $2 member, $3 definition), the member given by `member`: its id (once
 * members are known) or its external id, looked up by a scalar subquery (the prelock, before they are).
 */
function lockStreakRowsSql(member: { readonly column: string; readonly type: string; readonly id: string }): string {
  return `select s.id, s.member_id, s.definition_id, st.state
             from unnest(${arrayParameter(1, "uuid")}, ${arrayParameter(2, member.type)}, ${arrayParameter(3, "uuid")}) as k(tenant_id, ${member.column}, definition_id)
             cross join lateral (
               select ms.id from member_streak ms
                where ms.tenant_id = k.tenant_id and ms.definition_id = k.definition_id and ms.member_id = ${member.id}
               offset 0
             ) x
             join member_streak s on s.id = x.id
             join member_streak_state st on st.member_streak_id = x.id
            order by s.id
            for update of s, st`;
}

const LOCK_STREAKS_SQL = lockStreakRowsSql({ column: "member_id", type: "uuid", id: "k.member_id" });

const PRELOCK_SQL = lockStreakRowsSql({
  column: "external_id",
  type: "text",
  id: "(select m.id from member m where m.tenant_id = k.tenant_id and m.external_id = k.external_id)",
});

const WRITE_SQL = `with ${saveMemberStreaksSql("streaks", 1)},
     new_activities as (
       insert into activity (id, tenant_id, member_id, definition_id, event_type, applied_definition_ids, occurred_at, value, distinct_key, unique_identifier, platform, metadata, recorded_at)
       select x.id, x.tenant_id, x.member_id, x.definition_id, x.event_type, x.applied_definition_ids, ${EPOCH_MS("x.occurred_at")}, x.value, x.distinct_key,
              x.unique_identifier, x.platform, coalesce(x.metadata, '{}'::jsonb), ${EPOCH_MS("x.recorded_at")}
         from jsonb_to_recordset($2::jsonb) as x(id uuid, tenant_id uuid, member_id uuid, definition_id uuid, event_type varchar,
           applied_definition_ids text[], occurred_at float8, value float8, distinct_key varchar, unique_identifier varchar, platform varchar,
           metadata jsonb, recorded_at float8, n bigint)
        order by n
       -- Only the ids: the answer's activity is what was sent, as stored (stored-values.ts); a missing id is a
       -- key stored concurrently (kindling_batch_check below).
       returning id
     ), new_rewards as (
       insert into reward (id, tenant_id, member_id, definition_id, threshold, cycle, repetition, kind, name, value, points, state, mode,
         claim_deadline_at, issued_at, streak_count, multiplier, activity_id, attempts, created_at, updated_at)
       select x.id, x.tenant_id, x.member_id, x.definition_id, x.threshold, x.cycle, x.repetition, x.kind, x.name, x.value, x.points, x.state, x.mode,
              x.claim_deadline_at, x.issued_at, x.streak_count, x.multiplier, x.activity_id, 0, x.created_at, x.created_at
         from jsonb_to_recordset($3::jsonb) as x(id uuid, tenant_id uuid, member_id uuid, definition_id uuid, threshold int, cycle int,
           repetition int, kind varchar, name varchar, value varchar, points float8, state varchar, mode varchar, claim_deadline_at timestamptz,
           issued_at timestamptz, streak_count int, multiplier float8, activity_id uuid, created_at timestamptz, n bigint)
        order by n
       on conflict on constraint reward_grant_once do nothing
       returning id, member_id, definition_id, threshold, kind, points, value, state, claim_deadline_at, created_at, activity_id
     ), new_outbox as (
       insert into outbox_message (tenant_id, kind, dedupe_key, payload, created_at, attempts)
       select x.tenant_id, x.kind, x.dedupe_key, x.payload, now(), 0
         from jsonb_to_recordset($4::jsonb) as x(reward_id uuid, tenant_id uuid, kind varchar, dedupe_key varchar, payload jsonb, n bigint)
        where x.reward_id in (select id from new_rewards)
        order by n
       on conflict (dedupe_key) do nothing
     ), new_events as (
       ${insertEventsSql(5)}
     ), new_windows as (
       ${insertStreakWindowsSql(8)}
     ), stored_rewards as (
       select r.id, r.member_id, r.definition_id, r.threshold, r.kind, r.points, r.value, r.state, r.claim_deadline_at, r.created_at,
              null::uuid as activity_id
         from jsonb_to_recordset($6::jsonb) as p(tenant_id uuid, member_id uuid, definition_id uuid)
         cross join lateral (
           select * from reward r where r.tenant_id = p.tenant_id and r.member_id = p.member_id and r.definition_id = p.definition_id offset 0
         ) r
     )
     select 'activity' as row_kind, a.id, null::uuid as r_id, null::uuid as r_member_id, null::uuid as r_definition_id, null::int as r_threshold,
            null::varchar as r_kind, null::float8 as r_points, null::varchar as r_value, null::varchar as r_state,
            null::timestamptz as r_claim_deadline_at, null::timestamptz as r_created_at, null::uuid as r_activity_id
       from new_activities a
     union all
     select 'reward', null,
            r.id, r.member_id, r.definition_id, r.threshold, r.kind, r.points, r.value, r.state, r.claim_deadline_at, r.created_at, r.activity_id
       from (select * from stored_rewards union all select * from new_rewards) r
     union all
     -- Its own branch, so it runs whatever the others return: raises KB001 unless every new activity was inserted.
     select 'check', null, ${Array.from({ length: 11 }, () => "null").join(", ")}
       from (select kindling_batch_check($7, (select count(*) from new_activities)) as ok) c`;

/**
 * The batch's statements with their parameter types, as each connection prepares them; exported so a test can
 * check how PostgreSQL plans them (every lookup an index probe, whatever the table sizes and statistics).
 */
export const BATCH_STATEMENTS = {
  createMembers: { text: CREATE_MEMBERS_SQL, types: ["uuid[]", "text[]", "uuid[]"] },
  classify: { text: CLASSIFY_SQL, types: ["uuid[]", "text[]", "text[]"] },
  prelock: { text: PRELOCK_SQL, types: ["uuid[]", "text[]", "uuid[]"] },
  write: { text: WRITE_SQL, types: ["jsonb", "jsonb", "jsonb", "jsonb", "jsonb", "jsonb", "int", "jsonb"] },
  // Batches with inline profiles (their own round trips, sent as unnamed statements).
  readMembers: { text: MEMBERS_SQL, types: ["uuid[]", "text[]"] },
  lockMembers: { text: `${MEMBERS_SQL}\n            order by m.tenant_id, m.external_id for update of m`, types: ["uuid[]", "text[]"] },
  lockStreaks: { text: LOCK_STREAKS_SQL, types: ["uuid[]", "uuid[]", "uuid[]"] },
} as const satisfies Record<string, { text: string; types: readonly string[] }>;
