// Issue 17, item 6: the wire fuzzed. Generated and mutated requests for every RPC of every kindling.v1 service,
// in Connect JSON, Connect binary, gRPC (HTTP/2) and gRPC-Web: wrong types, huge and deeply nested values, NUL
// and lone surrogates, odd unicode, random bytes, truncated frames, bad compression flags. Every answer is a typed
// error or a success, never INTERNAL or UNKNOWN, never a hang, never a crash; a refused request stores nothing
// (the database's contents, hashed table by table, are the same before and after it).
// Sizes: RELIABILITY_FUZZ_CASES per RPC and protocol (reduced 4; full 40). Seed: RELIABILITY_FUZZ_SEED.
import { readdirSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import { fileURLToPath } from "node:url";
import { create, fromBinary, fromJsonString, ScalarType, toBinary, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { startTestApi, type TestApi } from "../support/api.ts";
import { dailyDefinition, transportFor } from "./shared.ts";
import { size, writeFigures } from "./support.ts";

const CASES = size("RELIABILITY_FUZZ_CASES", 4, 40);
const SEED = Number(process.env.RELIABILITY_FUZZ_SEED ?? 1_717);
const TIMEOUT_MS = 10_000;

const HOSTILE_RANDOM = size("RELIABILITY_HOSTILE_RANDOM", 40, 400);

let api: TestApi;
// The same server with KINDLING_DB_PREPARED_STATEMENTS=false: the recording path's SQL carries every value as a
// quoted literal in its text.
let literalApi: TestApi;
let db: pg.Pool;
let services: DescService[];

async function generatedServices(): Promise<DescService[]> {
  const dir = fileURLToPath(new URL("../../src/gen/kindling/v1/", import.meta.url));
  const found: DescService[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith("_pb.js")).sort()) {
    const module = (await import(`${dir}${file}`)) as Record<string, unknown>;
    for (const value of Object.values(module)) if ((value as { kind?: string } | null)?.kind === "service") found.push(value as DescService);
  }
  return found;
}

beforeAll(async () => {
  [api, literalApi] = await Promise.all([startTestApi({ label: "wire_fuzz" }), startTestApi({ label: "wire_literal", env: { KINDLING_DB_PREPARED_STATEMENTS: "false" } })]);
  db = new pg.Pool({ connectionString: api.databaseUrl, max: 2 });
  services = await generatedServices();
});
afterAll(async () => {
  await db?.end();
  await api?.close();
  await literalApi?.close();
});

// ---- hostile values -------------------------------------------------------------------------------------------

export const HOSTILE_STRINGS: readonly string[] = [
  "'", "''", "\\", "\\'", "E'\\x00'", "E'abc'", "$1", "$$", "$tag$ x $tag$", "'; drop table activity; --", "\"", "%s%n", "\u0000",
  "a\u0000b", "\ud800", "x\udfffy", "\udc00\ud800", "\u202eevil", "\u200b", "\ufeff", "e\u0301", "🔥".repeat(3), "\u{10ffff}",
  "ﷺ", "Ⅻ", "\r\n", "\t", "\u0085", "\u2028", "𝕏", "null", "NaN", "-0", "1e309", "../../etc/passwd", "<script>", "\\u0000",
];

const hostileString = fc.constantFrom(...HOSTILE_STRINGS);
const oddString = fc.oneof(hostileString, fc.string({ unit: "binary", maxLength: 40 }), fc.string({ unit: "grapheme", maxLength: 20 }));
const deep = (depth: number, wrapArray: boolean): string => (wrapArray ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth));
const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  oddString,
  fc.constantFrom(1e308, -1, 2 ** 64, -(2 ** 63), 0.5, true, false, null, [], {}, "1", "-1", "9999999999999999999999", "NaN", "Infinity", "1970-01-01T00:00:00Z", "P1D", "A".repeat(5_000)),
);

function fieldsOf(message: DescMessage): string[] {
  return message.fields.map((f) => f.jsonName);
}

/** A JSON body for the method's input: random JSON, or the input's own fields with values of any type. */
function jsonBodyArbitrary(method: DescMethod): fc.Arbitrary<string | Buffer> {
  const names = fieldsOf(method.input);
  const objectWithFields =
    names.length === 0
      ? fc.dictionary(oddString, wrongValue, { maxKeys: 3 })
      : fc.dictionary(fc.oneof(fc.constantFrom(...names), oddString), wrongValue, { maxKeys: Math.min(6, names.length + 1) });
  return fc.oneof(
    { weight: 5, arbitrary: objectWithFields.map((o) => JSON.stringify(o)) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.constantFrom(deep(20_000, true), deep(5_000, false), `{"${names[0] ?? "x"}":${deep(3_000, false)}}`) },
    // Lone surrogates and NUL as JSON escapes (JSON.stringify would keep the lone surrogate escaped too).
    { weight: 2, arbitrary: fc.constantFrom(...names.length > 0 ? names : ["x"]).chain((name) => fc.constantFrom(`{"${name}":"\\ud800"}`, `{"${name}":"a\\u0000b"}`, `{"${name}":"\\udfff\\ud800"}`, `{"${name}":{"\\u0000":"\\ud83d"}}`)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
    { weight: 1, arbitrary: fc.constant(JSON.stringify({ [names[0] ?? "x"]: "x".repeat(5 * 1024 * 1024) })) },
    { weight: 1, arbitrary: fc.constantFrom("", "{", "{}", "[]", "null", '{"a":1,"a":2}', "\ufeff{}") },
  );
}

/** A binary body: random bytes, or a valid encoding of a message with odd strings, truncated or with bytes flipped. */
function binaryBodyArbitrary(method: DescMethod): fc.Arbitrary<Buffer> {
  const stringFields = method.input.fields.filter((f) => f.fieldKind === "scalar" && f.scalar === ScalarType.STRING);
  const valid = fc.array(oddString, { minLength: stringFields.length, maxLength: stringFields.length }).map((values) => {
    const message = create(method.input) as unknown as Record<string, unknown>;
    stringFields.forEach((f, i) => {
      message[f.localName] = values[i]!;
    });
    return Buffer.from(toBinary(method.input, message as never));
  });
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    fc.tuple(valid, fc.nat()).map(([b, cut]) => (b.length === 0 ? b : b.subarray(0, cut % b.length))),
    fc.tuple(valid, fc.nat(), fc.integer({ min: 1, max: 255 })).map(([b, at, x]) => {
      if (b.length === 0) return Buffer.from([x]);
      const copy = Buffer.from(b);
      copy[at % copy.length]! ^= x;
      return copy;
    }),
    // Invalid UTF-8 in a string field (field 1, wire type 2).
    fc.constantFrom(Buffer.from([0x0a, 0x02, 0xc3, 0x28]), Buffer.from([0x0a, 0x03, 0xed, 0xa0, 0x80]), Buffer.from([0x0a, 0x01, 0x00]), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])),
  );
}

/** A gRPC / gRPC-Web body: an envelope with an odd flag or length around a binary body. */
function envelopeArbitrary(method: DescMethod): fc.Arbitrary<{ body: Buffer; gzipHeader: boolean }> {
  return fc.tuple(binaryBodyArbitrary(method), fc.constantFrom(0, 0, 1, 2, 0x80, 0xff), fc.constantFrom("exact", "exact", "short", "long", "huge", "cut"), fc.boolean()).map(([payload, flag, length, gzipHeader]) => {
    const header = Buffer.alloc(5);
    header[0] = flag;
    const declared = length === "exact" || length === "cut" ? payload.length : length === "short" ? Math.max(0, payload.length - 1) : length === "long" ? payload.length + 7 : 0x7fffffff;
    header.writeUInt32BE(declared, 1);
    const body = Buffer.concat([header, payload]);
    return { body: length === "cut" ? body.subarray(0, Math.max(1, body.length - 3)) : body, gzipHeader };
  });
}

function envelopeHeader(length: number): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(length, 1);
  return header;
}

// ---- sending and judging --------------------------------------------------------------------------------------

type Protocol = "connect-json" | "connect-binary" | "grpc" | "grpc-web";

interface Answer {
  // The Connect / gRPC code name, or "ok"; "hang" when no answer came in time; "untyped: …" otherwise.
  code: string;
  detail: string;
}

const GRPC_CODES = ["ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists", "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range", "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated"];

function authHeaders(): Record<string, string> {
  return { apikey: api.admin.keyId, secretkey: api.admin.secret };
}

function connectHttp1(path: string, contentType: string, body: Buffer | string, streaming: boolean): Promise<Answer> {
  return new Promise((resolve) => {
    const url = new URL(path, api.url);
    const req = http.request(url, { method: "POST", headers: { "content-type": contentType, "connect-protocol-version": "1", ...authHeaders() } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode === 200 && !streaming) return resolve({ code: "ok", detail: "" });
        if (streaming && res.statusCode === 200) {
          // Enveloped: the last frame (flag 0x02) holds the end-of-stream JSON with the error, if any.
          const match = text.match(/"code":"([a-z_]+)"/);
          return resolve({ code: match?.[1] ?? "ok", detail: text.slice(0, 200) });
        }
        try {
          const parsed = JSON.parse(text) as { code?: string; message?: string };
          resolve(parsed.code && GRPC_CODES.includes(parsed.code) ? { code: parsed.code, detail: parsed.message ?? "" } : { code: `untyped: HTTP ${res.statusCode}`, detail: text.slice(0, 200) });
        } catch {
          resolve({ code: res.statusCode === 415 || res.statusCode === 404 ? `http_${res.statusCode}` : `untyped: HTTP ${res.statusCode}`, detail: text.slice(0, 200) });
        }
      });
      // A server stream that stays open after answering is an answer.
      if (streaming && res.statusCode === 200) setTimeout(() => {
        req.destroy();
        resolve({ code: "ok", detail: "stream open" });
      }, 1_500).unref();
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve({ code: "hang", detail: path });
    }, TIMEOUT_MS);
    req.on("error", (error) => {
      clearTimeout(timer);
      resolve({ code: `untyped: ${error.message}`, detail: path });
    });
    req.end(body);
  });
}

let session: http2.ClientHttp2Session | undefined;
function h2(): http2.ClientHttp2Session {
  if (!session || session.closed || session.destroyed) {
    session = http2.connect(api.url);
    session.on("error", () => undefined);
  }
  return session;
}

function grpcH2(path: string, body: Buffer, gzipHeader: boolean, streaming: boolean): Promise<Answer> {
  return new Promise((resolve) => {
    let status: string | undefined;
    let message = "";
    let done = false;
    const finish = (answer: Answer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(answer);
    };
    const stream = h2().request({ ":method": "POST", ":path": path, "content-type": "application/grpc+proto", te: "trailers", ...(gzipHeader ? { "grpc-encoding": "gzip" } : {}), ...authHeaders() });
    stream.on("response", (headers) => {
      if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"]);
      else if (headers[":status"] !== 200) finish({ code: `http_${String(headers[":status"])}`, detail: "" });
      else if (streaming) setTimeout(() => {
        stream.close();
        finish({ code: "ok", detail: "stream open" });
      }, 1_500).unref();
    });
    stream.on("trailers", (trailers) => {
      status = String(trailers["grpc-status"]);
      message = String(trailers["grpc-message"] ?? "");
    });
    stream.on("data", () => undefined);
    stream.on("end", () => finish(status === undefined ? { code: "untyped: no grpc-status", detail: path } : { code: GRPC_CODES[Number(status)] ?? `untyped: ${status}`, detail: decodeURIComponent(message) }));
    stream.on("error", (error) => finish({ code: `untyped: ${error.message}`, detail: path }));
    const timer = setTimeout(() => {
      stream.close();
      finish({ code: "hang", detail: path });
    }, TIMEOUT_MS);
    stream.end(body);
  });
}

function grpcWeb(path: string, body: Buffer, gzipHeader: boolean, streaming: boolean): Promise<Answer> {
  return new Promise((resolve) => {
    const url = new URL(path, api.url);
    const req = http.request(url, { method: "POST", headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", ...(gzipHeader ? { "grpc-encoding": "gzip" } : {}), ...authHeaders() } }, (res) => {
      const chunks: Buffer[] = [];
      const judge = () => {
        const all = Buffer.concat(chunks);
        const headerStatus = res.headers["grpc-status"];
        if (headerStatus !== undefined) return { code: GRPC_CODES[Number(headerStatus)] ?? `untyped: ${String(headerStatus)}`, detail: String(res.headers["grpc-message"] ?? "") };
        if (res.statusCode !== 200) return { code: `http_${res.statusCode}`, detail: "" };
        const trailer = all.toString("latin1").match(/grpc-status:\s*(\d+)/i);
        return trailer ? { code: GRPC_CODES[Number(trailer[1])] ?? `untyped: ${trailer[1]}`, detail: all.toString("utf8").slice(-200) } : { code: "untyped: no grpc-status", detail: "" };
      };
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        clearTimeout(timer);
        resolve(judge());
      });
      if (streaming && res.statusCode === 200) setTimeout(() => {
        req.destroy();
        resolve({ code: "ok", detail: "stream open" });
      }, 1_500).unref();
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve({ code: "hang", detail: path });
    }, TIMEOUT_MS);
    req.on("error", (error) => {
      clearTimeout(timer);
      resolve({ code: `untyped: ${error.message}`, detail: path });
    });
    req.end(body);
  });
}

/**
 * A server stream (WatchEvents) sends its response headers with its first message, as gRPC servers do: a valid
 * watch with no event yet stays silent, which is the answer "open, nothing to send", not a hang. Only a request that
 * is one well-formed, uncompressed envelope holding a message that parses counts as valid; anything else that gets
 * no answer is a hang.
 */
function streamRequestIsValid(method: DescMethod, body: Buffer, json: boolean): boolean {
  // Flag 0: not compressed (a grpc-encoding header only says what the client could send).
  if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) return false;
  const payload = body.subarray(5);
  try {
    if (json) fromJsonString(method.input, new TextDecoder("utf-8", { fatal: true }).decode(payload));
    else fromBinary(method.input, payload);
    return true;
  } catch {
    return false;
  }
}

const WAITING: Answer = { code: "ok", detail: "valid stream request, open and waiting for its first message" };

/** Every table's rows, hashed (api_key aside: authenticating stamps its last use, whatever the call's outcome). */
async function fingerprint(): Promise<string> {
  const tables = (await db.query<{ name: string }>("select tablename as name from pg_tables where schemaname = 'public' and tablename not in ('api_key', 'mikro_orm_migrations') order by 1")).rows.map((r) => r.name);
  const parts = tables.map((t) => `(select count(*) || ':' || coalesce(sum(hashtext(x::text)::bigint), 0) from "${t.replaceAll("\"", "\"\"")}" x)`);
  const { rows } = await db.query<{ f: string }>(`select concat_ws('|', ${parts.join(", ")}) as f`);
  return rows[0]!.f;
}

describe("reliability: wire fuzzing", () => {
  it("reliability/fuzzed_requests_for_every_rpc_get_typed_answers_and_refusals_store_nothing", async () => {
    const failures: Array<{ rpc: string; protocol: Protocol; code: string; detail: string; body: string }> = [];
    const counts: Record<string, number> = {};
    const codes: Record<string, number> = {};
    let refusedMutations = 0;
    let storedByRefused = 0;
    let cases = 0;
    const protocols: Protocol[] = ["connect-json", "connect-binary", "grpc", "grpc-web"];
    for (const service of services) {
      for (const method of service.methods) {
        const path = `/${service.typeName}/${method.name}`;
        const streaming = method.methodKind !== "unary";
        const mutates = method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
        const seed = SEED + cases;
        const bodies = {
          "connect-json": fc.sample(jsonBodyArbitrary(method), { numRuns: CASES, seed }),
          "connect-binary": fc.sample(binaryBodyArbitrary(method), { numRuns: CASES, seed }),
          grpc: fc.sample(envelopeArbitrary(method), { numRuns: CASES, seed }),
          "grpc-web": fc.sample(envelopeArbitrary(method), { numRuns: CASES, seed: seed + 1 }),
        };
        for (const protocol of protocols) {
          for (let i = 0; i < CASES; i++) {
            const before = mutates ? await fingerprint() : "";
            let answer: Answer;
            let shown: string;
            if (protocol === "connect-json" || protocol === "connect-binary") {
              const body = bodies[protocol][i]!;
              shown = (typeof body === "string" ? body : body.toString("hex")).slice(0, 120);
              const type = streaming ? (protocol === "connect-json" ? "application/connect+json" : "application/connect+proto") : protocol === "connect-json" ? "application/json" : "application/proto";
              // A Connect stream's body is framed (5-byte envelopes): every other case puts the fuzzed content inside
              // one, the others send it bare, so that its first bytes read as an envelope header (often declaring a
              // huge length).
              const framed = streaming && i % 2 === 0 ? Buffer.concat([envelopeHeader(Buffer.byteLength(body)), Buffer.from(body)]) : body;
              answer = await connectHttp1(path, type, framed, streaming);
              if (answer.code === "hang" && streaming && streamRequestIsValid(method, typeof framed === "string" ? Buffer.from(framed) : framed, protocol === "connect-json")) answer = WAITING;
            } else {
              const { body, gzipHeader } = bodies[protocol][i]!;
              shown = `${gzipHeader ? "gzip " : ""}${body.toString("hex").slice(0, 120)}`;
              answer = protocol === "grpc" ? await grpcH2(path, body, gzipHeader, streaming) : await grpcWeb(path, body, gzipHeader, streaming);
              if (answer.code === "hang" && streaming && streamRequestIsValid(method, body, false)) answer = WAITING;
            }
            cases++;
            counts[protocol] = (counts[protocol] ?? 0) + 1;
            codes[answer.code] = (codes[answer.code] ?? 0) + 1;
            const typed = answer.code !== "internal" && answer.code !== "unknown" && answer.code !== "hang" && !answer.code.startsWith("untyped");
            if (!typed) failures.push({ rpc: path, protocol, code: answer.code, detail: answer.detail.slice(0, 200), body: shown });
            if (mutates && answer.code !== "ok") {
              refusedMutations++;
              if ((await fingerprint()) !== before) {
                storedByRefused++;
                failures.push({ rpc: path, protocol, code: `${answer.code} but stored`, detail: answer.detail, body: shown });
              }
            }
          }
        }
      }
    }
    // Still alive and answering.
    const health = await fetch(new URL("/healthz", api.url));
    session?.close();

    const rpcs = services.reduce((n, s) => n + s.methods.length, 0);
    await writeFigures("6-wire-fuzz", { seed: SEED, rpcs, casesPerRpcAndProtocol: CASES, cases, byProtocol: counts, answers: codes, refusedMutations, storedByRefused, failures: failures.length, firstFailures: failures.slice(0, 20) });
    expect(health.status).toBe(200);
    expect(failures.slice(0, 20)).toEqual([]);
    expect(cases).toBe(rpcs * protocols.length * CASES);
  });

  it("reliability/hostile_strings_through_the_recording_sql_are_stored_byte_for_byte_or_refused", async () => {
    const random = fc.sample(fc.oneof(fc.string({ unit: "binary", minLength: 1, maxLength: 30 }), fc.string({ unit: "grapheme", minLength: 1, maxLength: 10 }), fc.array(hostileString, { minLength: 2, maxLength: 5 }).map((a) => a.join(""))), { numRuns: HOSTILE_RANDOM, seed: SEED });
    const strings = [...HOSTILE_STRINGS, ...random];
    const outcomes: Record<string, number> = {};
    const problems: unknown[] = [];
    let cases = 0;
    for (const [label, server] of [["prepared", api], ["literal", literalApi]] as const) {
      const serverDb = new pg.Pool({ connectionString: server.databaseUrl, max: 1 });
      try {
        const definitionId = await dailyDefinition(transportFor(server.url, server.admin, "connect-json"), "Hostile");
        for (const protocol of ["connect-json", "grpc"] as const) {
          const activities = server.client(ActivityService, server.admin, protocol);
          for (const [i, text] of strings.entries()) {
            const id = `${label}-${protocol}-${i}`;
            const sent = {
              member: `${id}|${text}`,
              unique: `${text}#${id}`,
              distinctKey: text.slice(0, 200),
              platform: [...text].slice(0, 60).join(""),
              metadataKey: `k${[...text].slice(0, 60).join("")}`,
              metadataValue: text,
            };
            // What the wire carries: binary protobuf encodes UTF-8, which has no lone surrogates (they become U+FFFD).
            const wire = (v: string) => (protocol === "grpc" ? new TextDecoder("utf-8", { ignoreBOM: true }).decode(new TextEncoder().encode(v)) : v);
            const outcome = await activities
              .recordActivity({
                activity: {
                  memberRef: { case: "memberExternalId", value: sent.member },
                  target: { case: "definitionId", value: definitionId },
                  uniqueIdentifier: sent.unique,
                  distinctKey: sent.distinctKey,
                  platform: sent.platform,
                  metadata: { [sent.metadataKey]: sent.metadataValue },
                },
              })
              .then(() => "stored", (error: unknown) => Code[ConnectError.from(error).code]);
            cases++;
            outcomes[`${label} ${protocol} ${outcome}`] = (outcomes[`${label} ${protocol} ${outcome}`] ?? 0) + 1;
            const { rows } = await serverDb.query<{ external_id: string; unique_identifier: string; distinct_key: string | null; platform: string | null; metadata: Record<string, string> }>(
              `select m.external_id, a.unique_identifier, a.distinct_key, a.platform, a.metadata from activity a join member m on m.id = a.member_id
                where a.tenant_id = $1 and a.unique_identifier like '%' || $2`,
              [server.admin.tenantId, `#${id}`],
            );
            const members = await serverDb.query("select 1 from member where tenant_id = $1 and external_id like $2 || '|%'", [server.admin.tenantId, id]);
            if (outcome === "stored") {
              const row = rows[0];
              const expected = { external_id: wire(sent.member), unique_identifier: wire(sent.unique), distinct_key: wire(sent.distinctKey), platform: wire(sent.platform), metadata: { [wire(sent.metadataKey)]: wire(sent.metadataValue) } };
              const got = row && { external_id: row.external_id, unique_identifier: row.unique_identifier, distinct_key: row.distinct_key, platform: row.platform, metadata: row.metadata };
              if (rows.length !== 1 || JSON.stringify(got) !== JSON.stringify(expected)) problems.push({ label, protocol, text, expected, got });
            } else if (outcome !== "InvalidArgument" || rows.length > 0 || (members.rowCount ?? 0) > 0) {
              problems.push({ label, protocol, text, outcome, storedRows: rows.length, members: members.rowCount });
            }
          }
        }
      } finally {
        await serverDb.end();
      }
    }
    await writeFigures("6-hostile-strings", { cases, strings: strings.length, outcomes, problems: problems.length, firstProblems: problems.slice(0, 10) });
    expect(problems.slice(0, 10)).toEqual([]);
    expect(cases).toBe(strings.length * 4);
    // Some were refused (NUL) and most were stored: the check saw both sides.
    expect(Object.entries(outcomes).filter(([k]) => k.endsWith("stored")).length).toBe(4);
  });
});
