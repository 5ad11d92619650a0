// Shared by the seed replay tests (test/e2e/seed-*.test.ts): instants written as in the seed documents, end-user
// JWTs as the Phoenix Query Gateway issues them, and activity recorded at a given server time.
import { timestampFromMs, timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { SignJWT } from "jose";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import type { ActivityInputSchema } from "../../src/gen/kindling/v1/activity_pb.js";
import type { TestClock } from "../support/api.ts";

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

/** Milliseconds of an ISO-8601 instant, e.g. `at("2025-01-15T08:30:00Z")`. */
export const at = (iso: string): number => {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`bad instant ${iso}`);
  return ms;
};

/** A protobuf Timestamp of an ISO-8601 instant. */
export const ts = (iso: string): Timestamp => timestampFromMs(at(iso));

/** The ISO-8601 form of a protobuf Timestamp (undefined stays undefined), for readable assertions. */
export const iso = (t: Timestamp | undefined): string | undefined => (t ? new Date(timestampMs(t)).toISOString() : undefined);

/** An HS256 end-user token: tenant in `tenant_id`, member external id in `sub` (Phoenix: "resolved from the token"). */
export async function endUserToken(secret: string, tenantId: string, memberExternalId: string, nowMs: number): Promise<string> {
  return new SignJWT({ tenant_id: tenantId })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(memberExternalId)
    .setIssuedAt(Math.floor(nowMs / 1000))
    .setExpirationTime(Math.floor(nowMs / 1000) + 3600)
    .sign(new TextEncoder().encode(secret));
}

export type ActivityInit = MessageInitShape<typeof ActivityInputSchema>;

/**
 * Moves the server clock to the activity's occur time (the member acts "now"), then records it. Returns the
 * RecordActivity response.
 */
export async function recordAt(activities: Client<typeof ActivityService>, clock: TestClock, when: string, activity: ActivityInit, language = "") {
  clock.set(at(when));
  return activities.recordActivity({ activity: { occurTime: ts(when), ...activity }, language });
}

/** `YYYY-MM-DD` of the nth day after `firstDay` (0-based). */
export function dayAfter(firstDay: string, n: number): string {
  return new Date(at(`${firstDay}T00:00:00Z`) + n * DAY).toISOString().slice(0, 10);
}
