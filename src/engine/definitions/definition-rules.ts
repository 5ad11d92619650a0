// kindling.v1.StreakDefinition -> the domain's StreakRules. The stored definition is its proto JSON, so the
// engine (ingest, reads, sweeps) derives the rules from it here, below the API layer that also uses it.
import {
  CalendarPeriod,
  ConditionType,
  RewardKind,
  Weekday,
  type Display,
  type StreakDefinition as StreakDefinitionMessage,
} from "../../gen/kindling/v1/definition_pb.js";
import type { Duration } from "@bufbuild/protobuf/wkt";
import { LOYALTEEZ_MULTIPLIER_TIERS, type Milestone, type RewardKind as DomainRewardKind, type StreakRules } from "../../domain/rules.ts";
import type { Period } from "../../domain/calendar-window.ts";
import type { DisplayConfig, DisplayTexts } from "../../domain/display-templates.ts";

const seconds = (d: Duration | undefined): number | undefined =>
  d === undefined ? undefined : Number(d.seconds) + Math.round(d.nanos / 1e9);

const periods: Partial<Record<CalendarPeriod, Period>> = {
  [CalendarPeriod.DAILY]: "DAILY",
  [CalendarPeriod.WEEKLY]: "WEEKLY",
  [CalendarPeriod.MONTHLY]: "MONTHLY",
};

const rewardKinds: Partial<Record<RewardKind, DomainRewardKind>> = {
  [RewardKind.POINTS]: "POINTS",
  [RewardKind.COUPON]: "COUPON",
  [RewardKind.BADGE]: "BADGE",
  [RewardKind.FREEZE]: "FREEZE",
  [RewardKind.CUSTOM]: "CUSTOM",
};

/**
 * The domain's rules for a definition. Defaults that a streak product is expected to have are filled here:
 * UTC, 00:00 reset and Monday week start for calendar windows (as the Phoenix doc's example), and the Loyalteez
 * multiplier tiers when none are configured.
 */
export function rulesFromMessage(m: StreakDefinitionMessage): StreakRules {
  const w = m.window?.kind;
  const window: StreakRules["window"] =
    w?.case === "rolling"
      ? { type: "ROLLING", minSpacingSeconds: seconds(w.value.minSpacingDuration) ?? 0, maxGapSeconds: seconds(w.value.maxGapDuration) ?? 0 }
      : {
          type: "CALENDAR",
          period: (w?.case === "calendar" ? periods[w.value.period] : undefined) ?? ("UNSPECIFIED" as Period),
          timezone: w?.case === "calendar" && w.value.timeZone !== "" ? w.value.timeZone : "UTC",
          useMemberTimezone: w?.case === "calendar" ? w.value.useMemberTimeZone : false,
          resetTime: w?.case === "calendar" && w.value.resetTime !== "" ? w.value.resetTime : "00:00",
          weekStart: w?.case === "calendar" && w.value.weekStart !== Weekday.UNSPECIFIED ? w.value.weekStart : 1,
        };
  const conditionType = m.condition?.type === ConditionType.SUM ? "SUM" : m.condition?.type === ConditionType.DISTINCT ? "DISTINCT" : "COUNT";
  const milestones: Milestone[] = m.milestones.map((ms) => {
    const r = ms.reward;
    const kind = r ? rewardKinds[r.kind] : undefined;
    return {
      threshold: ms.threshold,
      repeatable: ms.repeatable,
      ...(r && kind
        ? {
            reward: {
              kind,
              ...(kind === "POINTS" ? { value: r.points } : kind === "FREEZE" ? { value: r.freezeCount || 1 } : {}),
              ...(r.name ? { name: r.name } : {}),
              ...(r.value ? { description: r.value } : {}),
            },
          }
        : {}),
      ...(r?.badge ? { badge: { name: r.badge.name, ...(r.badge.imageUrl ? { imageUrl: r.badge.imageUrl } : {}) } } : {}),
    };
  });
  return {
    window,
    condition: { type: conditionType, min: m.condition?.min ?? 1 },
    graceSeconds: seconds(m.graceDuration) ?? 0,
    milestones,
    multiplierTiers: m.multiplierTiers.length > 0 ? m.multiplierTiers.map((t) => ({ minCount: t.minCount, multiplier: t.multiplier })) : LOYALTEEZ_MULTIPLIER_TIERS,
    completionTarget: m.completionTarget,
    ...(m.freezePolicy ? { freezePolicy: { maxHeld: m.freezePolicy.maxHeld, initial: m.freezePolicy.initialGrant } } : {}),
    ...(m.repairDuration ? { repairWindowSeconds: seconds(m.repairDuration) } : {}),
    ...(m.atRiskLeadDuration ? { atRiskLeadSeconds: seconds(m.atRiskLeadDuration) } : {}),
    ...(m.display ? { display: displayFromMessage(m.display) } : {}),
  };
}

/** Empty strings mean "not set" in proto3, so they are left out and the domain's fallback chain fills them. */
export function displayFromMessage(d: Display): DisplayConfig {
  const texts: Record<string, DisplayTexts> = {};
  for (const l of d.localizations) {
    const entries: [keyof DisplayTexts, string][] = [
      ["title", l.title], ["description", l.description], ["icon", l.iconUrl],
      ["inProgressLabel", l.inProgressLabel], ["completedLabel", l.completedLabel], ["notStartedLabel", l.notStartedLabel],
      ["brokenLabel", l.brokenLabel], ["viewDetailsButtonText", l.viewDetailsButtonText],
      ["nonMilestoneNextToBeAchievedMessage", l.nonMilestoneNextToBeAchievedMessage],
      ["nonMilestoneAchievedMessage", l.nonMilestoneAchievedMessage],
      ["completedStreakMessage", l.completedStreakMessage],
      ["brokenStreakMessage", l.brokenStreakMessage],
      ["milestoneNextToBeAchievedMessage", l.milestoneNextToBeAchievedMessage],
      ["milestoneAchievedMessage", l.milestoneAchievedMessage],
    ];
    texts[l.language] = Object.fromEntries(entries.filter(([, v]) => v !== ""));
  }
  return { ...(d.defaultLanguage ? { defaultLanguage: d.defaultLanguage } : {}), texts };
}

