// Where Kindling keeps data about a member, table by table: the one map both ExportMember and EraseMember read,
// so what is exported and what is erased cannot drift apart. test/db/member-data-coverage.test.ts fails when a
// table has a column that names a member (member_id, member_streak_id, reward_id, event_id, external_id …) and no
// line here — a new table holding member data is one line: its name, the condition selecting the member's rows,
// and whether erasure deletes them (and if it keeps them, why that identifies nobody).
//
// Conditions are SQL on the table aliased `t`, with $1 the tenant id, $2 the member's UUID and $3 their external id.
// Lines are in export order (parents first); erasure deletes in the reverse order, so a condition may look its
// rows up through a parent table that still holds the member's rows.

export interface MemberDataTable {
  readonly table: string;
  /** Selects the member's rows of `t` ($1 tenant id, $2 member id, $3 external id). */
  readonly rows: string;
  /** Export order of the rows (an ORDER BY list on `t`); none when the table has no useful order. */
  readonly order?: string;
  /** `delete`, or why the rows are kept (they must identify nobody once the rest is deleted). */
  readonly erase: "delete" | { readonly retain: string };
}

/** The member's streak events: stored with their member id, or (events written without one) naming them in the payload. */
const MEMBER_EVENTS = "select e.id from streak_event e where e.tenant_id = $1 and (e.member_id = $2 or e.payload->>'user_id' = $3)";

export const MEMBER_DATA: readonly MemberDataTable[] = [
  { table: "member", rows: "t.tenant_id = $1 and t.id = $2", erase: "delete" },
  { table: "member_streak", rows: "t.tenant_id = $1 and t.member_id = $2", order: "t.created_at, t.id", erase: "delete" },
  {
    table: "member_streak_state",
    rows: "t.member_streak_id in (select s.id from member_streak s where s.tenant_id = $1 and s.member_id = $2)",
    order: "t.member_streak_id",
    erase: "delete",
  },
  // Finalised windows of the member's streaks (history): before member_streak is deleted, by their streak.
  {
    table: "streak_window",
    rows: "t.member_streak_id in (select s.id from member_streak s where s.tenant_id = $1 and s.member_id = $2)",
    order: "t.member_streak_id, t.start_at",
    erase: "delete",
  },
  { table: "activity", rows: "t.tenant_id = $1 and t.member_id = $2", order: "t.occurred_at, t.id", erase: "delete" },
  // Activities held aside while retention drops their week (migration 0016; empty between passes).
  { table: "activity_retention_hold", rows: "t.tenant_id = $1 and t.member_id = $2", order: "t.occurred_at, t.id", erase: "delete" },
  // The activity idempotency keys (migration 0016): one per stored activity, deleted with them.
  { table: "activity_key", rows: "t.tenant_id = $1 and t.member_id = $2", order: "t.recorded_at, t.unique_identifier", erase: "delete" },
  // Team streaks (migration 0014): the member's stretches on teams and their activities in open team windows. The
  // team row itself (name, the team chain keyed by window) names no member; erasure takes the member off the team.
  { table: "team_member", rows: "t.tenant_id = $1 and t.member_id = $2", order: "t.effective_from, t.team_id", erase: "delete" },
  { table: "team_member_window", rows: "t.tenant_id = $1 and t.member_id = $2", order: "t.window_end_at, t.team_id", erase: "delete" },
  { table: "reward", rows: "t.tenant_id = $1 and t.member_id = $2", order: "t.created_at, t.id", erase: "delete" },
  {
    table: "reward_code_pool_usage",
    rows: "t.tenant_id = $1 and t.reward_id in (select r.id from reward r where r.tenant_id = $1 and r.member_id = $2)",
    order: "t.created_at",
    erase: {
      retain:
        "a code handed out stays used, or the pool would hand it to someone else; once the reward row is deleted its reward_id resolves to nothing",
    },
  },
  { table: "streak_event", rows: `t.id in (${MEMBER_EVENTS})`, order: "t.id", erase: "delete" },
  // The dedupe keys of the member's events (migration 0016; they embed the member's streak and reward ids): erased
  // before the events they are found through.
  {
    table: "streak_event_key",
    rows: `t.tenant_id = $1 and t.dedupe_key in (select e.dedupe_key from streak_event e where e.tenant_id = $1 and e.id in (${MEMBER_EVENTS}))`,
    order: "t.dedupe_key",
    erase: "delete",
  },
  { table: "webhook_delivery", rows: `t.tenant_id = $1 and t.event_id in (${MEMBER_EVENTS})`, order: "t.created_at, t.id", erase: "delete" },
  {
    // Reward work not yet relayed to Temporal names the member (reward.lifecycle, reward.retry) or their reward.
    table: "outbox_message",
    rows: "t.tenant_id = $1 and (t.payload->>'memberId' = $2::text or t.payload->>'rewardId' in (select r.id::text from reward r where r.tenant_id = $1 and r.member_id = $2))",
    order: "t.id",
    erase: "delete",
  },
];

/**
 * A statement on the member's rows of one table: `verb` is what precedes `t` ("select … from", "delete from").
 * The unused CTE gives the three parameters their types, so a condition may use any of them (PostgreSQL refuses a
 * parameter it cannot type).
 */
export function memberRowsSql(entry: MemberDataTable, verb: string, tail = ""): string {
  return `with member_params as (select $1::uuid as tenant_id, $2::uuid as member_id, $3::text as external_id)
    ${verb} ${entry.table} t where ${entry.rows}${tail}`;
}

/**
 * Tables with a column whose name says "member" but that hold nothing about any one member, and why. The
 * coverage test accepts them without a line above.
 */
export const NO_MEMBER_DATA: Readonly<Record<string, string>> = {
  member_erasure_tally: "per-definition totals of erased members, with no member id (the anonymised aggregate erasure keeps)",
};
