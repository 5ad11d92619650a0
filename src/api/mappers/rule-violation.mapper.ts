// The domain validates rules in its own vocabulary (window.resetTime, minSpacingSeconds, display.texts.fr.title);
// a caller sent a StreakDefinition, so a broken rule is reported with the API field it came from
// (definition.window.calendar.reset_time, min_spacing_duration, definition.display.localizations[1].title).
import { Code } from "@connectrpc/connect";
import type { DomainError } from "../../domain/domain-error.ts";
import type { StreakDefinition } from "../../gen/kindling/v1/definition_pb.js";
import { ApiError } from "../errors.ts";

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Display text keys whose API field is not simply their snake_case form. */
const DISPLAY_FIELDS: Readonly<Record<string, string>> = { icon: "icon_url" };

/** Domain rule fields (rules.ts) -> StreakDefinition fields. */
const FIELDS: Readonly<Record<string, string>> = {
  "window.type": "window",
  "window.period": "window.calendar.period",
  "window.timezone": "window.calendar.time_zone",
  "window.resetTime": "window.calendar.reset_time",
  "window.weekStart": "window.calendar.week_start",
  // The one rolling-window rule the schema leaves to the domain: a minimum spacing of at least a second.
  window: "window.rolling.min_spacing_duration",
  condition: "condition",
  "condition.min": "condition.min",
  graceSeconds: "grace_duration",
  completionTarget: "completion_target",
  freezePolicy: "freeze_policy",
  repairWindowSeconds: "repair_duration",
  atRiskLeadSeconds: "at_risk_lead_duration",
  "display.defaultLanguage": "display.default_language",
};

/** Domain words in messages -> API field names. */
const WORDS: readonly [RegExp, string][] = [
  [/\bminSpacingSeconds\b/g, "min_spacing_duration"],
  [/\bmaxGapSeconds\b/g, "max_gap_duration"],
  [/\bminCount\b/g, "min_count"],
  [/\bmaxHeld\b/g, "max_held"],
  [/\binitial\b/g, "initial_grant"],
  [/\bvalueDecimals\b/g, "value_decimals"],
];

export function apiRuleField(field: string, definition: StreakDefinition): string {
  const mapped = FIELDS[field];
  if (mapped !== undefined) return `definition.${mapped}`;
  const milestone = /^milestones\[(\d+)\]\.(threshold|reward\.value)$/.exec(field);
  if (milestone) return `definition.milestones[${milestone[1]}].${milestone[2] === "threshold" ? "threshold" : "reward.freeze_count"}`;
  const tier = /^multiplierTiers\[(\d+)\]$/.exec(field);
  if (tier) return `definition.multiplier_tiers[${tier[1]}]`;
  const text = /^display\.texts\.([^.]+)(?:\.(\w+))?$/.exec(field);
  if (text) {
    const index = definition.display?.localizations.findIndex((l) => l.language.toLowerCase() === text[1]!.toLowerCase()) ?? -1;
    const at = index >= 0 ? `definition.display.localizations[${index}]` : "definition.display.localizations";
    return text[2] === undefined ? at : `${at}.${DISPLAY_FIELDS[text[2]] ?? snake(text[2])}`;
  }
  return `definition.${snake(field)}`;
}

export function apiRuleMessage(message: string): string {
  let out = message;
  for (const [word, name] of WORDS) out = out.replace(word, name);
  // Display text keys named in messages ("nonMilestoneAchievedMessage is at most 256 characters").
  return out.replace(/^(\w+) is at most/, (_, key: string) => `${DISPLAY_FIELDS[key] ?? snake(key)} is at most`);
}

/** A rule violation of `definition` as the INVALID_ARGUMENT the API answers, in the API's field names. */
export function ruleViolation(error: DomainError, definition: StreakDefinition): ApiError {
  const field = apiRuleField(error.field, definition);
  const description = error.reason === "INVALID_ROLLING_WINDOW" ? "min_spacing_duration must be at least 1 second and less than max_gap_duration" : apiRuleMessage(error.message);
  return new ApiError(Code.InvalidArgument, error.reason, `${field}: ${description}`, { violations: [{ field, description, reason: error.reason }], cause: error });
}
