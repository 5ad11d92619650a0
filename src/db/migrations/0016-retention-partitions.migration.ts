// Retention and partitions (issue 15, item 1; src/engine/retention/retention.ts, docs/scaling.md "Retention").
//
// - activity and streak_event become range-partitioned by time, one partition a UTC week (Monday 00:00), so the
//   retention workflow drops a whole week behind the retention with one DROP TABLE instead of deleting rows:
//   activity by recorded_at (the server's clock when it was stored; an imported or late activity lands in the week
//   it was stored, never in a week already dropped), streak_event by created_at (the database's clock). Each has a
//   `_legacy` partition for everything stored before this migration and a `_default` partition for rows no week
//   holds yet (a clock ahead of the partitions created; kindling_week_partition moves them into their week when it
//   is created). The primary keys become (id, time): PostgreSQL requires the partition key in every unique index.
// - The idempotency keys therefore move to two small unpartitioned tables, written first by a BEFORE INSERT
//   trigger on the partitioned table, which skips the row (as `on conflict do nothing` did) when its key is
//   already stored, committed or in flight in another transaction (the key insert waits for it, as the unique
//   index did):
//   - activity_key (tenant_id, member_id, unique_identifier) → the activity's id and recorded_at, so a duplicate's
//     stored activity is found by the key's primary key and then the activity's (one partition);
//   - streak_event_key (tenant_id, dedupe_key) → the event's id.
//   A key lives exactly as long as its row: retention deletes both. A row may come back under its own key (the
//   same id), which is how rows move between partitions.
// - streak_event.public_id stays indexed but is no longer enforced unique (gen_random_uuid: 122 random bits; since
//   migration 0020 time-ordered, 74 random bits per millisecond).
// - tenant_retention: a tenant's own retention in days, overriding KINDLING_RETENTION_DAYS.
// - event_retention_floor: per tenant (and for all tenants, the nil UUID) the highest event id retention has
//   removed; a WatchEvents / ListEvents cursor below it is CURSOR_EXPIRED.
// webhook_delivery stays one table: its rows go with their events (deleted by event id in the same pass).
import { Migration } from "@mikro-orm/migrations";

/** The weekly partitions' SQL function, also called by the retention workflow to create weeks ahead. */
const WEEK_PARTITION_FUNCTION = `create or replace function kindling_week_partition(parent text, week_start timestamptz) returns boolean
  language plpgsql as $$
  declare
    part text := parent || '_p' || to_char(week_start at time zone 'UTC', 'YYYYMMDD');
    week_end timestamptz := week_start + interval '7 days';
    key_column text := case parent when 'activity' then 'recorded_at' when 'streak_event' then 'created_at' end;
  begin
    if key_column is null then raise exception 'kindling_week_partition: % is not partitioned by week', parent; end if;
    if week_start <> date_trunc('week', week_start, 'UTC') then raise exception 'kindling_week_partition: % is not a UTC Monday', week_start; end if;
    if to_regclass(part) is not null then return false; end if;
    -- Rows the default partition holds for this week move into it (the key triggers let a row in again under its
    -- own key). The parent is locked first, so the move cannot wait for a lock behind writers that wait for it.
    execute format('lock table %I in access exclusive mode', parent);
    execute format('create temporary table kindling_moving (like %I) on commit drop', parent);
    execute format('with m as (delete from %I where %I >= %L and %I < %L returning *) insert into kindling_moving select * from m',
      parent || '_default', key_column, week_start, key_column, week_end);
    execute format('create table %I partition of %I for values from (%L) to (%L)', part, parent, week_start, week_end);
    execute format('insert into %I select * from kindling_moving', part);
    drop table kindling_moving;
    return true;
  end $$;`;

// The key triggers: a row whose key is stored is skipped (as `on conflict do nothing` skipped it), unless the
// key is its own (the same activity or event moved between partitions by retention or a new week).
const ACTIVITY_KEY_FUNCTION = `create or replace function kindling_activity_key() returns trigger language plpgsql as $$
  begin
    insert into activity_key (tenant_id, member_id, unique_identifier, activity_id, recorded_at)
    values (new.tenant_id, new.member_id, new.unique_identifier, new.id, new.recorded_at)
    on conflict do nothing;
    if found then return new; end if;
    perform 1 from activity_key k
      where k.tenant_id = new.tenant_id and k.member_id = new.member_id and k.unique_identifier = new.unique_identifier and k.activity_id = new.id;
    if found then return new; end if;
    return null;
  end $$;`;

const STREAK_EVENT_KEY_FUNCTION = `create or replace function kindling_streak_event_key() returns trigger language plpgsql as $$
  begin
    insert into streak_event_key (tenant_id, dedupe_key, event_id) values (new.tenant_id, new.dedupe_key, new.id) on conflict do nothing;
    if found then return new; end if;
    perform 1 from streak_event_key k where k.tenant_id = new.tenant_id and k.dedupe_key = new.dedupe_key and k.event_id = new.id;
    if found then return new; end if;
    return null;
  end $$;`;

export const ACTIVITY_KEY_TRIGGER = `create trigger "activity_key" before insert on "activity" for each row execute function kindling_activity_key()`;
export const STREAK_EVENT_KEY_TRIGGER = `create trigger "streak_event_key" before insert on "streak_event" for each row execute function kindling_streak_event_key()`;

export class Migration0016RetentionPartitions extends Migration {
  override name = "0016_retention_partitions";

  override up(): void {
    this.addSql(`create table "activity_key" (
      "tenant_id" uuid not null,
      "member_id" uuid not null,
      "unique_identifier" varchar(256) not null,
      "activity_id" uuid not null,
      "recorded_at" timestamptz not null,
      constraint "activity_key_pkey" primary key ("tenant_id", "member_id", "unique_identifier")
    );`);
    this.addSql(`create table "streak_event_key" (
      "tenant_id" uuid not null,
      "dedupe_key" varchar(256) not null,
      "event_id" bigint not null,
      constraint "streak_event_key_pkey" primary key ("tenant_id", "dedupe_key")
    );`);
    this.addSql(`create table "tenant_retention" (
      "tenant_id" uuid not null,
      "retention_days" int not null,
      "updated_at" timestamptz not null,
      constraint "tenant_retention_pkey" primary key ("tenant_id")
    );`);
    this.addSql(`create table "event_retention_floor" (
      "tenant_id" uuid not null,
      "deleted_through" bigint not null,
      "updated_at" timestamptz not null,
      constraint "event_retention_floor_pkey" primary key ("tenant_id")
    );`);

    // activity: a partitioned twin, its partitions, the rows, then the names and indexes of the old table.
    this.addSql(`create table "activity_next" (like "activity" including defaults) partition by range ("recorded_at");`);
    this.addSql(`create table "activity_legacy" partition of "activity_next" for values from (minvalue) to ((date_trunc('week', now(), 'UTC')));`);
    this.addSql(`create table "activity_default" partition of "activity_next" default;`);
    this.addSql(`insert into "activity_next" select * from "activity";`);
    this.addSql(`insert into "activity_key" (tenant_id, member_id, unique_identifier, activity_id, recorded_at) select tenant_id, member_id, unique_identifier, id, recorded_at from "activity";`);
    this.addSql(`drop table "activity";`);
    this.addSql(`alter table "activity_next" rename to "activity";`);
    this.addSql(`alter table "activity" add constraint "activity_pkey" primary key ("id", "recorded_at");`);
    this.addSql(`create index "activity_tenant_id_member_id_occurred_at_index" on "activity" ("tenant_id", "member_id", "occurred_at");`);
    this.addSql(ACTIVITY_KEY_FUNCTION);
    this.addSql(ACTIVITY_KEY_TRIGGER);
    // Activities of a week being dropped that a member's state still needs wait here until the week is gone, then
    // go back into activity (the default partition) under their own keys (src/engine/retention/retention.ts).
    this.addSql(`create table "activity_retention_hold" (like "activity" including defaults);`);
    this.addSql(`alter table "activity_retention_hold" add constraint "activity_retention_hold_pkey" primary key ("id", "recorded_at");`);

    // streak_event: the same, keeping the id sequence (the stream positions go on from where they were).
    this.addSql(`alter sequence "streak_event_id_seq" owned by none;`);
    this.addSql(`create table "streak_event_next" (like "streak_event" including defaults) partition by range ("created_at");`);
    this.addSql(`create table "streak_event_legacy" partition of "streak_event_next" for values from (minvalue) to ((date_trunc('week', now(), 'UTC')));`);
    this.addSql(`create table "streak_event_default" partition of "streak_event_next" default;`);
    this.addSql(`insert into "streak_event_next" select * from "streak_event";`);
    this.addSql(`insert into "streak_event_key" (tenant_id, dedupe_key, event_id) select tenant_id, dedupe_key, id from "streak_event";`);
    this.addSql(`drop table "streak_event";`);
    this.addSql(`alter table "streak_event_next" rename to "streak_event";`);
    this.addSql(`alter sequence "streak_event_id_seq" owned by "streak_event"."id";`);
    this.addSql(`alter table "streak_event" add constraint "streak_event_pkey" primary key ("id", "created_at");`);
    this.addSql(`create index "streak_event_tenant_id_id_index" on "streak_event" ("tenant_id", "id");`);
    this.addSql(`create index "streak_event_tenant_id_member_id_id_index" on "streak_event" ("tenant_id", "member_id", "id");`);
    this.addSql(`create index "streak_event_public_id_index" on "streak_event" ("public_id");`);
    this.addSql(`create index "streak_event_definition_time" on "streak_event" ("definition_id", "occurred_at");`);
    this.addSql(STREAK_EVENT_KEY_FUNCTION);
    this.addSql(STREAK_EVENT_KEY_TRIGGER);

    // The current week and the next four exist from the start; the retention workflow keeps weeks ahead.
    this.addSql(WEEK_PARTITION_FUNCTION);
    this.addSql(`select kindling_week_partition(t, date_trunc('week', now(), 'UTC') + w * interval '7 days')
                   from unnest(array['activity', 'streak_event']) t cross join generate_series(0, 4) w;`);
  }
}
