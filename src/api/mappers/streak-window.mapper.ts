// StreakWindow messages from the engine's history windows (src/engine/history/streak-history.ts).
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { StreakWindowOutcome, StreakWindowSchema, type StreakWindow } from "../../gen/kindling/v1/streak_window_pb.js";
import { WindowProgressSchema } from "../../gen/kindling/v1/member_streak_pb.js";
import type { HistoryWindow } from "../../engine/history/streak-history.ts";
import type { WindowOutcome } from "../../domain/streak-machine.ts";

const OUTCOMES: Record<WindowOutcome, StreakWindowOutcome> = {
  SATISFIED: StreakWindowOutcome.SATISFIED,
  MISSED: StreakWindowOutcome.MISSED,
  FROZEN: StreakWindowOutcome.FROZEN,
  NEUTRAL: StreakWindowOutcome.NEUTRAL,
  BRIDGED: StreakWindowOutcome.BRIDGED,
  OPEN: StreakWindowOutcome.OPEN,
  IN_GRACE: StreakWindowOutcome.IN_GRACE,
};

export function streakWindowMessage(w: HistoryWindow): StreakWindow {
  return create(StreakWindowSchema, {
    windowKey: w.key,
    startTime: timestampFromMs(w.startMs),
    endTime: timestampFromMs(w.endMs),
    outcome: OUTCOMES[w.outcome],
    aggregate: create(WindowProgressSchema, { count: w.count, sum: w.sum, distinctKeys: [...w.distinct] }),
    countAfter: w.countAfter,
    live: !w.final,
  });
}
