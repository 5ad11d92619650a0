// Events behind retention (issue 15, item 1): once retention removed a tenant's older events, a ListEvents page token
// or a WatchEvents cursor from before them answers FAILED_PRECONDITION with reason CURSOR_EXPIRED instead of
// silently skipping what is gone; a cursor at or after the last removed event, and other tenants' cursors, go on.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import type pg from "pg";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { EventService } from "../../src/gen/kindling/v1/event_service_pb.js";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { applyRetention } from "../../src/engine/retention/retention.ts";
import { startTestApi, type Credentials, type TestApi } from "../support/api.ts";
import { createLiveDefinition, DAY, errorMetadata, expectFailure, sqlPool } from "../support/fixtures.ts";

let api: TestApi;
let db: pg.Pool;
let other: Credentials;

beforeAll(async () => {
  api = await startTestApi({ label: "event_retention" });
  db = sqlPool(api.databaseUrl);
  other = await api.newTenant("event retention other");
});
afterAll(async () => {
  await db?.end();
  await api?.close();
});

async function recordThree(auth: Credentials, prefix: string): Promise<void> {
  const def = await createLiveDefinition(api.client(DefinitionService, auth), { name: `Retained ${prefix}` });
  for (const n of [1, 2, 3]) {
    await api.client(ActivityService, auth).recordActivity({
      activity: { memberRef: { case: "memberExternalId", value: `${prefix}-${n}` }, target: { case: "definitionId", value: def.id }, uniqueIdentifier: `${prefix}-${n}` },
    });
  }
}

/** Reads the stream until its first message or error. */
async function firstOfWatch(call: AsyncIterable<unknown>): Promise<unknown> {
  for await (const message of call) return message;
  return undefined;
}

describe("events behind retention", () => {
  it("events/cursor_behind_retention_is_cursor_expired", async () => {
    await recordThree(api.admin, "old");
    await recordThree(other, "kept");
    const events = api.client(EventService);
    const firstPage = await events.listEvents({ pageSize: 1 });
    expect(firstPage.nextPageToken).not.toBe("");
    const oldCursor = firstPage.events[0]!.cursor;
    const otherFirst = await api.client(EventService, other).listEvents({ pageSize: 1 });

    // Thirty days on, this tenant keeps a week: its events go (row deletes; the other tenant keeps everything).
    await api.client(TenantService).setDataRetention({ retentionDays: 7 });
    const pass = await applyRetention(db, Date.now() + 30 * DAY, { defaultDays: null });
    expect(pass.eventsDeleted).toBe(3);
    expect(pass.droppedPartitions).toEqual([]);

    const listed = await expectFailure(events.listEvents({ pageSize: 1, pageToken: firstPage.nextPageToken }), Code.FailedPrecondition, "CURSOR_EXPIRED");
    expect(errorMetadata(listed)).toMatchObject({ cursor: oldCursor });
    await expectFailure(firstOfWatch(api.client(EventService, api.admin, "grpc").watchEvents({ afterCursor: oldCursor })), Code.FailedPrecondition, "CURSOR_EXPIRED");
    await expectFailure(firstOfWatch(events.watchEvents({ afterCursor: oldCursor })), Code.FailedPrecondition, "CURSOR_EXPIRED");

    // From the oldest resumable cursor on, and without a cursor, reads go on (nothing of this tenant is left).
    const floor = errorMetadata(listed).oldest_resumable_cursor!;
    expect(BigInt(floor)).toBeGreaterThan(BigInt(oldCursor));
    expect((await events.listEvents({})).events).toEqual([]);
    // The other tenant's cursor is not behind anything of theirs that was removed.
    const rest = await api.client(EventService, other).listEvents({ pageSize: 10, pageToken: otherFirst.nextPageToken });
    expect(rest.events.map((e) => e.memberExternalId)).toEqual(["kept-2", "kept-3"]);
  });

  it("tenant/data_retention_override_is_set_read_cleared_and_refused_below_a_week", async () => {
    const tenants = api.client(TenantService, other);
    expect(await tenants.getDataRetention({})).toMatchObject({ retentionDays: 0, tenantOverride: false });
    await expectFailure(tenants.setDataRetention({ retentionDays: 3 }), Code.InvalidArgument, "INVALID_RETENTION");
    await expectFailure(tenants.setDataRetention({ retentionDays: 40_000 }), Code.InvalidArgument, "INVALID_REQUEST");
    expect(await tenants.getDataRetention({})).toMatchObject({ retentionDays: 0, tenantOverride: false });
    expect(await tenants.setDataRetention({ retentionDays: 30 })).toMatchObject({ retentionDays: 30, tenantOverride: true });
    expect(await tenants.getDataRetention({})).toMatchObject({ retentionDays: 30, tenantOverride: true });
    const stored = await db.query("select retention_days from tenant_retention where tenant_id = $1", [other.tenantId]);
    expect(stored.rows).toEqual([{ retention_days: 30 }]);
    expect(await tenants.setDataRetention({ retentionDays: 0 })).toMatchObject({ retentionDays: 0, tenantOverride: false });
    expect((await db.query("select 1 from tenant_retention where tenant_id = $1", [other.tenantId])).rows).toEqual([]);
  });
});
