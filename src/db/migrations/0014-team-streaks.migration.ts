// Issue 14, part 3: team streaks (src/engine/teams/team-streaks.ts, domain in src/domain/team-streak.ts).
// - team: one team on one team definition, with the team chain's MemberStreakState document and its projections.
// - team_member: stretches of membership in window starts, [effective_from, effective_to): a change takes effect
//   at the next window. A member is on at most one team per definition at a time (open stretch, partial unique).
// - team_member_window: each member's activities in the team's windows that are not final yet (the member's
//   window aggregate the team window is decided from); rows of final windows are deleted as the team advances.
import { Migration } from "@mikro-orm/migrations";

export const TEAM_MEMBER_OPEN_INDEX =
  `create unique index "team_member_open_per_definition" on "team_member" ("tenant_id", "definition_id", "member_id") where "effective_to" is null`;

export class Migration0014TeamStreaks extends Migration {
  override name = "0014_team_streaks";

  override up(): void {
    this.addSql(`create table "team" (
      "id" uuid not null,
      "tenant_id" uuid not null,
      "definition_id" uuid not null,
      "name" varchar(256) not null,
      "state" jsonb not null,
      "status" varchar(16) not null,
      "current_count" int not null default 0,
      "longest_count" int not null default 0,
      "created_at" timestamptz not null,
      "updated_at" timestamptz not null,
      constraint "team_pkey" primary key ("id")
    );`);
    this.addSql(`create index "team_tenant_id_definition_id_index" on "team" ("tenant_id", "definition_id");`);
    this.addSql(`create table "team_member" (
      "team_id" uuid not null,
      "member_id" uuid not null,
      "effective_from" timestamptz not null,
      "tenant_id" uuid not null,
      "definition_id" uuid not null,
      "effective_to" timestamptz null,
      "created_at" timestamptz not null,
      constraint "team_member_pkey" primary key ("team_id", "member_id", "effective_from")
    );`);
    this.addSql(TEAM_MEMBER_OPEN_INDEX);
    this.addSql(`create table "team_member_window" (
      "team_id" uuid not null,
      "member_id" uuid not null,
      "window_key" varchar(64) not null,
      "tenant_id" uuid not null,
      "window_end_at" timestamptz not null,
      "entries" jsonb not null,
      "updated_at" timestamptz not null,
      constraint "team_member_window_pkey" primary key ("team_id", "member_id", "window_key")
    );`);
  }
}
