// Per-window streak history (issue 13, item 1; src/engine/history/streak-history.ts):
// - streak_window: one row per finalised window of a member streak — its key and bounds, what it came to
//   (SATISFIED, MISSED, FROZEN, NEUTRAL, BRIDGED), its aggregate and the streak count after it. Rows are written in
//   the transaction (or statement) that finalises the window: recording activity, the batched ingest, the admin
//   operations and the window-close sweeps, so the history never disagrees with the streak. Reads page one member
//   streak by start time, and a window is stored once by its start (a re-finalised window is the same row): the
//   primary key is that one index. tenant_id and member_id are on the row for erasure and export, which reach it
//   through the member's member_streak ids (the key's prefix). No foreign key and no second index: each would
//   cost a probe per row on the hot path and in the million-row break sweep.
// - member_streak.window_start_at: the start of the window that closes at window_close_at, projected like it, so
//   the set-based break sweep writes the broken window's bounds without reading the JSON state.
import { Migration } from "@mikro-orm/migrations";

export class Migration0010StreakWindows extends Migration {
  override name = "0010_streak_windows";

  override up(): void {
    this.addSql(`create table "streak_window" (
      "member_streak_id" uuid not null,
      "start_at" timestamptz not null,
      "window_key" varchar(64) not null,
      "tenant_id" uuid not null,
      "member_id" uuid not null,
      "definition_id" uuid not null,
      "end_at" timestamptz not null,
      "outcome" varchar(16) not null,
      "activity_count" int not null,
      "value_sum" double precision not null,
      "distinct_keys" jsonb not null,
      "count_after" int not null,
      "finalised_at" timestamptz not null,
      primary key ("member_streak_id", "start_at")
    );`);
    this.addSql(`alter table "member_streak" add column "window_start_at" timestamptz null;`);
  }
}
