// Initial schema. Written once from the entity metadata and committed; test/db/schema.test.ts checks that migrations
// and entities never drift apart.
import { Migration } from "@mikro-orm/migrations";

export class Migration0001Initial extends Migration {
  override name = "0001_initial";

  override up(): void {
    this.addSql("create table \"activity\" (\"id\" uuid not null, \"tenant_id\" uuid not null, \"member_id\" uuid not null, \"definition_id\" uuid null, \"event_type\" varchar(128) null, \"applied_definition_ids\" text[] not null default '{}', \"occurred_at\" timestamptz not null, \"value\" double precision null, \"distinct_key\" varchar(256) null, \"unique_identifier\" varchar(256) not null, \"platform\" varchar(64) null, \"metadata\" jsonb not null default '{}', \"recorded_at\" timestamptz not null, primary key (\"id\"));");
    this.addSql("create index \"activity_tenant_id_member_id_occurred_at_index\" on \"activity\" (\"tenant_id\", \"member_id\", \"occurred_at\");");
    this.addSql("alter table \"activity\" add constraint \"activity_idempotency_key\" unique (\"tenant_id\", \"member_id\", \"unique_identifier\");");
    this.addSql("create table \"api_key\" (\"id\" uuid not null, \"tenant_id\" uuid not null, \"key_id\" varchar(64) not null, \"secret_hash\" varchar(256) not null, \"role\" varchar(16) not null, \"name\" varchar(256) not null default '', \"created_at\" timestamptz not null, \"revoked_at\" timestamptz null, primary key (\"id\"));");
    this.addSql("create index \"api_key_tenant_id_index\" on \"api_key\" (\"tenant_id\");");
    this.addSql("alter table \"api_key\" add constraint \"api_key_key_id_unique\" unique (\"key_id\");");
    this.addSql("create table \"member\" (\"id\" uuid not null, \"tenant_id\" uuid not null, \"external_id\" varchar(256) not null, \"first_name\" varchar(256) null, \"last_name\" varchar(256) null, \"email\" varchar(320) null, \"phone\" varchar(16) null, \"time_zone\" varchar(64) null, \"locale\" varchar(35) null, \"points_balance\" double precision not null default 0, \"created_at\" timestamptz not null, \"updated_at\" timestamptz not null, primary key (\"id\"));");
    this.addSql("alter table \"member\" add constraint \"member_tenant_id_external_id_unique\" unique (\"tenant_id\", \"external_id\");");
    this.addSql("create table \"member_streak\" (\"id\" uuid not null, \"tenant_id\" uuid not null, \"member_id\" uuid not null, \"definition_id\" uuid not null, \"status\" varchar(16) not null, \"current_count\" int not null default 0, \"longest_count\" int not null default 0, \"state\" jsonb not null, \"window_close_at\" timestamptz null, \"at_risk_at\" timestamptz null, \"break_at\" timestamptz null, \"at_risk_notified_window\" varchar(64) null, \"last_activity_at\" timestamptz null, \"version\" int not null default 1, \"created_at\" timestamptz not null, \"updated_at\" timestamptz not null, primary key (\"id\"));");
    this.addSql("create index \"member_streak_break_sweep\" on \"member_streak\" (\"definition_id\", \"break_at\");");
    this.addSql("create index \"member_streak_at_risk_sweep\" on \"member_streak\" (\"definition_id\", \"at_risk_at\");");
    this.addSql("alter table \"member_streak\" add constraint \"member_streak_tenant_id_member_id_definition_id_unique\" unique (\"tenant_id\", \"member_id\", \"definition_id\");");
    this.addSql("create table \"outbox_message\" (\"id\" bigserial primary key, \"tenant_id\" uuid not null, \"kind\" varchar(64) not null, \"dedupe_key\" varchar(256) not null, \"payload\" jsonb not null, \"created_at\" timestamptz not null, \"relayed_at\" timestamptz null, \"attempts\" int not null default 0, \"last_error\" text null);");
    this.addSql("create index \"outbox_pending\" on \"outbox_message\" (\"relayed_at\", \"id\");");
    this.addSql("alter table \"outbox_message\" add constraint \"outbox_message_dedupe_key_unique\" unique (\"dedupe_key\");");
    this.addSql("create table \"reward\" (\"id\" uuid not null, \"tenant_id\" uuid not null, \"member_id\" uuid not null, \"definition_id\" uuid not null, \"threshold\" int not null, \"cycle\" int not null default 0, \"repetition\" int not null default 0, \"streak_count\" int not null default 0, \"multiplier\" double precision not null default 1, \"activity_id\" uuid null, \"kind\" varchar(16) not null, \"name\" varchar(256) not null default '', \"value\" varchar(256) not null default '', \"points\" double precision not null default 0, \"state\" varchar(16) not null, \"mode\" varchar(16) not null, \"coupon_code\" varchar(256) null, \"issued_at\" timestamptz null, \"expiry_at\" timestamptz null, \"claim_deadline_at\" timestamptz null, \"claimed_at\" timestamptz null, \"failure_reason\" text null, \"attempts\" int not null default 0, \"created_at\" timestamptz not null, \"updated_at\" timestamptz not null, primary key (\"id\"));");
    this.addSql("create index \"reward_tenant_id_member_id_state_index\" on \"reward\" (\"tenant_id\", \"member_id\", \"state\");");
    this.addSql("alter table \"reward\" add constraint \"reward_grant_once\" unique (\"tenant_id\", \"member_id\", \"definition_id\", \"threshold\", \"cycle\", \"repetition\");");
    this.addSql("create table \"streak_definition\" (\"id\" uuid not null, \"tenant_id\" uuid not null, \"name\" varchar(256) not null, \"description\" varchar(1024) not null default '', \"state\" varchar(16) not null, \"event_types\" text[] not null default '{}', \"spec\" jsonb not null, \"start_at\" timestamptz null, \"end_at\" timestamptz null, \"pauses\" jsonb not null default '[]', \"version\" int not null default 1, \"created_at\" timestamptz not null, \"updated_at\" timestamptz not null, primary key (\"id\"));");
    this.addSql("create index \"streak_definition_tenant_id_state_index\" on \"streak_definition\" (\"tenant_id\", \"state\");");
    this.addSql("create table \"streak_event\" (\"id\" bigserial primary key, \"tenant_id\" uuid not null, \"type\" varchar(32) not null, \"member_id\" uuid null, \"definition_id\" uuid null, \"dedupe_key\" varchar(256) not null, \"payload\" jsonb not null, \"occurred_at\" timestamptz not null, \"created_at\" timestamptz not null);");
    this.addSql("create index \"streak_event_tenant_id_id_index\" on \"streak_event\" (\"tenant_id\", \"id\");");
    this.addSql("create index \"streak_event_tenant_id_member_id_id_index\" on \"streak_event\" (\"tenant_id\", \"member_id\", \"id\");");
    this.addSql("alter table \"streak_event\" add constraint \"streak_event_dedupe\" unique (\"tenant_id\", \"dedupe_key\");");
    this.addSql("create table \"tenant\" (\"id\" uuid not null, \"name\" varchar(256) not null, \"jwt_config\" jsonb null, \"created_at\" timestamptz not null, \"updated_at\" timestamptz not null, primary key (\"id\"));");
    this.addSql("create table \"webhook_delivery\" (\"id\" uuid not null, \"tenant_id\" uuid not null, \"subscription_id\" uuid not null, \"event_id\" bigint not null, \"status\" varchar(16) not null, \"attempts\" int not null default 0, \"last_status_code\" int null, \"last_error\" text null, \"created_at\" timestamptz not null, \"updated_at\" timestamptz not null, primary key (\"id\"));");
    this.addSql("create index \"webhook_delivery_tenant_id_subscription_id_index\" on \"webhook_delivery\" (\"tenant_id\", \"subscription_id\");");
    this.addSql("alter table \"webhook_delivery\" add constraint \"webhook_delivery_subscription_id_event_id_unique\" unique (\"subscription_id\", \"event_id\");");
    this.addSql("create table \"webhook_subscription\" (\"id\" uuid not null, \"tenant_id\" uuid not null, \"url\" varchar(2048) not null, \"event_types\" text[] not null default '{}', \"secret\" varchar(128) not null, \"created_at\" timestamptz not null, \"deleted_at\" timestamptz null, primary key (\"id\"));");
    this.addSql("create index \"webhook_subscription_tenant_id_index\" on \"webhook_subscription\" (\"tenant_id\");");
  }
}
