// kindling_batch_check: lets the batched ingestor send its one write statement and COMMIT in a single round trip
// (src/engine/ingest/batch-ingestor.ts). The statement inserts the batch's new activities with `on conflict do nothing`;
// when a concurrent transaction stored one of the same idempotency keys first, fewer rows come back, and the
// streak states the statement also wrote count an activity that is not ours. The check raises SQLSTATE KB001
// inside the statement, which aborts it and skips the COMMIT sent with it; the ingestor rolls back and runs the
// batch again, when those keys read as duplicates.
import { Migration } from "@mikro-orm/migrations";

export class Migration0006BatchCheck extends Migration {
  override name = "0006_batch_check";

  override up(): void {
    this.addSql(`create or replace function kindling_batch_check(expected int, inserted bigint) returns boolean
      language plpgsql as $$
      begin
        if inserted <> expected then
          raise exception 'kindling: % of % activities of a batch were stored concurrently', expected - inserted, expected using errcode = 'KB001';
        end if;
        return true;
      end $$;`);
  }
}
