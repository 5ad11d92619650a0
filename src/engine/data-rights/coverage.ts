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
  /**
   * The same rows as erasure selects them on a Citus cluster (migration 0018), when `rows` would not do there. A
   * condition on a distributed table names the member's id (its distribution column), so Citus routes the
   * statement to the member's shard; one on a coordinator table names no distributed table. Parameters: $1 the
   * tenant id, $2 the member's id, $3 the member's reward ids (uuid[]), $4 the member's event ids (bigint[]); both
   * lists read before any delete.
   */
  readonly citus?: string;
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
    // Every document carries its streak's member (migration 0018).
    citus: "t.member_id = $2",
  },
  // Finalised windows of the member's streaks (history): before member_streak is deleted, by their streak.
  {
    table: "streak_window",
    rows: "t.member_streak_id in (select s.id from member_streak s where s.tenant_id = $1 and s.member_id = $2)",
    order: "t.member_streak_id, t.start_at",
    erase: "delete",
    citus: "t.tenant_id = $1 and t.member_id = $2",
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
  // On Citus every event has its member id (migration 0018 made it not null; team events, which name members in
  // their payload only, do not run there).
  { table: "streak_event", rows: `t.id in (${MEMBER_EVENTS})`, order: "t.id", erase: "delete", citus: "t.tenant_id = $1 and t.member_id = $2" },
  // The dedupe keys of the member's events (migration 0016; they embed the member's streak and reward ids): erased
  // before the events they are found through.
  {
    table: "streak_event_key",
    rows: `t.tenant_id = $1 and t.dedupe_key in (select e.dedupe_key from streak_event e where e.tenant_id = $1 and e.id in (${MEMBER_EVENTS}))`,
    order: "t.dedupe_key",
    erase: "delete",
    // A key carries its event's member (migration 0018).
    citus: "t.tenant_id = $1 and t.member_id = $2",
  },
  {
    table: "webhook_delivery",
    rows: `t.tenant_id = $1 and t.event_id in (${MEMBER_EVENTS})`,
    order: "t.created_at, t.id",
    erase: "delete",
    citus: "t.tenant_id = $1 and t.event_id = any($4::bigint[])",
  },
  {
    // Reward work not yet relayed to Temporal names the member (reward.lifecycle, reward.retry) or their reward.
    table: "outbox_message",
    rows: "t.tenant_id = $1 and (t.payload->>'memberId' = $2::text or t.payload->>'rewardId' in (select r.id::text from reward r where r.tenant_id = $1 and r.member_id = $2))",
    order: "t.id",
    erase: "delete",
    citus: "t.tenant_id = $1 and (t.payload->>'memberId' = $2::text or t.payload->>'rewardId' = any($3::uuid[]::text[]))",
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
 * The statement on the member's rows of one table on Citus: the entry's `citus` condition (else `rows`), with only
 * the parameters it uses, renumbered in order (a parameter a statement does not use has no type, and PostgreSQL
 * refuses it). `values` are the four parameters `citus` conditions are written with.
 */
export function citusMemberRowsSql(entry: MemberDataTable, verb: string, values: readonly [tenantId: string, memberId: string, rewardIds: readonly string[], eventIds: readonly string[]]): { text: string; values: unknown[] } {
  const condition = entry.citus ?? entry.rows;
  const used = [...new Set([...condition.matchAll(/\$(\d)/g)].map((m) => Number(m[1])))].sort((a, b) => a - b);
  // `rows` means the external id by $3: a line whose `rows` uses it needs its own `citus` condition.
  if (used.some((n) => n > (entry.citus === undefined ? 2 : values.length))) throw new Error(`${entry.table}: no Citus condition for its parameters`);
  return {
    text: `${verb} ${entry.table} t where ${condition.replace(/\$(\d)/g, (_, n: string) => `$${used.indexOf(Number(n)) + 1}`)}`,
    values: used.map((n) => values[n - 1]),
  };
}

/**
 * Tables with a column whose name says "member" but that hold nothing about any one member, and why. The
 * coverage test accepts them without a line above.
 */
export const NO_MEMBER_DATA: Readonly<Record<string, string>> = {
  member_erasure_tally: "per-definition totals of erased members, with no member id (the anonymised aggregate erasure keeps)",
};
