// Browser access of a tenant (issue 12), one row per tenant that set any of it:
// - origins: the browser origins allowed to call the API with the tenant's credentials (CORS), as sent in the
//   `Origin` header; every API process keeps all tenants' origins in memory (src/engine/access/browser-access.ts).
// - session_key / session_key_id: the HS256 key Kindling signs member sessions with, and its id (the JWT `kid`).
//   Created on the first CreateMemberSession; RotateMemberSessionKey replaces both, so older tokens fail.
//   Like the tenants' own HS256 end-user secrets (tenant.jwt_config), it is stored as is: the server must sign.
import { Migration } from "@mikro-orm/migrations";

export class Migration0008BrowserAccess extends Migration {
  override name = "0008_browser_access";

  override up(): void {
    this.addSql(`create table "tenant_browser_access" (
      "tenant_id" uuid primary key,
      "origins" text[] not null default '{}',
      "origins_updated_at" timestamptz null,
      "session_key" bytea null,
      "session_key_id" varchar(64) null,
      "session_key_rotated_at" timestamptz null
    );`);
  }
}
