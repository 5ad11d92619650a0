// Program analytics per definition and UTC day (issue 13, item 3; src/engine/history/definition-stats.ts):
// - definition_stats_day: one row per definition and day, written by the definition sweeper after its sweeps.
//   Event counters (at risk, broken, frozen, started, milestones by threshold, rewards issued / claimed /
//   expired) are recomputed from streak_event for the last few days at every snapshot; the state columns
//   (active, count_histogram) are the state at the snapshot, frozen once the day is closed. A read of a day
//   range is one range scan of the primary key.
// - streak_event_definition_time: the events of one definition in a time range, which each snapshot aggregates
//   by day. Without it the snapshot would read every event of the tenant.
// - member_streak_opted_out_counts: the active streaks of members who opted out of leaderboards. With the
//   leaderboard's current-board index (0009, the rows not opted out) it gives the snapshot every active streak
//   of one definition from two index ranges instead of a scan of the whole table. Partial, so it costs writes
//   only for opted-out members.
import { Migration } from "@mikro-orm/migrations";

export class Migration0011DefinitionStats extends Migration {
  override name = "0011_definition_stats";

  override up(): void {
    this.addSql(`create table "definition_stats_day" (
      "tenant_id" uuid not null,
      "definition_id" uuid not null,
      "day" date not null,
      "closed" boolean not null,
      "computed_at" timestamptz not null,
      "has_state" boolean not null,
      "active" int not null default 0,
      "count_histogram" int[] not null default '{}',
      "at_risk" int not null default 0,
      "broken" int not null default 0,
      "frozen" int not null default 0,
      "started" int not null default 0,
      "milestones" jsonb not null default '{}',
      "rewards_issued" int not null default 0,
      "rewards_claimed" int not null default 0,
      "rewards_expired" int not null default 0,
      primary key ("tenant_id", "definition_id", "day")
    );`);
    this.addSql(STREAK_EVENT_DEFINITION_TIME_INDEX);
    this.addSql(OPTED_OUT_COUNTS_INDEX);
  }
}

export const STREAK_EVENT_DEFINITION_TIME_INDEX = `create index "streak_event_definition_time" on "streak_event" ("definition_id", "occurred_at")`;
export const OPTED_OUT_COUNTS_INDEX =
  `create index "member_streak_opted_out_counts" on "member_streak" ("tenant_id", "definition_id", "current_count") where "current_count" > 0 and "leaderboard_opt_out"`;
