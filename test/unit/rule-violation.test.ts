// Rule violations found by the domain are reported in the API's field names (src/api/mappers/rule-violation.mapper.ts).
import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { StreakDefinitionSchema } from "../../src/gen/kindling/v1/definition_pb.js";
import { DomainError } from "../../src/domain/domain-error.ts";
import { ruleViolation } from "../../src/api/mappers/rule-violation.mapper.ts";

const definition = create(StreakDefinitionSchema, { display: { localizations: [{ language: "en" }, { language: "fr" }] } });
const violation = (reason: DomainError["reason"], field: string, message: string) => ruleViolation(new DomainError(reason, field, message), definition).violations[0];

describe("rule violations in API names", () => {
  it("rule_violation/domain_fields_and_words_become_api_fields", () => {
    expect(violation("INVALID_DISPLAY", "display.texts.fr.nonMilestoneAchievedMessage", "nonMilestoneAchievedMessage is at most 256 characters")).toMatchObject({
      field: "definition.display.localizations[1].non_milestone_achieved_message",
      description: "non_milestone_achieved_message is at most 256 characters",
    });
    expect(violation("INVALID_DISPLAY", "display.texts.en.icon", "icon is at most 2048 characters")).toMatchObject({ field: "definition.display.localizations[0].icon_url", description: "icon_url is at most 2048 characters" });
    expect(violation("INVALID_FREEZE_POLICY", "freezePolicy", "freeze policy needs whole numbers with 0 <= initial <= maxHeld <= 1000")).toMatchObject({
      field: "definition.freeze_policy",
      description: "freeze policy needs whole numbers with 0 <= initial_grant <= max_held <= 1000",
    });
    expect(violation("INVALID_MILESTONE", "milestones[2].reward.value", "a FREEZE reward grants a whole number of freezes >= 1")?.field).toBe("definition.milestones[2].reward.freeze_count");
    expect(violation("INVALID_GRACE", "graceSeconds", "grace must be a whole number of seconds >= 0")?.field).toBe("definition.grace_duration");
    expect(violation("INVALID_RESET_TIME", "window.resetTime", "reset time must be HH:MM")?.field).toBe("definition.window.calendar.reset_time");
    expect(violation("INVALID_MULTIPLIER_TIER", "multiplierTiers[0]", "tiers need a whole minCount >= 0 and a multiplier > 0")).toMatchObject({
      field: "definition.multiplier_tiers[0]",
      description: "tiers need a whole min_count >= 0 and a multiplier > 0",
    });
  });
});
