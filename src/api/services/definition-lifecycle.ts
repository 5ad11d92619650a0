// The definition lifecycle as data: which verb moves which state where, and which fields each state freezes.
// PRODUCT §3: window, condition and milestone rules of a LIVE definition cannot be changed in place.
import type { DefinitionState } from "../../db/entities/index.ts";

export type LifecycleAction = "PUBLISH" | "PAUSE" | "RESUME" | "ARCHIVE";

const transitions: Record<LifecycleAction, Partial<Record<DefinitionState, DefinitionState>>> = {
  PUBLISH: { DRAFT: "LIVE" },
  PAUSE: { LIVE: "PAUSED" },
  RESUME: { PAUSED: "LIVE" },
  ARCHIVE: { DRAFT: "ARCHIVED", LIVE: "ARCHIVED", PAUSED: "ARCHIVED" },
};

export function nextState(from: DefinitionState, action: LifecycleAction): DefinitionState | undefined {
  return transitions[action][from];
}

const rulesThatDefineProgress = ["window", "condition", "milestones", "grace_duration", "completion_target", "start_time"];

export function lockedFieldsFor(state: DefinitionState): readonly string[] {
  return state === "DRAFT" ? [] : rulesThatDefineProgress;
}
