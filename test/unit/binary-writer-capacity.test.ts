import { describe, expect, it } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { FIRST_WRITER_BYTES, presizeBinaryWriters } from "../../src/api/binary-writer-capacity.ts";
import { MemberStreakProgressSchema } from "../../src/gen/kindling/v1/member_streak_pb.js";

const bufferOf = (w: BinaryWriter) => (w as unknown as { buffer: Uint8Array }).buffer;

describe("binary writer capacity", () => {
  it("presize/first_write_allocates_the_whole_first_buffer", () => {
    // Fails when the pinned protobuf-es no longer has the method the change hooks (presize would then be off).
    expect(presizeBinaryWriters()).toBe(true);
    expect(presizeBinaryWriters()).toBe(true);
    const w = new BinaryWriter();
    w.uint32(1);
    expect(bufferOf(w).length).toBe(FIRST_WRITER_BYTES);
    const big = new BinaryWriter();
    big.bytes(new Uint8Array(5000));
    expect(bufferOf(big).length).toBeGreaterThanOrEqual(5005);
  });

  it("presize/encodings_are_unchanged_below_at_and_above_the_first_size", () => {
    presizeBinaryWriters();
    // Field 2 (member_external_id) = "ab": tag 0x12, length 2.
    expect([...toBinary(MemberStreakProgressSchema, create(MemberStreakProgressSchema, { memberExternalId: "ab" }))]).toEqual([0x12, 2, 0x61, 0x62]);
    for (const size of [0, 100, FIRST_WRITER_BYTES - 3, FIRST_WRITER_BYTES, 3 * FIRST_WRITER_BYTES + 7]) {
      const message = create(MemberStreakProgressSchema, { id: "i", memberExternalId: "x".repeat(size), earnedMilestones: [1, 2, 3], currentCount: 7 });
      const bytes = toBinary(MemberStreakProgressSchema, message);
      expect(bytes.length).toBeGreaterThanOrEqual(size);
      expect(fromBinary(MemberStreakProgressSchema, bytes)).toEqual(message);
    }
  });
});
