// The lean unary gRPC path (src/api/grpc-unary.ts) answers exactly as connect-node does: two real APIs, one with
// the path on (the default) and one with KINDLING_GRPC_UNARY_PATH=false, get the same gRPC requests — successes,
// domain and validation errors, missing credentials, and malformed, oversized or compressed bodies — as raw HTTP/2
// bytes, and their answers (status, headers, message bytes, trailers with error details) must match, ids and
// times aside. The path's own counters prove which calls it answered and which it handed to connect's handler.
import http2 from "node:http2";
import net from "node:net";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, fromBinary, toBinary, toJson, type DescMessage } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { RecordActivitiesRequestSchema, RecordActivitiesResponseSchema, RecordActivityRequestSchema, RecordActivityResponseSchema } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { GetMemberStreakRequestSchema, GetMemberStreakResponseSchema, MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { Health, HealthCheckRequestSchema, HealthCheckResponseSchema } from "../../src/gen/grpc/health/v1/health_pb.js";
import { CalendarPeriod, ConditionType } from "../../src/gen/kindling/v1/definition_pb.js";
import { createGrpcUnary, grpcUnaryTotals, type UnaryMethodSpec } from "../../src/api/grpc-unary.ts";
import { Http2Connection } from "../../src/api/h2/connection.ts";
import { Code, ConnectError, createMethodImplSpec, type HandlerContext } from "@connectrpc/connect";
import { startTestApi, type TestApi } from "../support/api.ts";

const MAX_REQUEST_BYTES = 4096;

interface Side {
  readonly api: TestApi;
  readonly definitionId: string;
  readonly session: http2.ClientHttp2Session;
}

let lean: Side;
let plain: Side;

async function side(label: string, env: Record<string, string>): Promise<Side> {
  const api = await startTestApi({ label, env: { MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES), ...env } });
  const defs = api.client(DefinitionService);
  const { definition } = await defs.createDefinition({
    definition: {
      name: "Unary path daily",
      eventTypes: ["unary.event"],
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 1 },
    },
  });
  await defs.publishDefinition({ definitionId: definition!.id });
  return { api, definitionId: definition!.id, session: http2.connect(api.url) };
}

beforeAll(async () => {
  [lean, plain] = await Promise.all([side("unary-lean", {}), side("unary-plain", { KINDLING_GRPC_UNARY_PATH: "false" })]);
});
afterAll(async () => {
  for (const s of [lean, plain]) {
    s?.session.close();
    await s?.api.close();
  }
});

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly trailers: Record<string, string>;
}

/** Sends `body` in one write, or each piece of an array in its own write (separate DATA frames, a moment apart). */
function call(s: Side, path: string, body: Buffer | Buffer[], headers: Record<string, string> = {}, auth = true): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = s.session.request({
      ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers",
      ...(auth ? { apikey: s.api.admin.keyId, secretkey: s.api.admin.secret } : {}),
      ...headers,
    });
    const chunks: Buffer[] = [];
    let status = 0;
    let responseHeaders: Record<string, string> = {};
    let trailers: Record<string, string> = {};
    req.on("response", (h) => {
      status = Number(h[":status"]);
      responseHeaders = plainHeaders(h);
    });
    req.on("trailers", (t) => {
      trailers = plainHeaders(t);
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks), trailers }));
    req.on("error", reject);
    if (Buffer.isBuffer(body)) {
      req.end(body);
      return;
    }
    void (async () => {
      for (const piece of body) {
        req.write(piece);
        await new Promise((r) => setTimeout(r, 20));
      }
      req.end();
    })();
  });
}

function plainHeaders(h: http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (!k.startsWith(":") && k !== "date" && v !== undefined) out[k] = String(v);
  return out;
}

function envelope(message: Uint8Array, flags = 0): Buffer {
  const out = Buffer.alloc(5 + message.byteLength);
  out[0] = flags;
  out.writeUInt32BE(message.byteLength, 1);
  out.set(message, 5);
  return out;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const TIME = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g;
// Countdowns are computed from the moment of each read: two reads a second apart differ by one.
const COUNTDOWN = /("seconds[A-Za-z]*":\s*)"\d+"/g;
const mask = (text: string) => text.replace(UUID, "<id>").replace(TIME, "<time>").replace(COUNTDOWN, '$1"<seconds>"');

/** An answer with ids and times masked, the message decoded (so equal content compares equal). */
function comparable<D extends DescMessage>(answer: Answer, schema: D): unknown {
  let message: unknown = null;
  if (answer.body.length > 0) {
    const compressed = answer.body[0] === 1;
    expect(answer.body.readUInt32BE(1)).toBe(answer.body.length - 5);
    const bytes = compressed ? gunzipSync(answer.body.subarray(5)) : answer.body.subarray(5);
    message = JSON.parse(mask(JSON.stringify(toJson(schema, fromBinary(schema, bytes)))));
    message = { compressed, message };
  }
  const details = answer.trailers["grpc-status-details-bin"];
  return {
    status: answer.status,
    headers: answer.headers,
    message,
    trailers: { ...answer.trailers, "grpc-message": mask(decodeURIComponent(answer.trailers["grpc-message"] ?? "")), "grpc-status-details-bin": details === undefined ? undefined : mask(Buffer.from(details, "base64").toString("latin1")) },
  };
}

/** Runs the same call on both APIs; returns both comparable answers and how the lean side's path counters moved. */
async function both<D extends DescMessage>(path: string, body: (s: Side) => Buffer | Buffer[], schema: D, headers: Record<string, string> = {}, auth = true) {
  const before = grpcUnaryTotals();
  const a = await call(lean, path, body(lean), headers, auth);
  const after = grpcUnaryTotals();
  const b = await call(plain, path, body(plain), headers, auth);
  const moved = { answered: after.answered - before.answered, replayed: after.replayed - before.replayed };
  expect(grpcUnaryTotals()).toEqual(after); // the plain API never takes the path
  return { lean: comparable(a, schema), plain: comparable(b, schema), moved, raw: a };
}

const RECORD = "/kindling.v1.ActivityService/RecordActivity";
const GET_STREAK = "/kindling.v1.MemberStreakService/GetMemberStreak";
const HEALTH = "/grpc.health.v1.Health/Check";

const activity = (member: string, key: string) =>
  toBinary(RecordActivityRequestSchema, create(RecordActivityRequestSchema, {
    activity: { memberRef: { case: "memberExternalId", value: member }, target: { case: "eventType", value: "unary.event" }, occurTime: timestampFromMs(Date.now()), uniqueIdentifier: key },
  }));

describe("the unary gRPC path answers as connect-node does", () => {
  it("grpc_unary/health_check", async () => {
    const r = await both(HEALTH, () => envelope(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, {}))), HealthCheckResponseSchema);
    expect(r.moved).toEqual({ answered: 1, replayed: 0 });
    expect(r.raw.trailers["grpc-status"]).toBe("0");
    expect(r.lean).toEqual(r.plain);
  });

  it("grpc_unary/record_then_duplicate_then_read", async () => {
    const first = await both(RECORD, () => envelope(activity("alice", "a-1")), RecordActivityResponseSchema);
    expect(first.moved).toEqual({ answered: 1, replayed: 0 });
    expect(first.raw.trailers["grpc-status"]).toBe("0");
    expect(first.lean).toEqual(first.plain);
    const again = await both(RECORD, () => envelope(activity("alice", "a-1")), RecordActivityResponseSchema);
    expect(again.lean).toEqual(again.plain);
    expect(JSON.stringify(again.lean)).toContain('"duplicate":true');
    for (const accept of [{}, { "grpc-accept-encoding": "gzip" }] as Record<string, string>[]) {
      const read = await both(GET_STREAK, (s) => envelope(toBinary(GetMemberStreakRequestSchema, create(GetMemberStreakRequestSchema, { memberExternalId: "alice", definitionId: s.definitionId }))), GetMemberStreakResponseSchema, accept);
      expect(read.moved).toEqual({ answered: 1, replayed: 0 });
      expect(read.lean).toEqual(read.plain);
      expect(JSON.stringify(read.lean)).toContain('"currentCount":1');
    }
  });

  it("grpc_unary/compresses_large_answers_as_connect_does", async () => {
    // A batch answer passes connect's 1 KiB threshold: gzip for a client that accepts it, identity otherwise.
    const batch = (member: string) => () =>
      envelope(toBinary(RecordActivitiesRequestSchema, create(RecordActivitiesRequestSchema, {
        activities: Array.from({ length: 8 }, (_, k) => ({ memberRef: { case: "memberExternalId" as const, value: member }, target: { case: "eventType" as const, value: "unary.event" }, occurTime: timestampFromMs(Date.now()), uniqueIdentifier: `${member}-${k}` })),
      })));
    const gzip = await both("/kindling.v1.ActivityService/RecordActivities", batch("frank"), RecordActivitiesResponseSchema, { "grpc-accept-encoding": "gzip" });
    expect(gzip.moved).toEqual({ answered: 1, replayed: 0 });
    expect(gzip.raw.body[0]).toBe(1);
    expect(gzip.lean).toEqual(gzip.plain);
    const identity = await both("/kindling.v1.ActivityService/RecordActivities", batch("grace"), RecordActivitiesResponseSchema);
    expect(identity.raw.body[0]).toBe(0);
    expect(identity.raw.body.length).toBeGreaterThan(1024);
    expect(identity.lean).toEqual(identity.plain);
  });

  it("grpc_unary/errors_with_details", async () => {
    const notFound = await both(GET_STREAK, (s) => envelope(toBinary(GetMemberStreakRequestSchema, create(GetMemberStreakRequestSchema, { memberExternalId: "nobody", definitionId: s.definitionId }))), GetMemberStreakResponseSchema);
    expect(notFound.raw.trailers["grpc-status"]).toBe("5");
    expect(notFound.lean).toEqual(notFound.plain);
    const invalid = await both(RECORD, () => envelope(toBinary(RecordActivityRequestSchema, create(RecordActivityRequestSchema, {}))), RecordActivityResponseSchema);
    expect(invalid.raw.trailers["grpc-status"]).toBe("3");
    expect(invalid.raw.trailers["grpc-status-details-bin"]).toBeDefined();
    expect(invalid.lean).toEqual(invalid.plain);
    const anonymous = await both(RECORD, () => envelope(activity("bob", "b-1")), RecordActivityResponseSchema, {}, false);
    expect(anonymous.raw.trailers["grpc-status"]).toBe("16");
    expect(anonymous.lean).toEqual(anonymous.plain);
    expect([notFound.moved, invalid.moved, anonymous.moved]).toEqual([{ answered: 1, replayed: 0 }, { answered: 1, replayed: 0 }, { answered: 1, replayed: 0 }]);
  });

  it.each<[string, () => Buffer, Record<string, string>]>([
    ["empty_body", () => Buffer.alloc(0), {}],
    ["truncated_envelope", () => envelope(activity("carol", "c-1")).subarray(0, 12), {}],
    ["two_messages", () => Buffer.concat([envelope(activity("carol", "c-2")), envelope(activity("carol", "c-3"))]), {}],
    ["compressed_flag_without_encoding", () => envelope(activity("carol", "c-4"), 1), {}],
    ["unparsable_message", () => envelope(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])), {}],
    ["larger_than_max_request_bytes", () => envelope(Buffer.alloc(MAX_REQUEST_BYTES + 10, 0)), {}],
    ["invalid_timeout", () => envelope(activity("carol", "c-5")), { "grpc-timeout": "soon" }],
  ])("grpc_unary/replays_%s_into_connect", async (_name, body, headers) => {
    const r = await both(RECORD, body, RecordActivityResponseSchema, headers);
    expect(r.moved).toEqual({ answered: 0, replayed: 1 });
    expect(r.raw.trailers["grpc-status"]).not.toBe("0");
    expect(r.lean).toEqual(r.plain);
  });

  it.each<[string, () => Buffer[]]>([
    // A valid message, then more bytes than the limit allows: connect refuses the extra message; nothing runs.
    ["valid_message_then_oversized_garbage", () => [envelope(activity("hank", "h-1")), Buffer.alloc(MAX_REQUEST_BYTES + 100, 0)]],
    ["valid_message_then_oversized_second_message", () => [envelope(activity("hank", "h-2")), envelope(Buffer.alloc(MAX_REQUEST_BYTES + 1, 0))]],
  ])("grpc_unary/body_over_the_limit_in_several_writes_is_answered_by_connect_%s", async (_name, pieces) => {
    const r = await both(RECORD, pieces, RecordActivityResponseSchema);
    expect(r.moved).toEqual({ answered: 0, replayed: 1 });
    expect(r.raw.trailers["grpc-status"]).not.toBe("0");
    expect(r.lean).toEqual(r.plain);
    // Neither server recorded the activity.
    const { streak } = await lean.api.client(MemberStreakService).getMemberStreak({ memberExternalId: "hank", definitionId: lean.definitionId }).catch(() => ({ streak: undefined }));
    expect(streak?.currentCount ?? 0).toBe(0);
  });

  it("grpc_unary/message_in_several_writes_and_explicit_identity_and_proto_subtype", async () => {
    const whole = envelope(activity("ivy", "i-1"));
    const split = await both(RECORD, () => [whole.subarray(0, 3), whole.subarray(3, 20), whole.subarray(20)], RecordActivityResponseSchema, {
      "content-type": "application/grpc+proto", "grpc-encoding": "identity",
    });
    expect(split.moved).toEqual({ answered: 1, replayed: 0 });
    expect(split.raw.trailers["grpc-status"]).toBe("0");
    expect(split.lean).toEqual(split.plain);
  });

  it("grpc_unary/leaves_compressed_requests_to_connect_node", async () => {
    const r = await both(RECORD, () => envelope(gzipSync(activity("dave", "d-1")), 1), RecordActivityResponseSchema, { "grpc-encoding": "gzip" });
    expect(r.moved).toEqual({ answered: 0, replayed: 0 });
    expect(r.raw.trailers["grpc-status"]).toBe("0");
    expect(r.lean).toEqual(r.plain);
  });

  it("grpc_unary/client_cancel_leaves_the_server_answering", async () => {
    const req = lean.session.request({ ":method": "POST", ":path": RECORD, "content-type": "application/grpc", te: "trailers", apikey: lean.api.admin.keyId, secretkey: lean.api.admin.secret });
    req.write(envelope(activity("erin", "e-1")));
    req.close(http2.constants.NGHTTP2_CANCEL);
    const after = await call(lean, HEALTH, envelope(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, {}))));
    expect(after.trailers["grpc-status"]).toBe("0");
  });
});

// The handler's context on this path: its signal must abort as connect's does — on the call's deadline, when the
// client cancels, at server shutdown, and once the call has ended — and `timeoutMs()` count down the deadline.
// A bare HTTP/2 server with the path alone and a Health/Check whose implementation the test drives.
describe("the unary gRPC path's call signal", () => {
  interface Seen {
    readonly signal: AbortSignal;
    readonly timeoutMs: number | undefined;
  }
  let server: net.Server;
  let session: http2.ClientHttp2Session;
  let shutdown: AbortController;
  let seen: Seen[] = [];
  let hold = false;

  beforeAll(async () => {
    shutdown = new AbortController();
    const spec = createMethodImplSpec(Health.method.check, async (_req: unknown, context: HandlerContext) => {
      seen.push({ signal: context.signal, timeoutMs: context.timeoutMs() });
      if (hold && !context.signal.aborted) await new Promise((resolve) => context.signal.addEventListener("abort", resolve, { once: true }));
      return create(HealthCheckResponseSchema, {});
    }) as UnaryMethodSpec;
    const unary = createGrpcUnary({
      methods: new Map([[HEALTH, spec]]),
      connectHandlers: new Map(),
      interceptors: [],
      acceptCompression: [],
      compressMinBytes: 1024,
      readMaxBytes: MAX_REQUEST_BYTES,
      shutdownSignal: shutdown.signal,
      onError: () => undefined,
    });
    // The path answers on connections framed by src/api/h2/connection.ts; what it leaves goes to a Node HTTP/2
    // server that answers 404.
    const rest = http2.createServer();
    rest.on("stream", (stream) => {
      stream.respond({ ":status": 404 });
      stream.end();
    });
    server = net.createServer((socket) => void new Http2Connection(socket, { take: (stream, headers) => unary.handle(stream, headers), relayTo: rest }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    session = http2.connect(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  });
  afterAll(async () => {
    session?.destroy();
    await new Promise((resolve) => server?.close(resolve));
  });

  const healthBody = () => envelope(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, {})));
  const open = (headers: Record<string, string> = {}) => {
    const req = session.request({ ":method": "POST", ":path": HEALTH, "content-type": "application/grpc", te: "trailers", ...headers });
    req.on("error", () => undefined);
    req.resume();
    return req;
  };
  const started = async (n: number) => {
    while (seen.length < n) await new Promise((r) => setTimeout(r, 5));
    return seen[n - 1]!;
  };
  const aborted = (signal: AbortSignal) => (signal.aborted ? Promise.resolve() : new Promise((r) => signal.addEventListener("abort", r, { once: true })));
  const codeOf = (signal: AbortSignal) => (signal.reason instanceof ConnectError ? signal.reason.code : undefined);

  it("grpc_unary/client_resets_and_broken_connections_end_the_call_and_the_server_answers_on", async () => {
    // A reset with another code than CANCEL, and a connection that breaks, reach the server's stream as errors: they
    // must end the call (its signal aborts), not the process, whether the body is still arriving or the call runs.
    seen = [];
    hold = true;
    const arriving = open();
    arriving.write(healthBody().subarray(0, 3));
    await new Promise((resolve) => setTimeout(resolve, 50));
    arriving.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    const running = open();
    running.end(healthBody());
    const runningCall = await started(1);
    running.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    await aborted(runningCall.signal);
    expect(codeOf(runningCall.signal)).toBe(Code.Canceled);

    let socket: net.Socket | undefined;
    const port = (server.address() as { port: number }).port;
    const doomed = http2.connect(`http://127.0.0.1:${port}`, { createConnection: () => (socket = net.connect(port, "127.0.0.1")) });
    doomed.on("error", () => undefined);
    const lost = doomed.request({ ":method": "POST", ":path": HEALTH, "content-type": "application/grpc", te: "trailers" });
    lost.on("error", () => undefined);
    lost.end(healthBody());
    const lostCall = await started(2);
    socket!.resetAndDestroy();
    await aborted(lostCall.signal);
    expect(codeOf(lostCall.signal)).toBe(Code.Canceled);

    // The server answers on.
    hold = false;
    const status = await new Promise((resolve) => {
      const req = open();
      req.on("trailers", (trailers) => resolve(trailers["grpc-status"]));
      req.end(healthBody());
    });
    expect(status).toBe("0");
  });

  it("grpc_unary/call_signal_ends_with_the_call_and_aborts_on_deadline_cancel_and_shutdown", async () => {
    seen = [];
    // A call that returns: its signal is aborted once it has ended, and it had no deadline.
    hold = false;
    await new Promise((resolve) => open().on("close", resolve).end(healthBody()));
    expect(seen[0]!.timeoutMs).toBeUndefined();
    expect(seen[0]!.signal.aborted).toBe(true);

    hold = true;
    // Its deadline: timeoutMs counts down from grpc-timeout, and the signal aborts with DEADLINE_EXCEEDED.
    open({ "grpc-timeout": "150m" }).end(healthBody());
    const deadlined = await started(2);
    expect(deadlined.timeoutMs).toBeGreaterThan(0);
    expect(deadlined.timeoutMs).toBeLessThanOrEqual(150);
    await aborted(deadlined.signal);
    expect(codeOf(deadlined.signal)).toBe(Code.DeadlineExceeded);

    // The client cancels: CANCELED.
    const cancelled = open();
    cancelled.end(healthBody());
    const cancelledCall = await started(3);
    expect(cancelledCall.signal.aborted).toBe(false);
    cancelled.close(http2.constants.NGHTTP2_CANCEL);
    await aborted(cancelledCall.signal);
    expect(codeOf(cancelledCall.signal)).toBe(Code.Canceled);

    // Shutdown: every open call's signal aborts with the shutdown's reason, and a call arriving after it starts aborted.
    open().end(healthBody());
    open().end(healthBody());
    const [a, b] = [await started(4), await started(5)];
    expect(a.signal.aborted || b.signal.aborted).toBe(false);
    const reason = new ConnectError("shutting down", Code.Unavailable);
    shutdown.abort(reason);
    await Promise.all([aborted(a.signal), aborted(b.signal)]);
    expect([a.signal.reason, b.signal.reason]).toEqual([reason, reason]);
    open().end(healthBody());
    const late = await started(6);
    expect(late.signal.reason).toBe(reason);
  });
});
