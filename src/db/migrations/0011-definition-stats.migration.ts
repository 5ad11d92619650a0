// Program analytics per definition and UTC day (issue 13, item 3; src/engine/definition-stats.ts):
// - definition_stats_day: one row per definition and day, written by the definition sweeper after its sweeps.
//   Event counters (at risk, broken, frozen, started, milestones by threshold, rewards issued / claimed /
//   expired) are recomputed from streak_event for the last few days at every snapshot; the state columns
//   (active, count_histogram) are the state at the snapshot, frozen once the day is closed. A read of a day
//   range is one range scan of the primary key.
// - streak_event_definition_time: the events of one definition in a time range, which each snapshot aggregates
//   by day. Without it the snapshot would read every event of the tenant.
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
    this.addSql(`create index "streak_event_definition_time" on "streak_event" ("definition_id", "occurred_at");`);
  }
}
