// A definition as the catalog holds it (src/engine/definitions/definition-catalog.ts), made from its message without
// a database: for the tests and benches of code that reads catalog definitions (answers, encodings, the progress
// cache).
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { CalendarPeriod, ConditionType, StreakDefinitionSchema, type StreakDefinition } from "../../src/gen/kindling/v1/definition_pb.js";
import { rulesFromMessage } from "../../src/engine/definitions/definition-rules.ts";
import type { CatalogDefinition } from "../../src/engine/definitions/definition-catalog.ts";

/** A daily UTC definition's message (one activity a day unless `init` says otherwise), without milestones. */
export function dailyDefinitionMessage(init: Exclude<MessageInitShape<typeof StreakDefinitionSchema>, StreakDefinition> = {}): StreakDefinition {
  return create(StreakDefinitionSchema, {
    id: "00000000-0000-4000-8000-000000000002",
    name: "Daily",
    window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
    condition: { type: ConditionType.COUNT, min: 1 },
    ...init,
  });
}

/** A LIVE definition of tenant "t", version 1 unless given, with no schedule and no pauses. */
export function catalogDefinition(message: StreakDefinition, options: { readonly eventTypes?: readonly string[]; readonly version?: number } = {}): CatalogDefinition {
  return {
    id: message.id, tenantId: "t", state: "LIVE", version: options.version ?? 1, message, rules: rulesFromMessage(message),
    eventTypes: options.eventTypes ?? [], startAt: null, endAt: null, pauses: [],
  };
}
