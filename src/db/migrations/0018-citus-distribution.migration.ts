// Citus (issue 18; docs/scaling.md "Beyond one PostgreSQL: Citus"): on a Citus coordinator the member-scoped
// tables are distributed by member and co-located, the tenant-scoped ones become reference tables; on plain
// PostgreSQL only the harmless part below runs, keeping every row.
//
// Everywhere:
// - member_streak_state gains member_id (its streak's member), so the document lives on its member's shard and a
//   join `st.member_id = s.member_id` is a co-located join; writers set it.
// - streak_event_key gains member_id, written by its trigger (the nil UUID for an event without a member), so the
//   event dedupe key can hold on a shard.
//
// On Citus only (the `citus` extension is installed in this database):
// - distributed by member, co-located with member(id): member_streak, member_streak_state, activity (with its
//   week partitions), activity_key, activity_retention_hold, reward, streak_event (and partitions),
//   streak_event_key, streak_window. Citus refuses a primary or unique key without the distribution column, so
//   the keys change shape:
//   - primary keys `id` (or `(id, time)`) become `(member_id, id)` (`(member_id, id, time)`): ids are random UUIDs
//     (events: one sequence), so nothing they kept unique is lost;
//   - member's `(tenant_id, external_id)` becomes `(id, tenant_id, external_id)` under the same constraint name:
//     every writer derives a new member's id from `(tenant_id, external_id)` (UUIDv5, src/db/member-id.ts), so two
//     rows with one external id would share an id and the key still refuses the second. Writers name the key by
//     its constraint (`on conflict on constraint`), so one statement serves both shapes;
//   - streak_event_key `(tenant_id, dedupe_key)` becomes `(tenant_id, member_id, dedupe_key)`: every dedupe key
//     embeds its member streak's id, so a key belongs to one member and the meaning is unchanged;
//   - the activity idempotency key `(tenant_id, member_id, unique_identifier)`, member_streak's
//     `(tenant_id, member_id, definition_id)` and reward_grant_once already hold the member and stay.
// - reference tables (a copy on every node, joined locally): tenant, api_key, streak_definition,
//   tenant_browser_access, webhook_subscription, tenant_leaderboard_settings, tenant_retention,
//   event_retention_floor.
// - the outbox stays on the coordinator (its dedupe key is global and its relay polls one table) as a Citus local
//   table: a plain table's write commits after the workers' (Citus commits a transaction that wrote one shard
//   with a plain COMMIT there first), so a crash between the two would keep a reward and lose the outbox row that
//   starts its workflow; a write to a Citus local table makes the transaction commit with two-phase commit on
//   every node it wrote, so the reward and its outbox row commit together.
// - everything else stays a plain table on the coordinator: webhook deliveries, team tables, statistics, tallies.
// - the key triggers stay: with `citus.enable_unsafe_triggers` a trigger runs on the shard, and the key row it
//   writes belongs to the same member, so it lands on a co-located shard of the same node.
import { Migration } from "@mikro-orm/migrations";

const NIL = "00000000-0000-0000-0000-000000000000";

const STREAK_EVENT_KEY_FUNCTION = `create or replace function kindling_streak_event_key() returns trigger language plpgsql as $$
  begin
    insert into streak_event_key (tenant_id, member_id, dedupe_key, event_id)
    values (new.tenant_id, coalesce(new.member_id, '${NIL}'), new.dedupe_key, new.id) on conflict do nothing;
    if found then return new; end if;
    perform 1 from streak_event_key k
      where k.tenant_id = new.tenant_id and k.member_id = coalesce(new.member_id, '${NIL}') and k.dedupe_key = new.dedupe_key and k.event_id = new.id;
    if found then return new; end if;
    return null;
  end $$;`;

/** Tables distributed by member, with the distribution column and the primary key they get on Citus. */
const DISTRIBUTED: readonly { table: string; column: string; pkey?: readonly string[] }[] = [
  { table: "member", column: "id" },
  { table: "member_streak", column: "member_id", pkey: ["member_id", "id"] },
  { table: "member_streak_state", column: "member_id", pkey: ["member_id", "member_streak_id"] },
  { table: "activity", column: "member_id", pkey: ["member_id", "id", "recorded_at"] },
  { table: "activity_key", column: "member_id" },
  { table: "activity_retention_hold", column: "member_id", pkey: ["member_id", "id", "recorded_at"] },
  { table: "reward", column: "member_id", pkey: ["member_id", "id"] },
  { table: "streak_event", column: "member_id", pkey: ["member_id", "id", "created_at"] },
  { table: "streak_event_key", column: "member_id", pkey: ["tenant_id", "member_id", "dedupe_key"] },
  { table: "streak_window", column: "member_id", pkey: ["member_id", "member_streak_id", "start_at"] },
];

const REFERENCE = [
  "tenant", "api_key", "streak_definition", "tenant_browser_access", "webhook_subscription", "tenant_leaderboard_settings", "tenant_retention",
  "event_retention_floor",
];

/** The Citus part, one statement per line item (run only when the extension is installed). */
export function citusDistributionSql(): string[] {
  const sql: string[] = [
    // The key triggers run on the shards (see above); the setting is checked when a table with triggers is
    // distributed and when a trigger is created on one, so the database keeps it for later migrations too.
    "set local citus.enable_unsafe_triggers to on",
    `do $$ begin execute format('alter database %I set citus.enable_unsafe_triggers to on', current_database()); end $$`,
    // Each distribution below changes a table this transaction already wrote: run shard commands one connection at a
    // time (Citus refuses parallel ones after local writes in the same transaction).
    "set local citus.multi_shard_modify_mode to 'sequential'",
    `alter table "member" drop constraint "member_tenant_id_external_id_unique"`,
    `alter table "member" add constraint "member_tenant_id_external_id_unique" unique ("id", "tenant_id", "external_id")`,
    `alter table "streak_event" alter column "member_id" set not null`,
  ];
  for (const d of DISTRIBUTED) {
    if (!d.pkey) continue;
    sql.push(`alter table "${d.table}" drop constraint "${d.table}_pkey"`);
    sql.push(`alter table "${d.table}" add constraint "${d.table}_pkey" primary key (${d.pkey.map((c) => `"${c}"`).join(", ")})`);
  }
  for (const t of REFERENCE) sql.push(`select create_reference_table('${t}')`);
  sql.push(`select citus_add_local_table_to_metadata('outbox_message')`);
  sql.push(`select create_distributed_table('member', 'id')`);
  for (const d of DISTRIBUTED.slice(1)) sql.push(`select create_distributed_table('${d.table}', '${d.column}', colocate_with => 'member')`);
  return sql;
}

export class Migration0018CitusDistribution extends Migration {
  override name = "0018_citus_distribution";

  override async up(): Promise<void> {
    this.addSql(`alter table "member_streak_state" add column "member_id" uuid`);
    this.addSql(`update "member_streak_state" st set "member_id" = s."member_id" from "member_streak" s where s."id" = st."member_streak_id"`);
    this.addSql(`alter table "member_streak_state" alter column "member_id" set not null`);
    this.addSql(`alter table "streak_event_key" add column "member_id" uuid`);
    this.addSql(`update "streak_event_key" k set "member_id" = coalesce(e."member_id", '${NIL}') from "streak_event" e where e."id" = k."event_id"`);
    this.addSql(`update "streak_event_key" set "member_id" = '${NIL}' where "member_id" is null`);
    this.addSql(`alter table "streak_event_key" alter column "member_id" set not null`);
    this.addSql(STREAK_EVENT_KEY_FUNCTION);
    const citus = await this.execute(`select exists (select 1 from pg_extension where extname = 'citus') as citus`);
    if (citus[0]?.citus === true) for (const s of citusDistributionSql()) this.addSql(s);
  }
}
