// HTTP/2 connections framed by the API itself (src/api/h2/connection.ts): the unary gRPC path answers from the
// frames, every other stream is relayed to Node's HTTP/2 server. What a client must see either way: whole answers
// whatever its flow-control windows, header blocks split over CONTINUATION frames, every other route and protocol on
// the same connection, malformed requests reset while the connection goes on, and protocol errors ending it with
// GOAWAY. The answers' content is compared with connect-node's own in test/api/grpc-unary.test.ts.
import http2 from "node:http2";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { RecordActivitiesRequestSchema, RecordActivitiesResponseSchema } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { HealthCheckRequestSchema, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus } from "../../src/gen/grpc/health/v1/health_pb.js";
import { grpcUnaryTotals } from "../../src/api/grpc-unary.ts";
import { startTestApi, type TestApi } from "../support/api.ts";
import { createLiveDefinition } from "../support/fixtures.ts";

let api: TestApi;

beforeAll(async () => {
  api = await startTestApi({ label: "h2-framing" });
  await createLiveDefinition(api.client(DefinitionService), { name: "Framing daily", eventTypes: ["framing.event"] });
});
afterAll(async () => {
  await api?.close();
});

interface Answer {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly trailers: http2.IncomingHttpHeaders;
}

function request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers);
    const chunks: Buffer[] = [];
    let status = 0;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    req.on("response", (h) => {
      status = Number(h[":status"]);
      responseHeaders = h;
    });
    req.on("trailers", (t) => (trailers = t));
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks), trailers }));
    req.on("error", reject);
    req.end(body);
  });
}

function envelope(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.byteLength);
  out.writeUInt32BE(message.byteLength, 1);
  out.set(message, 5);
  return out;
}

const grpc = (path: string, extra: http2.OutgoingHttpHeaders = {}): http2.OutgoingHttpHeaders => ({
  ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", apikey: api.admin.keyId, secretkey: api.admin.secret, ...extra,
});

const batch = (member: string, n: number) =>
  envelope(toBinary(RecordActivitiesRequestSchema, create(RecordActivitiesRequestSchema, {
    activities: Array.from({ length: n }, (_, k) => ({ memberRef: { case: "memberExternalId" as const, value: member }, target: { case: "eventType" as const, value: "framing.event" }, occurTime: timestampFromMs(Date.now()), uniqueIdentifier: `${member}-${k}` })),
  })));

describe("HTTP/2 framed by the API", () => {
  it("h2_framing/answers_larger_than_the_clients_windows_arrive_whole", async () => {
    // A client that lets 256 bytes a stream be in flight: the answer (several KiB, uncompressed) waits for its
    // window updates and arrives whole, on the unary path.
    const session = http2.connect(api.url, { settings: { initialWindowSize: 256 } });
    try {
      const before = grpcUnaryTotals().answered;
      const answer = await request(session, grpc("/kindling.v1.ActivityService/RecordActivities"), batch("wendy", 40));
      expect(grpcUnaryTotals().answered).toBe(before + 1);
      expect(answer.status).toBe(200);
      expect(answer.trailers["grpc-status"]).toBe("0");
      expect(answer.body[0]).toBe(0);
      expect(answer.body.readUInt32BE(1)).toBe(answer.body.length - 5);
      expect(answer.body.length).toBeGreaterThan(4 * 256);
      const decoded = fromBinary(RecordActivitiesResponseSchema, answer.body.subarray(5));
      expect(decoded.results).toHaveLength(40);
    } finally {
      session.close();
    }
  });

  it("h2_framing/header_blocks_over_continuation_frames", async () => {
    // 40 KB of headers: more than one frame can hold, so the client sends HEADERS then CONTINUATION.
    const session = http2.connect(api.url);
    try {
      const answer = await request(session, grpc("/grpc.health.v1.Health/Check", { "x-padding": "p".repeat(40_000) }), envelope(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, {}))));
      expect(answer.trailers["grpc-status"]).toBe("0");
      expect(fromBinary(HealthCheckResponseSchema, answer.body.subarray(5)).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    } finally {
      session.close();
    }
  });

  it("h2_framing/every_other_route_and_protocol_is_relayed_on_the_same_connection", async () => {
    const session = http2.connect(api.url);
    try {
      const answered = grpcUnaryTotals().answered;
      const ready = await request(session, { ":method": "GET", ":path": "/readyz" });
      expect(ready.status).toBe(200);
      expect(JSON.parse(ready.body.toString())).toEqual({ status: "ready" });

      const connect = await request(session, { ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/json" }, Buffer.from("{}"));
      expect(connect.status).toBe(200);
      expect(JSON.parse(connect.body.toString())).toEqual({ status: "SERVING" });

      const missing = await request(session, { ":method": "GET", ":path": "/no-such-route" });
      expect(missing.status).toBe(404);

      // A server-streaming method (gRPC Health/Watch): its first message arrives, then the client cancels.
      const watch = session.request(grpc("/grpc.health.v1.Health/Watch"));
      watch.end(envelope(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, {}))));
      const first = await new Promise<Buffer>((resolve, reject) => {
        watch.once("data", resolve);
        watch.once("error", reject);
      });
      expect(fromBinary(HealthCheckResponseSchema, first.subarray(5)).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      watch.close(http2.constants.NGHTTP2_CANCEL);

      // None of those took the unary path; a unary call on the same connection still does.
      expect(grpcUnaryTotals().answered).toBe(answered);
      const check = await request(session, grpc("/grpc.health.v1.Health/Check"), envelope(new Uint8Array()));
      expect(check.trailers["grpc-status"]).toBe("0");
      expect(grpcUnaryTotals().answered).toBe(answered + 1);
    } finally {
      session.close();
    }
  });

  it("h2_framing/malformed_requests_are_reset_and_protocol_errors_end_the_connection", async () => {
    const raw = await rawConnection(api.url);
    try {
      raw.send(frame(4, 0, 0)); // the client's SETTINGS
      // A request with an upper-case field name is malformed: that stream is reset (PROTOCOL_ERROR).
      raw.send(frame(1, 0x4 | 0x1, 1, Buffer.concat([Buffer.from([0x83, 0x86]), literal(":path", "/grpc.health.v1.Health/Check"), literal("X-Upper", "1")])));
      const reset = await raw.next((f) => f.type === 3 && f.stream === 1);
      expect(reset.payload.readUInt32BE(0)).toBe(1);
      // The connection goes on: a PING is answered with its payload.
      raw.send(frame(6, 0, 0, Buffer.from("12345678")));
      const pong = await raw.next((f) => f.type === 6);
      expect(pong.flags & 1).toBe(1);
      expect(pong.payload.toString()).toBe("12345678");
      // A frame larger than the 16 KiB this side announced ends the connection: GOAWAY FRAME_SIZE_ERROR.
      raw.send(frame(0, 0, 3, Buffer.alloc(20_000)));
      const away = await raw.next((f) => f.type === 7);
      expect(away.payload.readUInt32BE(4)).toBe(6);
      await raw.closed;
    } finally {
      raw.socket.destroy();
    }
  });

  it("h2_framing/a_client_that_lowers_its_window_below_what_was_sent_gets_the_rest_once_it_raises_it", async () => {
    // RFC 9113 §6.9.2: lowering SETTINGS_INITIAL_WINDOW_SIZE can make a stream's window negative; nothing is sent
    // until window updates bring it above zero, and the answer then arrives whole.
    const raw = await rawConnection(api.url);
    try {
      raw.send(frame(4, 0, 0, setting(0x4, 1)));
      raw.send(frame(1, 0x4 | 0x1, 1, Buffer.concat([Buffer.from([0x82, 0x86]), indexed(4, "/readyz"), indexed(1, "localhost")])));
      const first = await raw.next((f) => f.type === 0 && f.stream === 1);
      expect(first.payload.length).toBe(1);
      raw.send(frame(4, 0, 0, setting(0x4, 0))); // the stream's window is now -1
      raw.send(frame(6, 0, 0, Buffer.from("stillup!")));
      expect((await raw.next((f) => f.type === 6 && (f.flags & 1) === 1)).payload.toString()).toBe("stillup!");
      raw.send(frame(4, 0, 0, setting(0x4, 65_535)));
      const rest: Buffer[] = [first.payload];
      for (;;) {
        const data = await raw.next((f) => f.type === 0 && f.stream === 1);
        rest.push(data.payload);
        if (data.flags & 1) break;
      }
      expect(JSON.parse(Buffer.concat(rest).toString())).toEqual({ status: "ready" });
    } finally {
      raw.socket.destroy();
    }
  });

  it("h2_framing/a_client_with_a_smaller_header_table_reads_every_answer", async () => {
    // A client announcing SETTINGS_HEADER_TABLE_SIZE 0 expects a table size update before the next header block.
    const session = http2.connect(api.url, { settings: { headerTableSize: 0 } });
    try {
      for (let i = 0; i < 3; i++) {
        const check = await request(session, grpc("/grpc.health.v1.Health/Check"), envelope(new Uint8Array()));
        expect(check.trailers["grpc-status"]).toBe("0");
      }
      const ready = await request(session, { ":method": "GET", ":path": "/readyz" });
      expect(ready.status).toBe(200);
    } finally {
      session.close();
    }
  });

  it("h2_framing/floods_of_resets_and_continuations_end_the_connection_and_the_server_goes_on", async () => {
    // Calls opened and reset in a loop ("rapid reset"): past a burst of 1,000, GOAWAY ENHANCE_YOUR_CALM.
    const resets = await rawConnection(api.url);
    try {
      const opened: Buffer[] = [frame(4, 0, 0)];
      for (let id = 1; id <= 2 * 1100; id += 2) {
        opened.push(frame(1, 0x4, id, Buffer.concat([Buffer.from([0x83, 0x86]), indexed(4, "/grpc.health.v1.Health/Check"), indexed(31, "application/grpc")])));
        opened.push(frame(3, 0, id, Buffer.from([0, 0, 0, 8])));
      }
      resets.send(Buffer.concat(opened));
      const away = await resets.next((f) => f.type === 7);
      expect(away.payload.readUInt32BE(4)).toBe(11);
    } finally {
      resets.socket.destroy();
    }
    // A header block in endless CONTINUATION frames: the same.
    const continued = await rawConnection(api.url);
    try {
      const frames = [frame(4, 0, 0), frame(1, 0, 1, Buffer.from([0x83, 0x86]))];
      for (let i = 0; i < 100; i++) frames.push(frame(9, 0, 1));
      continued.send(Buffer.concat(frames));
      const away = await continued.next((f) => f.type === 7);
      expect(away.payload.readUInt32BE(4)).toBe(11);
    } finally {
      continued.socket.destroy();
    }
    // The API answers on new connections.
    const session = http2.connect(api.url);
    try {
      const check = await request(session, grpc("/grpc.health.v1.Health/Check"), envelope(new Uint8Array()));
      expect(check.trailers["grpc-status"]).toBe("0");
    } finally {
      session.close();
    }
  });
});

interface RawFrame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(9 + payload.length);
  out.writeUIntBE(payload.length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(stream, 5);
  payload.copy(out, 9);
  return out;
}

/** An HPACK literal field without indexing, with a literal name (no Huffman coding; short strings only). */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

/** An HPACK literal field without indexing whose name is static-table entry `index` (short values only). */
function indexed(index: number, value: string): Buffer {
  const name = index < 15 ? [index] : [0x0f, index - 15];
  return Buffer.concat([Buffer.from([...name, value.length]), Buffer.from(value)]);
}

function setting(id: number, value: number): Buffer {
  const out = Buffer.alloc(6);
  out.writeUInt16BE(id, 0);
  out.writeUInt32BE(value, 2);
  return out;
}

async function rawConnection(url: string) {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  const frames: RawFrame[] = [];
  let waiting: (() => void) | undefined;
  let input = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    input = Buffer.concat([input, chunk]);
    while (input.length >= 9 && input.length >= 9 + input.readUIntBE(0, 3)) {
      const length = input.readUIntBE(0, 3);
      frames.push({ type: input[3]!, flags: input[4]!, stream: input.readUInt32BE(5) & 0x7fffffff, payload: input.subarray(9, 9 + length) });
      input = input.subarray(9 + length);
    }
    waiting?.();
  });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return {
    socket,
    closed,
    send: (bytes: Buffer) => socket.write(bytes),
    async next(match: (f: RawFrame) => boolean): Promise<RawFrame> {
      for (;;) {
        const index = frames.findIndex(match);
        if (index >= 0) return frames.splice(index, 1)[0]!;
        await new Promise<void>((resolve) => (waiting = resolve));
      }
    },
  };
}
