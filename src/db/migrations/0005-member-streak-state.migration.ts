// The domain's MemberStreakState document moves out of member_streak into member_streak_state (1:1, same id).
//
// Why: the window-close sweeps (src/engine/sweeps/window-sweeps.ts) rewrite every due member_streak row — a break sets
// status, counts and the deadline columns — but never the state document, which is ≈1.1 KB of the ≈1.3 KB row.
// PostgreSQL writes a whole new row version on every UPDATE and, on the first change to a page after each
// checkpoint, the whole 8 KB page into the WAL; with the document in the row a 1,000,000-row break rewrote
// ≈1.3 GB of row versions and ≈2.3 GB of page images (≈250,000 pages at four rows a page). Narrow rows put
// ≈25 on a page: the same break touches a tenth of the pages. Writers that change the document (recording
// activity, freezes, repairs, the advance sweep) update both rows in one statement; readers join on the key.
import { Migration } from "@mikro-orm/migrations";

export class Migration0005MemberStreakState extends Migration {
  override name = "0005_member_streak_state";

  override up(): void {
    this.addSql("create table \"member_streak_state\" (\"member_streak_id\" uuid not null, \"state\" jsonb not null, constraint \"member_streak_state_pkey\" primary key (\"member_streak_id\"));");
    this.addSql("insert into \"member_streak_state\" (\"member_streak_id\", \"state\") select \"id\", \"state\" from \"member_streak\";");
    this.addSql("alter table \"member_streak\" drop column \"state\";");
  }
}
