// Window sweeps for team streaks (issue 14, part 3; src/engine/teams/team-sweeps.ts): a team row carries the team
// chain's deadlines beside its JSON state, as member_streak does (the same projection, streak-projection.ts), so
// the sweeper finds due teams by index and pages through them by a (due time, id) keyset as in migration 0013.
// `at_risk_notified_window` marks the window whose at-risk reminders went out (once per team and window).
// team_window: the team's finalised windows (its history, as streak_window is a member streak's, migration 0010),
// written by every writer that finalises them, sweeps included; one row per team and window start.
import { Migration } from "@mikro-orm/migrations";

export class Migration0015TeamSweeps extends Migration {
  override name = "0015_team_sweeps";

  override up(): void {
    this.addSql(`alter table "team"
      add column "window_close_at" timestamptz null,
      add column "at_risk_at" timestamptz null,
      add column "break_at" timestamptz null,
      add column "break_kind" varchar(8) null,
      add column "break_window_key" varchar(64) null,
      add column "at_risk_notified_window" varchar(64) null;`);
    this.addSql("create index \"team_break_page\" on \"team\" (\"definition_id\", \"break_at\", \"id\") where \"break_at\" is not null;");
    this.addSql("create index \"team_at_risk_page\" on \"team\" (\"definition_id\", \"at_risk_at\", \"id\") where \"at_risk_at\" is not null;");
    this.addSql(`create table "team_window" (
      "team_id" uuid not null,
      "start_at" timestamptz not null,
      "window_key" varchar(64) not null,
      "tenant_id" uuid not null,
      "definition_id" uuid not null,
      "end_at" timestamptz not null,
      "outcome" varchar(16) not null,
      "count_after" int not null,
      "finalised_at" timestamptz not null,
      constraint "team_window_pkey" primary key ("team_id", "start_at")
    );`);
  }
}
