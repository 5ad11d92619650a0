// The progress cache (src/api/mappers/progress-cache.ts) answers exactly what progressMessage computes afresh, at
// every instant: read every few minutes over days (windows opening and closing, graces ending, at-risk instants),
// with writes in between, reward facts that change and a definition that is replaced.
import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { StreakDefinitionSchema, CalendarPeriod, ConditionType, RewardKind, FulfilmentMode } from "../../src/gen/kindling/v1/definition_pb.js";
import { catalogDefinition } from "../support/catalog.ts";
import type { CatalogDefinition } from "../../src/engine/definitions/definition-catalog.ts";
import { applyActivity, initialState, type MemberStreakState } from "../../src/domain/index.ts";
import { progressMessage, type RewardFacts } from "../../src/api/mappers/progress.mapper.ts";
import { createProgressCache } from "../../src/api/mappers/progress-cache.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const DAY0 = Date.UTC(2026, 2, 27); // the European DST change (Europe/Berlin) falls on the 29th

function definition(version: number, extra: Record<string, unknown> = {}): CatalogDefinition {
  const message = create(StreakDefinitionSchema, {
    id: "00000000-0000-4000-8000-000000000001",
    name: `Daily v${version}`,
    window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "Europe/Berlin", resetTime: "04:00" } } },
    condition: { type: ConditionType.SUM, min: 10 },
    graceDuration: { seconds: 2n * 3600n },
    atRiskLeadDuration: { seconds: 5n * 3600n },
    milestones: [
      { threshold: 2, reward: { kind: RewardKind.POINTS, points: 5, fulfilmentMode: FulfilmentMode.CLAIM } },
      { threshold: 3, reward: { kind: RewardKind.BADGE, badge: { name: "Three" } } },
    ],
    ...extra,
  });
  return catalogDefinition(message, { eventTypes: ["e"], version });
}

describe("progress cache", () => {
  it("progress_cache/answers_equal_fresh_answers_at_every_instant", () => {
    let def = definition(1);
    const cache = createProgressCache();
    let state: MemberStreakState = initialState(def.rules);
    let updatedAt = DAY0;
    let rewards: RewardFacts = { unclaimed: [], total: 0 };
    // Activities (value 6 or 12) at these minutes; a SUM of 10 counts a window.
    const writes = new Map<number, number>([[10 * 60, 6], [14 * 60, 6], [26 * 60, 12], [75 * 60, 6], [99 * 60, 12]]);
    const end = DAY0 + 5 * DAY;
    let n = 0;
    for (let now = DAY0; now < end; now += 7 * MINUTE + 1_337) {
      const minute = Math.floor((now - DAY0) / MINUTE);
      for (const [at, value] of writes) {
        if (at > minute) continue;
        state = applyActivity(def.rules, state, { id: `a${at}`, occurredAt: DAY0 + at * MINUTE, value }, { now }).state;
        updatedAt = now;
        writes.delete(at);
      }
      if (minute >= 40 * 60 && rewards.total === 0) rewards = { unclaimed: [{ id: "r1", threshold: 2, kind: "POINTS", points: 5, value: "", claimDeadlineAt: null }], total: 1 };
      if (minute >= 80 * 60 && def.version === 1) def = definition(2, { name: "Renamed" });
      const stored = { id: "s1", state, stateText: JSON.stringify(state), createdAt: DAY0, updatedAt };
      for (const language of [undefined, "de"]) {
        const cached = cache.message(def, "m1", stored, rewards, now, language);
        expect(cached).toEqual(progressMessage(def, "m1", stored, rewards, now, language));
        n++;
      }
    }
    const stats = cache.stats();
    expect(stats.hits + stats.misses).toBe(n);
    // Most reads were answered from the cache (misses: writes, window and grace ends, at-risk instants, new definition).
    expect(stats.hits).toBeGreaterThan(n * 0.8);
  });

  it("progress_cache/answer_can_be_changed_without_changing_the_next_one", () => {
    const def = definition(1);
    const cache = createProgressCache();
    const state = applyActivity(def.rules, initialState(def.rules), { id: "a", occurredAt: DAY0 + HOUR, value: 12 }, { now: DAY0 + HOUR }).state;
    const stored = { id: "s1", state, stateText: JSON.stringify(state), createdAt: DAY0, updatedAt: DAY0 + HOUR };
    const none = { unclaimed: [], total: 0 };
    // Read at 05:00 and 06:00 UTC: inside one span (the window opened at 03:00 UTC, yesterday's grace ended at 05:00).
    const first = cache.message(def, "m1", stored, none, DAY0 + 5 * HOUR, undefined);
    first.currentCount = 99;
    first.team = { $typeName: "kindling.v1.TeamProgress" } as never;
    const second = cache.message(def, "m1", stored, none, DAY0 + 6 * HOUR, undefined);
    second.currentCount = 98;
    const third = cache.message(def, "m1", stored, none, DAY0 + 6 * HOUR, undefined);
    expect(third).toEqual(progressMessage(def, "m1", stored, none, DAY0 + 6 * HOUR, undefined));
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 1 });
  });

  it("progress_cache/same_state_text_for_another_row_or_time_is_not_reused", () => {
    const def = definition(1);
    const cache = createProgressCache();
    const state = initialState(def.rules);
    const none = { unclaimed: [], total: 0 };
    const stored = { id: "s1", state, stateText: JSON.stringify(state), createdAt: DAY0, updatedAt: DAY0 };
    cache.message(def, "m1", stored, none, DAY0 + HOUR, undefined);
    const touched = cache.message(def, "m1", { ...stored, updatedAt: DAY0 + 1 }, none, DAY0 + HOUR, undefined);
    expect(touched.updateTime).toEqual(progressMessage(def, "m1", { ...stored, updatedAt: DAY0 + 1 }, none, DAY0 + HOUR, undefined).updateTime);
    const renamed = cache.message(def, "m2", { ...stored, updatedAt: DAY0 + 1 }, none, DAY0 + HOUR, undefined);
    expect(renamed.memberExternalId).toBe("m2");
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 3 });
  });
});
