// Small builders shared by the API tests: live definitions, activity on given days, typed error assertions and
// direct SQL for setting up states the API cannot reach on its own (a FAILED reward, a passed deadline).
import { expect } from "vitest";
import pg from "pg";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ConnectError, type Code, type Client } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { CalendarPeriod, ConditionType, type StreakDefinition } from "../../src/gen/kindling/v1/definition_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { StreakDefinitionSchema } from "../../src/gen/kindling/v1/definition_pb.js";

export const DAY = 86_400_000;
/** Midnight UTC today, so "day -1" and "day 0" are consecutive daily windows. */
export const today = () => Math.floor(Date.now() / DAY) * DAY;

export async function createLiveDefinition(defs: Client<typeof DefinitionService>, init: Exclude<MessageInitShape<typeof StreakDefinitionSchema>, StreakDefinition>): Promise<StreakDefinition> {
  const { definition } = await defs.createDefinition({
    definition: {
      eventTypes: [],
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 1 },
      ...init,
    },
  });
  const published = await defs.publishDefinition({ definitionId: definition!.id });
  return published.definition!;
}

/** Records one activity for `member` on `definitionId`, dated `dayOffset` days from today at 01:00 UTC. */
export async function activityOnDay(activities: Client<typeof ActivityService>, member: string, definitionId: string, dayOffset: number, key = `${member}-${definitionId}-${dayOffset}`) {
  return activities.recordActivity({
    activity: {
      memberRef: { case: "memberExternalId", value: member },
      target: { case: "definitionId", value: definitionId },
      occurTime: timestampFromMs(Math.min(today() + dayOffset * DAY + 3_600_000, Date.now())),
      uniqueIdentifier: key,
    },
  });
}

/** Awaits a call that must fail; checks its code and ErrorInfo reason and returns the error for further checks. */
export async function expectFailure(call: Promise<unknown>, code: Code, reason: string): Promise<ConnectError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected ${reason}`).toBeInstanceOf(ConnectError);
  const ce = error as ConnectError;
  const info = ce.findDetails(ErrorInfoSchema)[0];
  expect({ code: ce.code, reason: info?.reason }).toEqual({ code, reason });
  return ce;
}

export function errorMetadata(error: ConnectError): Record<string, string> {
  return error.findDetails(ErrorInfoSchema)[0]?.metadata ?? {};
}

export function sqlPool(databaseUrl: string): pg.Pool {
  return new pg.Pool({ connectionString: databaseUrl, max: 2 });
}

/**
 * Waits until a session of this database waits for a lock in a statement whose text is LIKE one of `queries`
 * (pg_stat_activity), so a test can build a lock conflict step by step; `what` names it when 10 s pass first.
 */
export async function untilWaitingForLock(pool: pg.Pool, queries: readonly string[], what: string): Promise<void> {
  const waiting = async () => (await pool.query<{ n: number }>(
    "select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like any ($1::text[])",
    [queries],
  )).rows[0]!.n;
  await expect.poll(waiting, { timeout: 10_000, interval: 20, message: `${what} never waited for a lock` }).toBeGreaterThan(0);
}

/** SQL true when `column` (a uuid) has the UUIDv7 layout: version 7 and the RFC 4122 variant (migration 0020). */
export const isUuidV7Sql = (column: string): string =>
  `(substr(${column}::text, 15, 1) = '7' and substr(${column}::text, 20, 1) in ('8', '9', 'a', 'b'))`;
