// The protobuf encoding of a RecordActivity answer (an activity, its streak result with a progress view, milestones
// and a reward) and of a GetMemberStreak answer, by protobuf-es's `toBinary` and by the generated encoders of
// src/api/binary-encoder.ts, side by side in one process and reported as a ratio.
//
// `node bench/binary-encoding.ts` (a few seconds; nothing written).
import { create, toBinary, type DescMessage, type Message } from "@bufbuild/protobuf";
import { RecordActivityResponseSchema } from "../src/gen/kindling/v1/activity_service_pb.js";
import { GetMemberStreakResponseSchema } from "../src/gen/kindling/v1/member_streak_service_pb.js";
import { ConditionType, RewardKind, FulfilmentMode } from "../src/gen/kindling/v1/definition_pb.js";
import { catalogDefinition, dailyDefinitionMessage } from "../test/support/catalog.ts";
import { applyActivity, initialState } from "../src/domain/index.ts";
import { activityMessage, streakResultMessage } from "../src/api/mappers/activity.mapper.ts";
import { progressMessage } from "../src/api/mappers/progress.mapper.ts";
import { encodeBinary } from "../src/api/binary-encoder.ts";

const HOUR = 3_600_000;
const DAY0 = Date.UTC(2026, 0, 5);

const def = catalogDefinition(dailyDefinitionMessage({
  name: "Spend $50 a day",
  condition: { type: ConditionType.SUM, min: 50 },
  milestones: [
    { threshold: 1, name: "First day", reward: { kind: RewardKind.POINTS, name: "Welcome", points: 5, fulfilmentMode: FulfilmentMode.CLAIM } },
    { threshold: 7, name: "A week", reward: { kind: RewardKind.COUPON, name: "10% off", value: "10% off your next order", fulfilmentMode: FulfilmentMode.CLAIM } },
  ],
}), { eventTypes: ["purchase"] });
const applied = applyActivity(def.rules, initialState(def.rules), { id: "a1", occurredAt: DAY0 + HOUR, value: 60 }, { now: DAY0 + HOUR });
const now = DAY0 + 2 * HOUR;
const rewards = { unclaimed: [{ id: "5b0a3f4e-0000-4000-8000-00000000000a", definitionId: def.id, state: "AVAILABLE", threshold: 1, kind: "POINTS", points: 5, value: "", claimDeadlineAt: DAY0 + 30 * HOUR }], total: 1 };
const activity = activityMessage({
  id: "5b0a3f4e-0000-4000-8000-000000000001", memberId: "5b0a3f4e-0000-4000-8000-000000000004", memberExternalId: "member-00042", definitionId: null, eventType: "purchase", appliedDefinitionIds: [def.id],
  occurredAt: DAY0 + HOUR, recordedAt: DAY0 + HOUR, value: 60, distinctKey: null, uniqueIdentifier: "order-9f2c1", metadata: { channel: "web" }, platform: "web",
  imported: false,
});
const result = streakResultMessage(
  {
    definition: def, memberStreakId: "5b0a3f4e-0000-4000-8000-000000000003", applied: true, notAppliedReason: null, outcome: applied.outcome,
    state: applied.state, effects: applied.effects, rewards: [],
  },
  "member-00042", rewards, now, undefined, false, () => undefined,
);
const record = create(RecordActivityResponseSchema, { activity, results: [result] });
const read = create(GetMemberStreakResponseSchema, {
  streak: progressMessage(def, "member-00042", { id: "s1", state: applied.state, createdAt: DAY0, updatedAt: DAY0 + HOUR }, rewards, now, undefined),
});

const CALLS = 100_000;
function perCall(desc: DescMessage, m: Message, encode: (desc: DescMessage, m: Message) => Uint8Array): number {
  const start = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) encode(desc, m);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / CALLS;
}
const median = (xs: number[]) => xs.toSorted((x, y) => x - y)[Math.floor(xs.length / 2)]!;
for (const [name, desc, m] of [["RecordActivityResponse", RecordActivityResponseSchema, record], ["GetMemberStreakResponse", GetMemberStreakResponseSchema, read]] as const) {
  const bytes = toBinary(desc, m);
  if (!Buffer.from(encodeBinary(desc, m)).equals(Buffer.from(bytes))) throw new Error(`${name}: the encodings differ`);
  // Warm both, then alternate rounds so neither side always runs on the warmer process.
  perCall(desc, m, toBinary);
  perCall(desc, m, encodeBinary);
  const rounds: { before: number; after: number }[] = [];
  for (let round = 0; round < 5; round++) rounds.push({ before: perCall(desc, m, toBinary), after: perCall(desc, m, encodeBinary) });
  const b = median(rounds.map((r) => r.before));
  const a = median(rounds.map((r) => r.after));
  console.log(`${name} (${bytes.length} bytes), CPU per encoding, median of ${rounds.length} rounds of ${CALLS}: toBinary ${b.toFixed(2)} µs, generated ${a.toFixed(2)} µs, ratio ${(a / b).toFixed(2)}×`);
}
