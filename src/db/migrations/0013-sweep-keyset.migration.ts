// Sweeps in O(page) (src/engine/sweeps/window-sweeps.ts): a page of the break or at-risk sweep is the next rows after a
// (due time, id) keyset in the definition's rows, so the partial sweep indexes gain `id` as their last column
// and return a page in index order: a daily cohort shares one due instant, and without `id` every page read the
// whole cohort and sorted it. Built before the old ones are dropped, so sweeps and nextDueAt always have one.
import { Migration } from "@mikro-orm/migrations";

export class Migration0013SweepKeyset extends Migration {
  override name = "0013_sweep_keyset";

  override up(): void {
    this.addSql("create index \"member_streak_break_page\" on \"member_streak\" (\"definition_id\", \"break_at\", \"id\") where \"break_at\" is not null;");
    this.addSql("create index \"member_streak_at_risk_page\" on \"member_streak\" (\"definition_id\", \"at_risk_at\", \"id\") where \"at_risk_at\" is not null;");
    this.addSql("drop index \"member_streak_break_sweep\";");
    this.addSql("drop index \"member_streak_at_risk_sweep\";");
  }
}
