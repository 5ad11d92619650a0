// Domain effects as persisted events (PRODUCT §2 Event). Each carries a dedupe key derived from what happened,
// not from when it was noticed, so re-running a sweep or replaying an activity inserts nothing new.
import type { StreakEffect } from "../../domain/streak-machine.ts";
import type { StreakEventType } from "../../db/entities/index.ts";
import type { PlannedReward } from "../rewards/reward-plan.ts";

export interface PlannedEvent {
  readonly tenantId: string;
  readonly type: StreakEventType;
  readonly memberId: string;
  readonly definitionId: string;
  readonly dedupeKey: string;
  readonly payload: Record<string, unknown>;
  readonly occurredAt: number;
}

export interface EventOwner {
  readonly tenantId: string;
  readonly memberId: string;
  readonly memberExternalId: string;
  readonly definitionId: string;
  readonly memberStreakId: string;
  /** The activity whose recording produced the effects (StreakIncrementedPayload.activity_id); null for sweeps. */
  readonly activityId?: string | null | undefined;
  /** The domain's APPLIED outcome said the activity restarted a broken streak (StreakIncrementedPayload.was_reset). */
  readonly wasReset?: boolean | undefined;
}

export function eventsForEffects(owner: EventOwner, effects: readonly StreakEffect[], rewards: readonly PlannedReward[], now: number): PlannedEvent[] {
  const base = { tenantId: owner.tenantId, memberId: owner.memberId, definitionId: owner.definitionId };
  const common = { user_id: owner.memberExternalId, definition_id: owner.definitionId };
  const k = (...parts: (string | number)[]) => [owner.memberStreakId, ...parts].join(":");
  const out: PlannedEvent[] = [];
  for (const e of effects) {
    switch (e.type) {
      case "streak.incremented":
        out.push({ ...base, type: e.type, dedupeKey: k("inc", e.windowKey, e.count), payload: { ...common, new_count: e.count, previous_count: e.previousCount, window_key: e.windowKey, activity_id: owner.activityId ?? null, was_reset: owner.wasReset === true && e.count === 1 }, occurredAt: now });
        break;
      case "streak.broken":
        out.push({ ...base, type: e.type, dedupeKey: k("broken", e.windowKey), payload: { ...common, final_count: e.finalCount, window_key: e.windowKey }, occurredAt: e.brokenAt });
        break;
      case "streak.freeze_used":
        out.push({ ...base, type: e.type, dedupeKey: k("freeze", e.windowKey), payload: { ...common, window_key: e.windowKey, freezes_used: e.freezesUsed, freezes_left: e.freezesLeft }, occurredAt: now });
        break;
      case "streak.completed":
        out.push({ ...base, type: e.type, dedupeKey: k("completed", e.cycle), payload: { ...common, cycle: e.cycle, count: e.count }, occurredAt: now });
        break;
      case "streak.milestone_reached": {
        const reward = rewards.find((r) => r.threshold === e.threshold && r.cycle === e.cycle && r.repetition === e.occurrence);
        out.push({
          ...base, type: e.type, dedupeKey: k("milestone", e.cycle, e.threshold, e.occurrence),
          payload: { ...common, threshold: e.threshold, cycle: e.cycle, reward_id: reward?.id ?? null, count: e.count }, occurredAt: e.earnedAt,
        });
        if (reward?.state === "ISSUED") {
          out.push({ ...base, type: "reward.issued", dedupeKey: `reward:${reward.id}:issued`, payload: { ...common, reward_id: reward.id, kind: reward.kind }, occurredAt: now });
        }
        break;
      }
      case "streak.repaired":
        // A repair is a one-off API call in its own transaction, never re-run by a sweep: its time keeps it unique.
        out.push({ ...base, type: e.type, dedupeKey: k("repaired", e.restoredCount, now), payload: { ...common, restored_count: e.restoredCount }, occurredAt: now });
        break;
    }
  }
  return out;
}
