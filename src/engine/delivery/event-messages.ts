// Persisted events -> kindling.v1.Event. Payloads are stored as the snake_case JSON each writer produced (the
// ingestor, the sweeps, the reward engine); this maps each type's keys onto its typed payload message. In the
// engine rather than the API's mappers because the webhook dispatcher sends the same messages as EventService.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { EventSchema, EventType, type Event } from "../../gen/kindling/v1/event_pb.js";
import type { StreakEventType } from "../../db/entities/index.ts";
import type { StoredEvent } from "./event-stream.ts";
import type { CatalogDefinition, DefinitionCatalog } from "../definitions/definition-catalog.ts";
import { rewardsByIds, type StoredReward } from "../rewards/reward-store.ts";
import type { Pool } from "pg";
import { milestoneMessage } from "../rewards/reward-plan.ts";
import { rewardMessage } from "../rewards/reward-messages.ts";

export const eventTypeToProto: Record<StreakEventType, EventType> = {
  "streak.incremented": EventType.STREAK_INCREMENTED,
  "streak.broken": EventType.STREAK_BROKEN,
  "streak.milestone_reached": EventType.STREAK_MILESTONE_REACHED,
  "streak.at_risk": EventType.STREAK_AT_RISK,
  "streak.completed": EventType.STREAK_COMPLETED,
  "streak.freeze_used": EventType.STREAK_FREEZE_USED,
  "streak.repaired": EventType.STREAK_REPAIRED,
  "reward.issued": EventType.REWARD_ISSUED,
  "reward.claimed": EventType.REWARD_CLAIMED,
  "reward.expired": EventType.REWARD_EXPIRED,
  "reward.failed": EventType.REWARD_FAILED,
};

export function eventTypeFromProto(t: EventType): StreakEventType | undefined {
  return (Object.entries(eventTypeToProto) as [StreakEventType, EventType][]).find(([, v]) => v === t)?.[0];
}

/** Event.cursor: the stream position, opaque to clients. */
export const cursorOf = (seq: bigint) => seq.toString();
export const seqOfCursor = (cursor: string): bigint | undefined => (/^\d{1,19}$/.test(cursor) ? BigInt(cursor) : undefined);

const num = (v: unknown) => (typeof v === "number" ? v : 0);
const str = (v: unknown) => (typeof v === "string" ? v : "");
const time = (v: unknown) => (typeof v === "string" && !Number.isNaN(Date.parse(v)) ? timestampFromDate(new Date(v)) : undefined);

/** What a reward event needs beside the row: the reward (a snapshot in the payload wins) and its definition. */
export interface EventContext {
  readonly reward?: StoredReward | undefined;
  readonly definition?: CatalogDefinition | undefined;
}

function payloadOf(e: StoredEvent, ctx: EventContext): Event["payload"] {
  const p = e.payload;
  switch (e.type) {
    case "streak.incremented":
      return { case: "streakIncremented", value: { $typeName: "kindling.v1.StreakIncrementedPayload", newCount: num(p["new_count"]), windowKey: str(p["window_key"]), activityId: str(p["activity_id"]), wasReset: p["was_reset"] === true } };
    case "streak.broken": {
      const repairSeconds = ctx.definition?.rules.repairWindowSeconds ?? 0;
      return {
        case: "streakBroken",
        value: {
          $typeName: "kindling.v1.StreakBrokenPayload",
          finalCount: num(p["final_count"]),
          missedWindowKey: str(p["window_key"]),
          repairDeadlineTime: repairSeconds > 0 ? timestampFromMs(e.occurredAt + repairSeconds * 1000) : undefined,
        },
      };
    }
    case "streak.milestone_reached": {
      const threshold = num(p["threshold"]);
      const itemId = ctx.definition ? milestoneMessage(ctx.definition, threshold)?.reward?.rewardItemId : undefined;
      return { case: "streakMilestoneReached", value: { $typeName: "kindling.v1.StreakMilestoneReachedPayload", threshold, count: num(p["count"]), rewardId: str(p["reward_id"]), rewardItemId: itemId ?? "" } };
    }
    case "streak.at_risk":
      return { case: "streakAtRisk", value: { $typeName: "kindling.v1.StreakAtRiskPayload", currentCount: num(p["current_count"]), windowKey: str(p["window_key"]), windowEndTime: time(p["window_end_time"]) } };
    case "streak.completed":
      return { case: "streakCompleted", value: { $typeName: "kindling.v1.StreakCompletedPayload", finalCount: num(p["count"]), cycle: num(p["cycle"]) } };
    case "streak.freeze_used":
      return { case: "streakFreezeUsed", value: { $typeName: "kindling.v1.StreakFreezeUsedPayload", currentCount: num(p["current_count"]), windowKey: str(p["window_key"]), freezesRemaining: num(p["freezes_left"]) } };
    case "streak.repaired":
      return { case: "streakRepaired", value: { $typeName: "kindling.v1.StreakRepairedPayload", restoredCount: num(p["restored_count"]) } };
    case "reward.issued":
    case "reward.claimed":
    case "reward.expired":
    case "reward.failed": {
      const snapshot = p["reward"] as StoredReward | undefined;
      const reward = snapshot ?? ctx.reward;
      return { case: "reward", value: { $typeName: "kindling.v1.RewardEventPayload", reward: reward ? rewardMessage(reward, ctx.definition) : undefined } };
    }
  }
}

export function eventMessage(e: StoredEvent, ctx: EventContext): Event {
  return create(EventSchema, {
    id: e.publicId,
    type: eventTypeToProto[e.type],
    memberExternalId: e.memberExternalId ?? str(e.payload["user_id"]),
    definitionId: e.definitionId ?? "",
    occurTime: timestampFromMs(e.occurredAt),
    createTime: timestampFromMs(e.createdAt),
    cursor: cursorOf(e.seq),
    teamId: str(e.payload["team_id"]),
    payload: payloadOf(e, ctx),
  });
}

/** Messages for a page of one tenant's events, loading the rewards and definitions they refer to in one go. */
export async function eventMessages(db: Pick<Pool, "query">, catalog: Pick<DefinitionCatalog, "get">, tenantId: string, events: readonly StoredEvent[]): Promise<Event[]> {
  const wanted = events.filter((e) => e.type.startsWith("reward.") && e.payload["reward"] === undefined).map((e) => str(e.payload["reward_id"])).filter((id) => id !== "");
  const rewards = await rewardsByIds(db, tenantId, [...new Set(wanted)]);
  const out: Event[] = [];
  for (const e of events) {
    const definition = e.definitionId ? await catalog.get(tenantId, e.definitionId) : undefined;
    out.push(eventMessage(e, { reward: rewards.get(str(e.payload["reward_id"])), definition }));
  }
  return out;
}
