// When each API key last authenticated a call (ApiKey.last_use_time in the API), at minute granularity: the auth
// interceptor writes it at most once a minute per key and process, off the request's path.
import { Migration } from "@mikro-orm/migrations";

export class Migration0007ApiKeyLastUse extends Migration {
  override name = "0007_api_key_last_use";

  override up(): void {
    this.addSql(`alter table "api_key" add column "last_used_at" timestamptz null;`);
  }
}
