// Leaderboards per definition (issue 13, item 2; src/engine/history/leaderboard.ts):
// - member_streak.count_reached_at / longest_reached_at: when the row's current / longest count took its present
//   value. Ties on a count rank whoever reached it first; every writer that changes a count sets them in the same
//   UPDATE (src/engine/ingest/streak-persistence.ts), from the writer's clock. Existing rows start from updated_at.
// - member_streak.breaks: the domain's break counter, projected like the count. A streak broken at read time (its
//   window passed, no sweep yet) that restarts to the count it had is a new run: the counter tells them apart.
// - member.leaderboard_opt_out / display_name: a member's choice not to appear on leaderboards, and the name end
//   users see for them there (never another member's external id). The opt-out is copied onto the member's
//   member_streak rows (and onto rows created later), so the leaderboard indexes can leave opted-out rows out and
//   a rank is counted from the index alone.
// - tenant_leaderboard_settings: a tenant may hide leaderboards from end users altogether.
// - member_streak_leaderboard_current / _longest: one index range per board and definition, in board order
//   (count desc, reached first, id). Partial: rows at 0 and opted-out rows are never ranked, so breaking a streak
//   (count 0) removes it from the current board's index instead of adding an entry. The current board carries the
//   columns that say whether a row's window has passed unswept (break_at, break_kind, window_close_at), so that
//   read-time check needs no heap visit.
import { Migration } from "@mikro-orm/migrations";

export class Migration0009Leaderboards extends Migration {
  override name = "0009_leaderboards";

  override up(): void {
    this.addSql(`alter table "member_streak" add column "count_reached_at" timestamptz null, add column "longest_reached_at" timestamptz null,
      add column "leaderboard_opt_out" boolean not null default false, add column "breaks" int not null default 0;`);
    this.addSql(`update "member_streak" s set "count_reached_at" = s."updated_at", "longest_reached_at" = s."updated_at",
      "breaks" = coalesce((st."state"->>'breaks')::int, 0) from "member_streak_state" st where st."member_streak_id" = s."id";`);
    this.addSql("alter table \"member\" add column \"leaderboard_opt_out\" boolean not null default false, add column \"display_name\" varchar(64) null;");
    this.addSql(`create table "tenant_leaderboard_settings" (
      "tenant_id" uuid primary key,
      "hidden_from_end_users" boolean not null default false,
      "updated_at" timestamptz not null
    );`);
    this.addSql(LEADERBOARD_CURRENT_INDEX);
    this.addSql(LEADERBOARD_LONGEST_INDEX);
  }
}

export const LEADERBOARD_CURRENT_INDEX =
  `create index "member_streak_leaderboard_current" on "member_streak" ("tenant_id", "definition_id", "current_count" desc, "count_reached_at", "id") include ("member_id", "break_at", "break_kind", "window_close_at") where "current_count" > 0 and not "leaderboard_opt_out"`;
export const LEADERBOARD_LONGEST_INDEX =
  `create index "member_streak_leaderboard_longest" on "member_streak" ("tenant_id", "definition_id", "longest_count" desc, "longest_reached_at", "id") include ("member_id") where "longest_count" > 0 and not "leaderboard_opt_out"`;
