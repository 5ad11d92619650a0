// Shared responses (src/api/shared-responses.ts): frozen through and through, encoded once; other messages are
// encoded on every call, as before.
import { describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { GetLeaderboardResponseSchema } from "../../src/gen/kindling/v1/leaderboard_service_pb.js";
import { binaryOf, isSharedResponse, shareResponse } from "../../src/api/shared-responses.ts";

const board = () =>
  create(GetLeaderboardResponseSchema, {
    entries: [
      { rank: 1, memberExternalId: "a", displayName: "Ada", count: 3, reachTime: timestampFromMs(Date.parse("2025-03-03T08:00:00.123Z")) },
      { rank: 2, memberExternalId: "b", count: 2 },
    ],
  });

describe("shared responses", () => {
  it("shared/frozen_through_and_through", () => {
    const message = shareResponse(board());
    expect(isSharedResponse(message)).toBe(true);
    for (const part of [message, message.entries, message.entries[0], message.entries[0]!.reachTime]) expect(Object.isFrozen(part)).toBe(true);
    expect(() => {
      message.entries[0]!.rank = 9;
    }).toThrow(TypeError);
    expect(() => {
      message.entries.push(message.entries[1]!);
    }).toThrow(TypeError);
    expect(() => {
      message.entries[0]!.reachTime!.seconds = 0n;
    }).toThrow(TypeError);
  });

  it("shared/encoded_once_with_the_bytes_toBinary_makes", () => {
    const message = shareResponse(board());
    const bytes = binaryOf(GetLeaderboardResponseSchema, message);
    expect(Buffer.from(bytes)).toEqual(Buffer.from(toBinary(GetLeaderboardResponseSchema, board())));
    expect(binaryOf(GetLeaderboardResponseSchema, message)).toBe(bytes);
    // Not shared: encoded on every call.
    const plain = board();
    expect(isSharedResponse(plain)).toBe(false);
    const once = binaryOf(GetLeaderboardResponseSchema, plain);
    expect(once).toEqual(bytes);
    expect(binaryOf(GetLeaderboardResponseSchema, plain)).not.toBe(once);
  });
});
