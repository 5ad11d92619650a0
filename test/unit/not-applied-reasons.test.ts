// Every reason the engine has for storing an activity without applying it has its own name in the API's
// NotAppliedReason enum: UNSPECIFIED means "applied" and never answers a result that was not applied.
import { describe, expect, it } from "vitest";
import { NOT_APPLIED_REASONS } from "../../src/engine/ingest/activity-ingestor.ts";
import { NOT_APPLIED_REASON_TO_PROTO } from "../../src/api/mappers/activity.mapper.ts";
import { NotAppliedReason } from "../../src/gen/kindling/v1/activity_pb.js";

describe("not-applied reasons", () => {
  it("not_applied/every_engine_reason_has_its_own_named_api_reason", () => {
    const mapped = NOT_APPLIED_REASONS.map((reason) => NOT_APPLIED_REASON_TO_PROTO[reason]);
    for (const [i, value] of mapped.entries()) {
      expect(value, NOT_APPLIED_REASONS[i]).not.toBe(NotAppliedReason.UNSPECIFIED);
      // The API's name is the engine's: NOT_APPLIED_REASON_<reason>.
      expect(NotAppliedReason[value], NOT_APPLIED_REASONS[i]).toBe(NOT_APPLIED_REASONS[i]);
    }
    expect(new Set(mapped).size).toBe(NOT_APPLIED_REASONS.length);
  });
});
