// Event ids (streak_event.public_id, the API's Event.id) become time-ordered UUIDs (the UUIDv7 layout: 48 bits of
// Unix milliseconds, the version and variant bits, 74 random bits) instead of gen_random_uuid()'s 122 random bits.
//
// Why: every event inserts an entry into streak_event_public_id_index. With random ids each entry lands on a random
// leaf of the week partition's index, so a sweep page of 50,000 events dirties leaves all over an index that grows
// with every page (10,000,000 entries after a 10M at-risk sweep), so the leaves a sweep must keep in memory grow
// with it, and after each checkpoint every leaf a page dirties goes into the WAL again as a whole page image. Ids that
// grow with time append to the index's right edge, so a page touches only the leaves its own events fill.
// Ids stay unique (74 random bits per millisecond) and opaque; they now also tell roughly when they were made, which
// the event's own created_at says anyway. Existing events keep their ids.
//
// Bytes 1-6 are the milliseconds (big-endian, truncated like PostgreSQL 18's uuidv7()); set_bit numbers bits from the
// least significant of each byte, so bits 52-55 are byte 7's high nibble, the version (0111). gen_random_uuid()
// already set the variant bits (10) of byte 9.
//
// A function rather than an inline expression, so the column's default reads as one name (the entity declares it);
// on Citus it is created on every node with the default that uses it (streak_event is distributed, migration 0018).
import { Migration } from "@mikro-orm/migrations";

const TIME_ORDERED_UUID_FUNCTION = `create or replace function kindling_time_ordered_uuid() returns uuid
  language sql volatile parallel safe as $$
    select encode(
      set_bit(set_bit(set_bit(set_bit(
        overlay(uuid_send(gen_random_uuid())
                placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
                from 1 for 6),
        52, 1), 53, 1), 54, 1), 55, 0),
      'hex')::uuid
  $$`;

export class Migration0020EventTimeOrderedId extends Migration {
  override name = "0020_event_time_ordered_id";

  override up(): void {
    this.addSql(`${TIME_ORDERED_UUID_FUNCTION};`);
    this.addSql(`alter table "streak_event" alter column "public_id" set default kindling_time_ordered_uuid();`);
  }
}
