// src/api/known-encoding.ts: a response holding a reused progress answer is encoded from the answer's kept bytes
// plus its per-read fields, and decodes to exactly the message the plain encoder's bytes decode to.
import { describe, expect, it } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { RewardKind, FulfilmentMode } from "../../src/gen/kindling/v1/definition_pb.js";
import { GetMemberStreakResponseSchema } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { MemberStreakProgressSchema, TeamProgressSchema } from "../../src/gen/kindling/v1/member_streak_pb.js";
import { catalogDefinition, dailyDefinitionMessage } from "../support/catalog.ts";
import { applyActivity, initialState } from "../../src/domain/index.ts";
import { createProgressCache } from "../../src/api/mappers/progress-cache.ts";
import { encodeMessage } from "../../src/api/known-encoding.ts";
import { shareResponse } from "../../src/api/shared-responses.ts";

const HOUR = 3_600_000;
const DAY0 = Date.UTC(2026, 0, 5);

const def = catalogDefinition(dailyDefinitionMessage({
  milestones: [{ threshold: 1, reward: { kind: RewardKind.POINTS, points: 5, fulfilmentMode: FulfilmentMode.CLAIM } }],
}));
const state = applyActivity(def.rules, initialState(def.rules), { id: "a", occurredAt: DAY0 + HOUR }, { now: DAY0 + HOUR }).state;
const stored = { id: "s1", state, stateText: JSON.stringify(state), createdAt: DAY0, updatedAt: DAY0 + HOUR };
const rewards = { unclaimed: [{ id: "r1", threshold: 1, kind: "POINTS", points: 5, value: "", claimDeadlineAt: DAY0 + 30 * HOUR }], total: 3 };

describe("known encodings", () => {
  it("encoding/reused_answer_with_per_read_fields_decodes_like_the_plain_encoding", () => {
    const cache = createProgressCache();
    const built = cache.message(def, "m1", stored, rewards, DAY0 + 2 * HOUR, undefined);
    const reused = cache.message(def, "m1", stored, { unclaimed: [], total: 0 }, DAY0 + 5 * HOUR + 1, undefined);
    reused.team = create(TeamProgressSchema, { teamId: "team-1", currentCount: 4 });
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1 });
    for (const streak of [built, reused]) {
      const response = create(GetMemberStreakResponseSchema, { streak });
      const plain = fromBinary(GetMemberStreakResponseSchema, toBinary(GetMemberStreakResponseSchema, response));
      expect(fromBinary(GetMemberStreakResponseSchema, encodeMessage(GetMemberStreakResponseSchema, response))).toEqual(plain);
      expect(fromBinary(MemberStreakProgressSchema, encodeMessage(MemberStreakProgressSchema, streak))).toEqual(plain.streak);
    }
    const decoded = fromBinary(GetMemberStreakResponseSchema, encodeMessage(GetMemberStreakResponseSchema, create(GetMemberStreakResponseSchema, { streak: reused })));
    expect(decoded.streak).toMatchObject({ secondsUntilWindowClose: 19n * 3600n, totalRewardsEarned: 0, unclaimedMilestones: [], team: { teamId: "team-1", currentCount: 4 } });
  });

  it("encoding/messages_without_a_known_encoding_are_encoded_as_toBinary_does", () => {
    const streak = create(MemberStreakProgressSchema, { id: "x", currentCount: 3, memberExternalId: "m" });
    const response = create(GetMemberStreakResponseSchema, { streak });
    expect(Buffer.from(encodeMessage(GetMemberStreakResponseSchema, response))).toEqual(Buffer.from(toBinary(GetMemberStreakResponseSchema, response)));
  });

  it("encoding/headroom_leaves_room_before_the_same_bytes_on_every_path", () => {
    const cache = createProgressCache();
    cache.message(def, "m1", stored, rewards, DAY0 + 2 * HOUR, undefined);
    const reused = cache.message(def, "m1", stored, rewards, DAY0 + 3 * HOUR, undefined);
    const cases: [Parameters<typeof encodeMessage>[0], Parameters<typeof encodeMessage>[1]][] = [
      // the kept bytes of the answer itself, of an answer inside a response, a plain message, a shared response
      [MemberStreakProgressSchema, reused],
      [GetMemberStreakResponseSchema, create(GetMemberStreakResponseSchema, { streak: reused })],
      [MemberStreakProgressSchema, create(MemberStreakProgressSchema, { id: "x", currentCount: 3 })],
      [GetMemberStreakResponseSchema, shareResponse(create(GetMemberStreakResponseSchema, { streak: { id: "y", currentCount: 1 } }))],
    ];
    for (const [desc, msg] of cases) {
      const bare = encodeMessage(desc, msg);
      const framed = encodeMessage(desc, msg, 5);
      expect(framed.length).toBe(bare.length + 5);
      expect(Buffer.from(framed.subarray(5)).equals(Buffer.from(bare))).toBe(true);
      expect(fromBinary(desc, framed.subarray(5))).toEqual(fromBinary(desc, toBinary(desc, msg)));
    }
  });
});
