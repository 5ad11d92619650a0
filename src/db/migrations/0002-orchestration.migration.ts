// Orchestration (issue 5): what the window-close sweeps, the reward providers and the outbox relay need.
// - member_streak.break_kind / break_window_key: projections of the domain's deadlines() next to break_at, so the
//   BREAK sweep is one set-based UPDATE and writes the same streak.broken dedupe key as the domain path.
// - outbox_message.next_attempt_at: relay back-off after a failed delivery to Temporal.
// - reward_code_pool_usage: which pool code went to which reward; the primary key hands each code out once, the
//   unique reward_id gives each reward at most one code.
import { Migration } from "@mikro-orm/migrations";

export class Migration0002Orchestration extends Migration {
  override name = "0002_orchestration";

  override up(): void {
    this.addSql("alter table \"member_streak\" add column \"break_kind\" varchar(8) null, add column \"break_window_key\" varchar(64) null;");
    this.addSql("alter table \"outbox_message\" add column \"next_attempt_at\" timestamptz null;");
    this.addSql("create table \"reward_code_pool_usage\" (\"tenant_id\" uuid not null, \"definition_id\" uuid not null, \"threshold\" int not null, \"code\" varchar(256) not null, \"reward_id\" uuid not null, \"created_at\" timestamptz not null, primary key (\"tenant_id\", \"definition_id\", \"threshold\", \"code\"));");
    this.addSql("alter table \"reward_code_pool_usage\" add constraint \"reward_code_pool_usage_reward_id_unique\" unique (\"reward_id\");");
  }
}
