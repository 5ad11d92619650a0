// The API contract as a black-box client sees it: Connect JSON over HTTP/1.1 to a running server, requests
// written by hand (bytes, not a generated client), answers read as JSON with their google.rpc details decoded.
// Bad input is refused with INVALID_ARGUMENT naming the API field and stores nothing; every activity that is not
// applied says why; errors carry an ErrorInfo reason.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SignJWT } from "jose";
import type pg from "pg";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { BadRequestSchema, ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService, RecordActivityRequestSchema } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { ConditionType } from "../../src/gen/kindling/v1/definition_pb.js";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { JwtAlgorithm } from "../../src/gen/kindling/v1/tenant_pb.js";
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

describe("activities dated too far ahead are refused", () => {
  it("contract/occur_time_over_5_minutes_ahead_is_invalid_argument_on_occur_time_and_stores_nothing", async () => {
    const ahead = (ms: number) => new Date(Date.now() + ms).toISOString();
    const one = await post("ActivityService/RecordActivity", JSON.stringify({ activity: activity("ahead-1", "ahead-1", { value: 5, occurTime: ahead(10 * 60_000) }) }));
    expect(one.status).toBe(400);
    expect(one.json.code).toBe("invalid_argument");
    expect(errorInfo(one.json)?.reason).toBe("INVALID_REQUEST");
    expect(violations(one.json)).toEqual([{ field: "activity.occur_time", description: "occur_time must not be more than 5 minutes in the future" }]);
    // In a batch, the item is named and nothing of the batch is stored; two broken rules of one item both appear.
    const batch = await post(
      "ActivityService/RecordActivities",
      JSON.stringify({ activities: [activity("ahead-ok", "ahead-ok", { value: 5 }), activity("ahead-2", "ahead-2", { value: -1, occurTime: ahead(3_600_000) })] }),
    );
    expect(batch.status).toBe(400);
    expect(violations(batch.json).map((v) => v.field).sort()).toEqual(["activities[1].occur_time", "activities[1].value"]);
    expect(await membersNamed("ahead-")).toEqual([]);
    // Within the 5 minutes a client's clock may be ahead, the activity is taken.
    const skewed = await post("ActivityService/RecordActivity", JSON.stringify({ activity: activity("ahead-3", "ahead-3", { value: 5, occurTime: ahead(60_000) }) }));
    expect(skewed.status).toBe(200);
  });

  it("contract/occur_time_not_after_2000_is_invalid_argument_on_occur_time", async () => {
    for (const occurTime of ["1970-01-01T00:00:00Z", "1999-12-31T23:59:59.999Z", "2000-01-01T00:00:00Z"]) {
      const answer = await post("ActivityService/RecordActivity", JSON.stringify({ activity: activity("y2k-1", `y2k-${occurTime}`, { value: 5, occurTime }) }));
      expect(answer.status, occurTime).toBe(400);
      expect(violations(answer.json), occurTime).toEqual([{ field: "activity.occur_time", description: "occur_time must be after 2000-01-01T00:00:00Z" }]);
    }
    expect(await membersNamed("y2k-")).toEqual([]);
    // A nanosecond later is a valid time (far too late for any window: answered, not applied).
    const later = await post("ActivityService/RecordActivity", JSON.stringify({ activity: activity("y2k-2", "y2k-2", { value: 5, occurTime: "2000-01-01T00:00:00.000000001Z" }) }));
    expect(later.status).toBe(200);
    expect(later.json.results[0]).toMatchObject({ notAppliedReason: "NOT_APPLIED_REASON_TOO_LATE" });
  });
});

describe("strings with NUL are refused", () => {
  it("contract/a_nul_in_any_string_is_invalid_argument_naming_where_and_stores_nothing", async () => {
    const cases: [unknown, string][] = [
      [{ activity: activity("nul-a\u0000", "nul-1", { value: 5 }) }, "activity.member_external_id"],
      [{ activity: activity("nul-b", "nul-2", { value: 5, metadata: { note: "x\u0000y" } }) }, 'activity.metadata["note"]'],
      [{ activity: activity("nul-c", "nul-3", { value: 5, metadata: { ["k\u0000"]: "v" } }) }, 'activity.metadata["k\\\\0"]'], // the NUL shown as \0, then JSON-escaped
    ];
    for (const [body, field] of cases) {
      const answer = await post("ActivityService/RecordActivity", JSON.stringify(body));
      expect(answer.status, field).toBe(400);
      expect(errorInfo(answer.json)?.reason).toBe("INVALID_REQUEST");
      expect(violations(answer.json).map((v) => v.field), field).toEqual([field]);
    }
    const batch = await post("ActivityService/RecordActivities", JSON.stringify({ activities: [activity("nul-d", "nul-4", { value: 5 }), activity("nul-e", "nul-\u00005", { value: 5 })] }));
    expect(batch.status).toBe(400);
    expect(violations(batch.json).map((v) => v.field)).toEqual(["activities[1].unique_identifier"]);
    expect(await membersNamed("nul-")).toEqual([]);
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

/** Bytes of a JSON document with `raw` (possibly invalid UTF-8) spliced in where `"@@"` stands. */
function jsonWithRawBytes(template: object, raw: number[]): Uint8Array {
  const [before, after] = JSON.stringify(template).split("@@");
  return Buffer.concat([Buffer.from(before!), Buffer.from(raw), Buffer.from(after!)]);
}

describe("Connect JSON is parsed strictly", () => {
  it("contract/invalid_utf8_in_a_string_is_invalid_argument_naming_the_field_and_stores_nothing", async () => {
    const body = jsonWithRawBytes({ activity: activity("utf8-1", "order-@@", { value: 5 }) }, [0xff, 0xfe]);
    const answer = await post("ActivityService/RecordActivity", body);
    expect(answer.status).toBe(400);
    expect(answer.json.code).toBe("invalid_argument");
    expect(errorInfo(answer.json)?.reason).toBe("INVALID_REQUEST");
    expect(violations(answer.json).map((v) => v.field)).toEqual(["activity.unique_identifier"]);
    // In a map value and a profile field too.
    const inMetadata = await post("ActivityService/RecordActivity", jsonWithRawBytes({ activity: activity("utf8-2", "utf8-2", { value: 5, metadata: { note: "caf@@" } }) }, [0xc3, 0x28]));
    expect(violations(inMetadata.json).map((v) => v.field)).toEqual(['activity.metadata["note"]']);
    expect(await membersNamed("utf8-")).toEqual([]);
  });

  it("contract/misspelt_field_is_invalid_argument_naming_it_and_stores_nothing", async () => {
    const answer = await post("ActivityService/RecordActivity", JSON.stringify({ activity: { ...activity("typo-1", "typo-1"), valeu: 60 } }));
    expect(answer.status).toBe(400);
    expect(answer.json.code).toBe("invalid_argument");
    expect(errorInfo(answer.json)?.reason).toBe("INVALID_REQUEST");
    expect(violations(answer.json).map((v) => v.field)).toEqual(["activity.valeu"]);
    expect(answer.json.message).toContain("valeu");
    // At the top level and inside a list item as well; proto names and JSON names are both known fields.
    const top = await post("ActivityService/RecordActivity", JSON.stringify({ activity: activity("typo-2", "typo-2", { value: 1 }), langauge: "en" }));
    expect(violations(top.json).map((v) => v.field)).toEqual(["langauge"]);
    const inList = await post("ActivityService/RecordActivities", JSON.stringify({ activities: [activity("typo-3", "typo-3", { value: 1 }), { ...activity("typo-4", "typo-4"), distinctkey: "x" }] }));
    expect(violations(inList.json).map((v) => v.field)).toEqual(["activities[1].distinctkey"]);
    const protoNames = await post("ActivityService/RecordActivity", JSON.stringify({ activity: { member_external_id: "typo-ok", definition_id: sumDefinitionId, unique_identifier: "typo-ok", value: 1 } }));
    expect(protoNames.status).toBe(200);
    expect(await membersNamed("typo-")).toEqual(["typo-ok"]);
  });

  it("contract/get_form_refuses_invalid_utf8_and_unknown_fields_too", async () => {
    const get = async (message: string): Promise<Answer> => {
      const res = await fetch(`${api.url}/kindling.v1.MemberStreakService/GetMemberStreak?connect=v1&encoding=json&message=${message}`, {
        headers: { apikey: api.admin.keyId, secretkey: api.admin.secret },
      });
      return { status: res.status, json: (await res.json()) as ConnectErrorJson };
    };
    const typo = await get(encodeURIComponent(JSON.stringify({ memberExternalId: "x", definitonId: sumDefinitionId })));
    expect(typo.status).toBe(400);
    expect(violations(typo.json).map((v) => v.field)).toEqual(["definitonId"]);
    // %FF is not UTF-8: URL decoding would make it U+FFFD.
    const utf8 = await get(`${encodeURIComponent(`{"memberExternalId":"x`)}%FF${encodeURIComponent(`","definitionId":"${sumDefinitionId}"}`)}`);
    expect(utf8.status).toBe(400);
    expect(violations(utf8.json).map((v) => v.field)).toEqual(["member_external_id"]);
    // The well-formed request is answered (not found: the member has no streak).
    expect((await get(encodeURIComponent(JSON.stringify({ memberExternalId: "x", definitionId: sumDefinitionId })))).json.code).toBe("not_found");
  });

  it("contract/binary_protobuf_keeps_unknown_fields", async () => {
    const request = create(RecordActivityRequestSchema, {
      activity: { memberRef: { case: "memberExternalId", value: "binary-1" }, target: { case: "definitionId", value: sumDefinitionId }, uniqueIdentifier: "binary-1", value: 50 },
    });
    // Field 99 (varint 1) is unknown to this server: a newer client's field, which binary protobuf carries along.
    const bytes = Buffer.concat([Buffer.from(toBinary(RecordActivityRequestSchema, request)), Buffer.from([0x98, 0x06, 0x01])]);
    const res = await fetch(`${api.url}/kindling.v1.ActivityService/RecordActivity`, {
      method: "POST",
      headers: { "content-type": "application/proto", apikey: api.admin.keyId, secretkey: api.admin.secret },
      body: bytes,
    });
    expect(res.status).toBe(200);
  });

  it("contract/lenient_setting_drops_unknown_json_fields_but_still_refuses_invalid_utf8", async () => {
    const lenient = await startTestApi({ label: "contract_lenient", env: { KINDLING_JSON_IGNORE_UNKNOWN_FIELDS: "true" } });
    try {
      const defs = lenient.client(DefinitionService);
      const definitionId = (await createLiveDefinition(defs, { name: "Lenient" })).id;
      const send = (body: string | Uint8Array) =>
        fetch(`${lenient.url}/kindling.v1.ActivityService/RecordActivity`, {
          method: "POST",
          headers: { "content-type": "application/json", apikey: lenient.admin.keyId, secretkey: lenient.admin.secret },
          body,
        });
      const newer = await send(JSON.stringify({ activity: { memberExternalId: "lenient-1", definitionId, uniqueIdentifier: "l-1", fieldFromTheFuture: 1 } }));
      expect(newer.status).toBe(200);
      const bad = await send(jsonWithRawBytes({ activity: { memberExternalId: "lenient-2", definitionId, uniqueIdentifier: "l-@@" } }, [0xed, 0xa0, 0x80]));
      expect(bad.status).toBe(400);
      expect(violations((await bad.json()) as ConnectErrorJson).map((v) => v.field)).toEqual(["activity.unique_identifier"]);
    } finally {
      await lenient.close();
    }
  });
});

describe("errors speak the API's language", () => {
  const MAX = 4 * 1024 * 1024;

  it("contract/body_over_the_limit_is_resource_exhausted_with_reason_request_too_large", async () => {
    const big = JSON.stringify({ activity: activity("big-1", "x".repeat(MAX)) });
    const answer = await post("ActivityService/RecordActivity", big);
    expect(answer.json.code).toBe("resource_exhausted");
    expect(errorInfo(answer.json)?.reason).toBe("REQUEST_TOO_LARGE");
    expect(answer.json.message).toContain("MAX_REQUEST_BYTES");
    // Streamed without a Content-Length, the same answer once the limit is passed.
    const chunked = await fetch(`${api.url}/kindling.v1.ActivityService/RecordActivity`, {
      method: "POST",
      headers: { "content-type": "application/json", apikey: api.admin.keyId, secretkey: api.admin.secret },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < 5; i++) controller.enqueue(new TextEncoder().encode(" ".repeat(MAX / 4)));
          controller.close();
        },
      }),
      duplex: "half",
    });
    const chunkedJson = (await chunked.json()) as ConnectErrorJson;
    expect(errorInfo(chunkedJson)?.reason).toBe("REQUEST_TOO_LARGE");
    // And over gRPC, gRPC-Web and Connect binary, through the generated clients.
    for (const protocol of ["grpc", "grpc-web", "connect-binary"] as const) {
      const error = await api
        .client(ActivityService, api.admin, protocol)
        .recordActivity({ activity: { memberRef: { case: "memberExternalId", value: "big-2" }, target: { case: "definitionId", value: sumDefinitionId }, uniqueIdentifier: "y".repeat(MAX) } })
        .then(() => undefined, (e: unknown) => ConnectError.from(e));
      expect({ protocol, code: error?.code, reason: error?.findDetails(ErrorInfoSchema)[0]?.reason }).toEqual({ protocol, code: Code.ResourceExhausted, reason: "REQUEST_TOO_LARGE" });
    }
    expect(await membersNamed("big-")).toEqual([]);
  });

  it("contract/streak_result_message_fits_the_condition", async () => {
    const send = async (uid: string, extra: Record<string, unknown> = {}) => {
      const answer = await post("ActivityService/RecordActivity", JSON.stringify({ activity: activity("message-1", uid, extra) }));
      expect(answer.status).toBe(200);
      return answer.json.results[0].message as string;
    };
    // A $10 purchase toward an unmet $50 day is progress, not "Already checked in this day! Day 0 streak."
    expect(await send("m-1", { value: 10 })).toBe("Progress recorded: 40 more needed to complete this day. Day 0 streak.");
    expect(await send("m-2", { value: 19.5 })).toBe("Progress recorded: 20.50 more needed to complete this day. Day 0 streak.");
    expect(await send("m-3", { value: 20.5 })).toBe("Day 1 streak!");
    expect(await send("m-4", { value: 5 })).toBe("Already checked in this day! Day 1 streak.");
    expect(await send("m-5")).toBe("Recorded but not counted: this streak adds up values and the activity has none. Day 1 streak.");
    expect(await send("m-5")).toBe("Already recorded.");
    // A COUNT condition counts activities.
    const defs = api.client(DefinitionService);
    const twice = (await createLiveDefinition(defs, { name: "Twice a day", condition: { type: ConditionType.COUNT, min: 2 } })).id;
    const first = await post("ActivityService/RecordActivity", JSON.stringify({ activity: { memberExternalId: "message-2", definitionId: twice, uniqueIdentifier: "c-1" } }));
    expect(first.json.results[0].message).toBe("Progress recorded: 1 more activity needed to complete this day. Day 0 streak.");
  });

  it("contract/rule_violations_name_api_fields", async () => {
    const create = (definition: object) => post("DefinitionService/CreateDefinition", JSON.stringify({ definition: { name: "Rules", condition: { type: "CONDITION_TYPE_COUNT", min: 1 }, ...definition } }));
    const rolling = await create({ window: { rolling: { maxGapDuration: "129600s" } } });
    expect(rolling.status).toBe(400);
    expect(errorInfo(rolling.json)?.reason).toBe("INVALID_ROLLING_WINDOW");
    expect(violations(rolling.json)).toEqual([
      { field: "definition.window.rolling.min_spacing_duration", description: "min_spacing_duration must be at least 1 second and less than max_gap_duration" },
    ]);
    expect(rolling.json.message).toContain("min_spacing_duration");
    const zone = await create({ window: { calendar: { period: "CALENDAR_PERIOD_DAILY", timeZone: "Mars/Olympus" } } });
    expect(errorInfo(zone.json)?.reason).toBe("INVALID_TIMEZONE");
    expect(violations(zone.json).map((v) => v.field)).toEqual(["definition.window.calendar.time_zone"]);
    // No domain-internal names (camelCase, *Seconds) in what the caller reads.
    for (const answer of [rolling, zone]) {
      for (const text of [answer.json.message as string, ...violations(answer.json).flatMap((v) => [v.field, v.description])]) {
        expect(text).not.toMatch(/[a-z][A-Z]|Seconds/);
      }
    }
  });

  it("contract/end_user_jwt_claims_are_checked_as_tenant_proto_documents", async () => {
    // The rules are written where API users read them, beside EndUserJwtConfig.
    const proto = await readFile(join(import.meta.dirname, "..", "..", "proto", "kindling", "v1", "tenant.proto"), "utf8");
    const documented = proto.slice(proto.indexOf("// How the tenant's end-user JWTs are verified"), proto.indexOf("message EndUserJwtConfig {"));
    for (const claim of ["`tenant_id`", "`sub`", "`exp`", "`nbf`", "`iat`", "`iss`", "`aud`", "`alg`"]) expect(documented, claim).toContain(claim);

    // And they are what the server enforces.
    const secret = new TextEncoder().encode("contract-hs256-secret-0123456789-abcdef");
    await api.client(TenantService).setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: new TextDecoder().decode(secret) } });
    const nowS = Math.floor(Date.now() / 1000);
    const token = (claims: Record<string, unknown>, alg = "HS256") => new SignJWT(claims).setProtectedHeader({ alg }).sign(secret);
    const read = async (jwt: string) => {
      const res = await fetch(`${api.url}/kindling.v1.DefinitionService/ListDefinitions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${jwt}` },
        body: "{}",
      });
      const json = (await res.json()) as ConnectErrorJson;
      return res.status === 200 ? "ok" : `${json.code} ${errorInfo(json)?.reason}`;
    };
    const tenant_id = api.admin.tenantId;
    expect(await read(await token({ tenant_id, sub: "jwt-member", exp: nowS + 300 }))).toBe("ok");
    // No exp: refused (it would never expire), as documented; so is a lifetime over the tenant's maximum (24 h).
    expect(await read(await token({ tenant_id, sub: "jwt-member" }))).toBe("unauthenticated INVALID_TOKEN");
    expect(await read(await token({ tenant_id, sub: "jwt-member", iat: nowS, exp: nowS + 86_401 }))).toBe("unauthenticated INVALID_TOKEN");
    expect(await read(await token({ tenant_id, sub: "jwt-member", exp: nowS - 1 }))).toBe("unauthenticated INVALID_TOKEN");
    expect(await read(await token({ tenant_id, sub: "jwt-member", nbf: nowS + 300, exp: nowS + 600 }))).toBe("unauthenticated INVALID_TOKEN");
    expect(await read(await token({ tenant_id, sub: "jwt-member", exp: nowS + 300 }, "HS384"))).toBe("unauthenticated INVALID_TOKEN");
    expect(await read(await token({ sub: "jwt-member", exp: nowS + 300 }))).toBe("unauthenticated UNAUTHENTICATED");
    expect(await read(await token({ tenant_id, exp: nowS + 300 }))).toBe("unauthenticated UNAUTHENTICATED");
  });
});
