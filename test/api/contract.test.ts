// The API contract as a black-box client sees it: Connect JSON over HTTP/1.1 to a running server, requests
// written by hand (bytes, not a generated client), answers read as JSON with their google.rpc details decoded.
// Bad input is refused with INVALID_ARGUMENT naming the API field and stores nothing; every activity that is not
// applied says why; errors carry an ErrorInfo reason.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { fromBinary } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { BadRequestSchema, ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ConditionType } from "../../src/gen/kindling/v1/definition_pb.js";
import { startTestApi, type TestApi } from "../support/api.ts";
import { createLiveDefinition, sqlPool } from "../support/fixtures.ts";

/** The server's clock runs this far from the real one (the schema rules check occur_time against real time). */
let clockOffsetMs = 0;
let api: TestApi;
let pool: pg.Pool;
let sumDefinitionId: string;

beforeAll(async () => {
  api = await startTestApi({ label: "contract", now: () => Date.now() + clockOffsetMs });
  pool = sqlPool(api.databaseUrl);
  const defs = api.client(DefinitionService);
  sumDefinitionId = (await createLiveDefinition(defs, { name: "Spend $50 a day", condition: { type: ConditionType.SUM, min: 50 } })).id;
});
afterAll(async () => {
  await pool?.end();
  await api?.close();
});

interface ConnectErrorJson {
  code: string;
  message: string;
  details?: { type: string; value: string }[];
}

interface Answer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- hand-written JSON answers, checked by shape
  json: any;
}

/** A Connect unary call with a raw body (a string is sent as UTF-8; bytes as they are). */
async function post(method: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${api.url}/kindling.v1.${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", apikey: api.admin.keyId, secretkey: api.admin.secret, ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, json: text === "" ? undefined : JSON.parse(text) };
}

function errorInfo(json: ConnectErrorJson) {
  const detail = json.details?.find((d) => d.type === "google.rpc.ErrorInfo");
  return detail ? fromBinary(ErrorInfoSchema, base64Decode(detail.value)) : undefined;
}

function violations(json: ConnectErrorJson) {
  const detail = json.details?.find((d) => d.type === "google.rpc.BadRequest");
  return detail ? fromBinary(BadRequestSchema, base64Decode(detail.value)).fieldViolations.map((v) => ({ field: v.field, description: v.description })) : [];
}

async function membersNamed(prefix: string): Promise<string[]> {
  const { rows } = await pool.query<{ external_id: string }>(
    "select external_id from member where tenant_id = $1 and starts_with(external_id, $2) order by external_id",
    [api.admin.tenantId, prefix],
  );
  return rows.map((r) => r.external_id);
}

const activity = (member: string, uid: string, extra: Record<string, unknown> = {}) => ({
  memberExternalId: member, definitionId: sumDefinitionId, uniqueIdentifier: uid, ...extra,
});

describe("values that cannot be counted are refused", () => {
  it("contract/negative_or_non_finite_value_is_invalid_argument_on_value_and_stores_nothing", async () => {
    // JSON numbers, and the ProtoJSON strings for the non-finite doubles.
    const values: unknown[] = [-1, -0.5, "NaN", "Infinity", "-Infinity"];
    for (const [i, value] of values.entries()) {
      const answer = await post("ActivityService/RecordActivity", JSON.stringify({ activity: activity(`neg-${i}`, `neg-${i}`, { value }) }));
      expect(answer.status, `value ${String(value)}`).toBe(400);
      expect(answer.json.code).toBe("invalid_argument");
      expect(errorInfo(answer.json)?.reason).toBe("INVALID_REQUEST");
      expect(violations(answer.json).map((v) => v.field)).toContain("activity.value");
    }
    // The batch RPC refuses the whole request, naming the item, and records none of it (not even the good item).
    const batch = await post(
      "ActivityService/RecordActivities",
      JSON.stringify({ activities: [activity("neg-batch-ok", "neg-batch-ok", { value: 10 }), activity("neg-batch-bad", "neg-batch-bad", { value: -3 })] }),
    );
    expect(batch.status).toBe(400);
    expect(violations(batch.json).map((v) => v.field)).toEqual(["activities[1].value"]);
    // Nothing was stored: no member (so no streak row and no activity).
    expect(await membersNamed("neg-")).toEqual([]);
    const { rowCount } = await pool.query("select 1 from activity where tenant_id = $1 and starts_with(unique_identifier, 'neg-')", [api.admin.tenantId]);
    expect(rowCount).toBe(0);
    // Zero is a value like any other.
    const zero = await post("ActivityService/RecordActivity", JSON.stringify({ activity: activity("zero-1", "zero-1", { value: 0 }) }));
    expect(zero.status).toBe(200);
    expect(zero.json.results[0].applied).toBe(true);
  });
});

describe("every activity that is not applied says why", () => {
  it("contract/future_dated_activity_is_not_applied_with_reason_in_future", async () => {
    // The server's clock is an hour behind: an activity dated now (real time, so within the schema's 5 minutes)
    // is an hour in the future for the streak.
    clockOffsetMs = -3_600_000;
    try {
      const answer = await post("ActivityService/RecordActivity", JSON.stringify({ activity: activity("future-1", "future-1", { value: 60, occurTime: new Date().toISOString() }) }));
      expect(answer.status).toBe(200);
      expect(answer.json.results[0]).toMatchObject({ notAppliedReason: "NOT_APPLIED_REASON_IN_FUTURE" });
      expect(answer.json.results[0].applied ?? false).toBe(false);
    } finally {
      clockOffsetMs = 0;
    }
  });

  it("contract/not_applied_results_always_carry_a_named_reason", async () => {
    const send = (uid: string, extra: Record<string, unknown> = {}) =>
      post("ActivityService/RecordActivity", JSON.stringify({ activity: activity("reasons-1", uid, extra) }));
    const outcomes = [
      await send("r-missing-value"),
      await send("r-counted", { value: 5 }),
      await send("r-counted", { value: 5 }),
      await send("r-too-late", { value: 5, occurTime: new Date(Date.now() - 3 * 86_400_000).toISOString() }),
    ];
    const reasons = outcomes.map((o) => {
      expect(o.status).toBe(200);
      const result = o.json.results[0];
      return result.applied ? "applied" : (result.notAppliedReason ?? "NOT_APPLIED_REASON_UNSPECIFIED");
    });
    expect(reasons).toEqual(["NOT_APPLIED_REASON_MISSING_VALUE", "applied", "NOT_APPLIED_REASON_DUPLICATE", "NOT_APPLIED_REASON_TOO_LATE"]);
  });
});
