// Window-close sweeps at scale (src/engine/sweeps/window-sweeps.ts, PRODUCT §7: 1,000,000 streaks within a minute):
// - member_streak_break_sweep / member_streak_at_risk_sweep become partial (break_at / at_risk_at not null).
//   Every reader of them (the sweeps, nextDueAt) already asks for a non-null bound. A broken row has both set to
//   null, so breaking it no longer inserts two index entries that nothing can ever find; the indexes also stay
//   as small as the live rows instead of growing with every finished streak.
// - member_streak fillfactor 70: the at-risk sweep only sets at_risk_notified_window (not indexed), and room on
//   the page lets that update be HOT: no index entries, and the WAL record carries the changed bytes, not the
//   whole row. Applies to pages written from now on; a VACUUM FULL / pg_repack applies it to an existing table.
import { Migration } from "@mikro-orm/migrations";

export class Migration0004SweepIndexes extends Migration {
  override name = "0004_sweep_indexes";

  override up(): void {
    this.addSql("alter table \"member_streak\" set (fillfactor = 70);");
    this.addSql("drop index \"member_streak_break_sweep\";");
    this.addSql("create index \"member_streak_break_sweep\" on \"member_streak\" (\"definition_id\", \"break_at\") where \"break_at\" is not null;");
    this.addSql("drop index \"member_streak_at_risk_sweep\";");
    this.addSql("create index \"member_streak_at_risk_sweep\" on \"member_streak\" (\"definition_id\", \"at_risk_at\") where \"at_risk_at\" is not null;");
  }
}
