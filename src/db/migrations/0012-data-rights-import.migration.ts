// Issue 14, parts 1 and 2:
// - member_erasure_tally (src/engine/data-rights/): EraseMember deletes a member's rows but keeps what the tenant's
//   statistics need as anonymised totals per definition — how many members, activities and rewards (and reward
//   points) were erased — so totals stay right after an erasure without any member id surviving.
// - activity.imported (src/engine/import/): activities brought in by ImportActivities are marked as such.
import { Migration } from "@mikro-orm/migrations";

export class Migration0012DataRightsImport extends Migration {
  override name = "0012_data_rights_import";

  override up(): void {
    this.addSql(`create table "member_erasure_tally" (
      "tenant_id" uuid not null,
      "definition_id" uuid not null,
      "erased_members" int not null default 0,
      "erased_activities" bigint not null default '0',
      "erased_rewards" int not null default 0,
      "erased_reward_points" double precision not null default 0,
      "updated_at" timestamptz not null,
      constraint "member_erasure_tally_pkey" primary key ("tenant_id", "definition_id")
    );`);
    this.addSql(`alter table "activity" add column "imported" boolean not null default false;`);
  }
}
