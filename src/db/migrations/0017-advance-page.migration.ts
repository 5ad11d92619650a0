// The advance sweep in O(page) (src/engine/sweeps/window-sweeps.ts, sweepAdvance): its rows — due FREEZE / SETTLE
// rows, the ones the domain must advance — get a partial keyset index of their own, so a sweep after a large
// cohort broke does not read the whole definition to find the few rows to advance. Small: a row is in it only
// between a recording that gave it a freeze or settle deadline and the sweep that advances it.
import { Migration } from "@mikro-orm/migrations";

export const ADVANCE_PAGE_INDEX =
  `create index "member_streak_advance_page" on "member_streak" ("definition_id", "break_at", "id") where "break_at" is not null and "break_kind" is distinct from 'BREAK'`;

export class Migration0017AdvancePage extends Migration {
  override name = "0017_advance_page";

  override up(): void {
    this.addSql(`${ADVANCE_PAGE_INDEX};`);
  }
}
