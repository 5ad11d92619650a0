// Malformed requests to server-streaming RPCs (EventService.WatchEvents, MemberService.ExportMember) over HTTP/1.1,
// read off a raw TCP socket: the exact bytes the server sent, and whether the connection ended with a FIN (closed
// after an answer) or a reset. Every one of them is answered with a typed error in a complete HTTP response, never
// a reset or a connection closed without an answer (issue 17, item 6: the wire fuzzer's "1 in ~700" resets).
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../support/api.ts";

let api: TestApi;

beforeAll(async () => {
  api = await startTestApi({ label: "stream_requests" });
});
afterAll(async () => {
  await api?.close();
});

interface Exchange {
  // Everything the server wrote, in order.
  readonly received: Buffer;
  // How the connection ended: "fin" (the server closed it in order), or the socket error (ECONNRESET, EPIPE, …).
  readonly ending: string;
}

/** One HTTP/1.1 request on a fresh connection (`connection: close`), read until the server ends the connection. */
function exchange(path: string, headers: Record<string, string>, body: Buffer): Promise<Exchange> {
  const { hostname, port } = new URL(api.url);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const socket = net.connect({ host: hostname, port: Number(port) });
    const settle = (ending: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ received: Buffer.concat(chunks), ending });
    };
    const timer = setTimeout(() => settle("hang"), 20_000);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", () => settle("fin"));
    socket.on("error", (error: NodeJS.ErrnoException) => settle(error.code ?? error.message));
    const head = [
      `POST ${path} HTTP/1.1`,
      `host: ${hostname}:${port}`,
      "connection: close",
      `content-length: ${body.length}`,
      `apikey: ${api.admin.keyId}`,
      `secretkey: ${api.admin.secret}`,
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
      "",
      "",
    ].join("\r\n");
    // Written without ending our side: a client that half-closes after its request is not what HTTP clients do,
    // and Node's server drops a request whose client has half-closed before the answer is ready.
    socket.write(head);
    socket.write(body);
  });
}

interface Parsed {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** Status, headers and (de-chunked) body of a complete HTTP/1.1 response; undefined when it is cut short. */
function parseResponse(bytes: Buffer): Parsed | undefined {
  const end = bytes.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const [statusLine, ...lines] = bytes.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? "")?.[1]);
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
  let rest = bytes.subarray(end + 4);
  if (headers["transfer-encoding"] === "chunked") {
    const parts: Buffer[] = [];
    for (;;) {
      const lineEnd = rest.indexOf("\r\n");
      if (lineEnd < 0) return undefined;
      const size = parseInt(rest.subarray(0, lineEnd).toString("latin1"), 16);
      if (!Number.isFinite(size)) return undefined;
      if (size === 0) break;
      if (rest.length < lineEnd + 2 + size + 2) return undefined;
      parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      rest = rest.subarray(lineEnd + 2 + size + 2);
    }
    return { status, headers, body: Buffer.concat(parts) };
  }
  const length = Number(headers["content-length"] ?? Number.NaN);
  if (Number.isFinite(length) && rest.length < length) return undefined;
  return { status, headers, body: rest };
}

/** The error code a streaming answer ends with: Connect's end-stream message, or gRPC-Web's grpc-status. */
function streamCode(response: Parsed, protocol: "connect" | "grpc-web"): string {
  if (protocol === "grpc-web" && response.headers["grpc-status"] !== undefined) return `grpc ${response.headers["grpc-status"]}`;
  if (response.status !== 200) {
    // Connect answers a request it cannot take at all (e.g. a content type it does not serve) with a unary error.
    const code = (JSON.parse(response.body.toString("utf8") || "{}") as { code?: string }).code;
    return code ?? `http ${response.status}`;
  }
  let rest = response.body;
  while (rest.length >= 5) {
    const flags = rest[0]!;
    const length = rest.readUInt32BE(1);
    const data = rest.subarray(5, 5 + length);
    if (protocol === "connect" && flags & 0x02) return (JSON.parse(data.toString("utf8")) as { error?: { code?: string } }).error?.code ?? "ok";
    if (protocol === "grpc-web" && flags & 0x80) return `grpc ${/grpc-status:\s*(\d+)/i.exec(data.toString("latin1"))?.[1] ?? "?"}`;
    rest = rest.subarray(5 + length);
  }
  return "no end of stream";
}

const envelope = (payload: Buffer, flags = 0, declared = payload.length) => {
  const header = Buffer.alloc(5);
  header[0] = flags;
  header.writeUInt32BE(declared, 1);
  return Buffer.concat([header, payload]);
};

const UNTYPED = new Set(["internal", "unknown", "grpc 2", "grpc 13"]);

describe("malformed server-stream requests over HTTP/1.1", () => {
  it("wire/malformed_stream_requests_get_a_typed_error_in_a_complete_answer_never_a_reset", async () => {
    const json = Buffer.from('{"memberExternalId":"someone"}');
    const huge = Buffer.from(JSON.stringify({ memberExternalId: "x".repeat(5 * 1024 * 1024) }));
    // Bodies a confused or hostile client sends: no envelope at all (its first bytes read as a huge length), an
    // envelope over MAX_REQUEST_BYTES sent in full, an envelope longer than the body, two messages where one is
    // expected, and a compressed flag without a compression.
    const bodies: Array<[string, Buffer]> = [
      ["unframed JSON", json],
      ["envelope over the limit", envelope(huge)],
      ["envelope longer than the body", envelope(json, 0, json.length + 100)],
      ["two messages", Buffer.concat([envelope(json), envelope(json)])],
      ["compressed flag, no compression", envelope(json, 1)],
    ];
    const cases: Array<{ what: string; path: string; headers: Record<string, string>; body: Buffer; protocol: "connect" | "grpc-web" }> = [];
    for (const path of ["/kindling.v1.EventService/WatchEvents", "/kindling.v1.MemberService/ExportMember"]) {
      for (const [what, body] of bodies) {
        cases.push({ what: `connect ${what}`, path, headers: { "content-type": "application/connect+json", "connect-protocol-version": "1" }, body, protocol: "connect" });
        cases.push({ what: `grpc-web ${what}`, path, headers: { "content-type": "application/grpc-web+json", "x-grpc-web": "1" }, body, protocol: "grpc-web" });
      }
      // Headers connect refuses before it reads a byte of the body.
      cases.push({ what: "connect bad timeout header", path, headers: { "content-type": "application/connect+json", "connect-protocol-version": "1", "connect-timeout-ms": "-1" }, body: envelope(json), protocol: "connect" });
      cases.push({ what: "connect unknown compression", path, headers: { "content-type": "application/connect+json", "connect-protocol-version": "1", "connect-content-encoding": "zstd-nope" }, body: envelope(json, 1), protocol: "connect" });
    }
    // The reset was a race; each case runs several times.
    const ROUNDS = 12;
    const outcomes: Record<string, number> = {};
    const problems: Array<{ what: string; path: string; ending: string; code: string | undefined; received: string }> = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of cases) {
        if (c.body.length > 1024 * 1024 && round % 4 !== 0) continue;
        const { received, ending } = await exchange(c.path, c.headers, c.body);
        const response = parseResponse(received);
        const code = response && streamCode(response, c.protocol);
        const key = `${c.what}: ${ending} ${code ?? "no answer"}`;
        outcomes[key] = (outcomes[key] ?? 0) + 1;
        if (ending !== "fin" || code === undefined || UNTYPED.has(code) || code === "ok" || code === "no end of stream") {
          problems.push({ what: `${c.what} (round ${round})`, path: c.path, ending, code, received: received.subarray(0, 300).toString("latin1") });
        }
      }
    }
    expect(problems.slice(0, 5), JSON.stringify(outcomes, null, 1)).toEqual([]);
    // The server is still there.
    expect((await fetch(new URL("/healthz", api.url))).status).toBe(200);
  });
});
