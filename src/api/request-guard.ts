// What connect does with a request before any interceptor sees it — read the body, decode it, parse it — is checked
// here first, so that those failures speak the API's language like every other error: a google.rpc.ErrorInfo
// reason, and a field violation naming the API field.
//
// - A body over MAX_REQUEST_BYTES is RESOURCE_EXHAUSTED with reason REQUEST_TOO_LARGE, on every protocol.
// - Connect JSON (POST and the GET form `?encoding=json&message=…`) must be valid UTF-8: connect's decoder would
//   replace bad bytes with U+FFFD and store them. INVALID_ARGUMENT (INVALID_REQUEST) names the string field.
// - Connect JSON with a field the message does not have is INVALID_ARGUMENT naming it, as ProtoJSON's default is
//   (connect's is to drop it silently), unless the operator asked for lenient parsing during a rolling upgrade
//   (KINDLING_JSON_IGNORE_UNKNOWN_FIELDS). Binary protobuf keeps unknown fields as protobuf always does.
//
// Connect's own errors that still come back without an ErrorInfo (a malformed JSON document, a compressed body
// that inflates past the limit) are given one on the way out, through the same mapper as everything else.
import type { DescField, DescMessage, JsonObject } from "@bufbuild/protobuf";
import { fromBinary, fromJsonString, ScalarType } from "@bufbuild/protobuf";
import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import { createAsyncIterable, type UniversalHandler, type UniversalServerRequest, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorFromJsonBytes, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { ApiError, toConnectError, type FieldViolation } from "./errors.ts";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";

export interface RequestGuardOptions {
  readonly maxRequestBytes: number;
  /** Drop unknown fields of Connect JSON requests instead of refusing them (rolling upgrades). */
  readonly ignoreUnknownJsonFields: boolean;
}

/** The JSON options connect itself parses with, for the paths the guard leaves to it (streams, gRPC JSON). */
export function strictJsonOptions(options: Pick<RequestGuardOptions, "ignoreUnknownJsonFields">) {
  return { ignoreUnknownFields: options.ignoreUnknownJsonFields, textDecoder: new TextDecoder("utf-8", { fatal: true }) };
}

export function tooLarge(limit: number): ApiError {
  return new ApiError(Code.ResourceExhausted, "REQUEST_TOO_LARGE", `the request is larger than the limit of ${limit} bytes (MAX_REQUEST_BYTES)`, {
    metadata: { limit_bytes: String(limit) },
  });
}

type Protocol = "connect-unary" | "connect-get" | "other";

function protocolOf(req: UniversalServerRequest): Protocol {
  if (req.method === "GET") return "connect-get";
  const type = (req.header.get("content-type") ?? "").toLowerCase();
  return /^application\/(json|proto)(;|$)/.test(type) ? "connect-unary" : "other";
}

const isJson = (req: UniversalServerRequest) => /^application\/json(;|$)/i.test(req.header.get("content-type") ?? "");
const compressed = (encoding: string | null) => encoding !== null && encoding !== "" && encoding.toLowerCase() !== "identity";

/** Wraps one of connect's per-method handlers. */
export function guardHandler(handler: UniversalHandler, options: RequestGuardOptions): UniversalHandler {
  const limit = options.maxRequestBytes;
  const unary = handler.method.methodKind === "unary";

  const guarded = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    const protocol = protocolOf(req);
    try {
      if (protocol === "connect-unary" && unary && !compressed(req.header.get("content-encoding"))) {
        req = await checkedConnectPost(req, handler.method.input, options);
      } else if (protocol === "connect-get" && unary) {
        checkConnectGet(req, handler.method.input, options);
      } else if (protocol === "other" && (unary || handler.method.methodKind === "server_streaming")) {
        // gRPC, gRPC-Web, and a Connect stream's request: one envelope (5 bytes of header) holds the message. An
        // error the body throws is what connect puts in the trailers (its end-of-stream message for Connect),
        // details included. A server stream's request is one message too, so it is read whole here before connect
        // sees it: connect stops reading a body it refuses mid-way (an envelope declaring more than the limit, a
        // second message), and over HTTP/1.1 a request abandoned before its end takes the connection with it —
        // the client saw a reset instead of the answer.
        req = { ...req, body: checkedEnvelope(req, limitedBody(req, limit), handler.method.input, options) };
      }
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      return connectErrorResponse(toConnectError(error));
    }
    const res = await handler(req);
    return protocol === "other" ? res : withErrorInfo(res);
  };
  return Object.assign(guarded, {
    protocolNames: handler.protocolNames,
    supportedContentType: handler.supportedContentType,
    allowedMethods: handler.allowedMethods,
    requestPath: handler.requestPath,
    service: handler.service,
    method: handler.method,
  });
}

function connectErrorResponse(error: ConnectError): UniversalServerResponse {
  const body = errorToJsonBytes(error, {});
  return {
    status: codeToHttpStatus(error.code),
    header: new Headers({ "content-type": "application/json", "content-length": String(body.byteLength) }),
    body: createAsyncIterable([body]),
  };
}

/** A Connect error answer that has no ErrorInfo (raised by connect before any interceptor) gets one. */
async function withErrorInfo(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  if (res.status === 200 || res.body === undefined || compressed(res.header?.get("content-encoding") ?? null)) return res;
  if (!/^application\/json/.test(new Headers(res.header).get("content-type") ?? "")) return res;
  const chunks: Uint8Array[] = [];
  for await (const chunk of res.body) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  let error: ConnectError;
  try {
    error = errorFromJsonBytes(bytes, undefined, new ConnectError("", Code.Unknown));
  } catch {
    return { ...res, body: createAsyncIterable([bytes]) };
  }
  if (error.findDetails(ErrorInfoSchema).length > 0) return { ...res, body: createAsyncIterable([bytes]) };
  const mapped = toConnectError(error.code === Code.ResourceExhausted ? tooLargeFrom(error) : error);
  const body = errorToJsonBytes(mapped, {});
  const header = new Headers(res.header);
  header.set("content-length", String(body.byteLength));
  return { ...res, header, body: createAsyncIterable([body]) };
}

/** Connect's own "message size … readMaxBytes …" (a compressed body that inflates past the limit) in our words. */
function tooLargeFrom(error: ConnectError): ApiError | ConnectError {
  const limit = /readMaxBytes (\d+)/.exec(error.rawMessage)?.[1];
  return limit === undefined ? error : tooLarge(Number(limit));
}

/**
 * A refused body is still read to its end (and thrown away), up to this many bytes: an HTTP/1.1 client that is
 * still sending when the answer comes can see its upload fail instead of reading the REQUEST_TOO_LARGE answer.
 * Past it, the connection is dropped rather than read further.
 */
const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;

async function drain(body: AsyncIterable<Uint8Array>, already: number): Promise<void> {
  let size = already;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > DRAIN_LIMIT_BYTES) return;
  }
}

const declaredLength = (req: UniversalServerRequest) => Number(req.header.get("content-length") ?? Number.NaN);

/** The body as one chunk, refused past the limit (by its Content-Length before keeping any of it). */
async function readBody(req: UniversalServerRequest, limit: number): Promise<Uint8Array> {
  const body = req.body;
  if (body instanceof Uint8Array) {
    if (body.byteLength > limit) throw tooLarge(limit);
    return body;
  }
  if (typeof body !== "object" || body === null || !(Symbol.asyncIterator in body)) throw new ConnectError("request body already parsed", Code.Internal);
  const stream = body;
  const declared = declaredLength(req);
  if (Number.isFinite(declared) && declared > limit) {
    if (declared <= DRAIN_LIMIT_BYTES) await drain(stream, 0);
    throw tooLarge(limit);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.byteLength;
    if (size > limit) {
      await drain(stream, size);
      throw tooLarge(limit);
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/**
 * A gRPC or gRPC-Web unary body refused past the limit: by its Content-Length, by the length its envelope header
 * declares (connect would refuse that as soon as it reads the header, without an ErrorInfo), or as it arrives.
 */
function limitedBody(req: UniversalServerRequest, limit: number): AsyncIterable<Uint8Array> {
  const body = req.body as AsyncIterable<Uint8Array>;
  const declared = declaredLength(req);
  const refuse = async (read: number) => {
    await drain(body, read);
    return toConnectError(tooLarge(limit));
  };
  return {
    async *[Symbol.asyncIterator]() {
      if (Number.isFinite(declared) && declared > limit + 5) throw await refuse(0);
      let head = Buffer.alloc(0);
      let size = 0;
      for await (const chunk of body) {
        size += chunk.byteLength;
        if (head.length < 5) {
          head = Buffer.concat([head, chunk.subarray(0, 5 - head.length)]);
          if (head.length === 5 && head.readUInt32BE(1) > limit) throw await refuse(size);
        }
        if (size > limit + 5) throw await refuse(size);
        yield chunk;
      }
    },
  };
}

/**
 * A gRPC or gRPC-Web unary body, or a server stream's request body (any protocol), that cannot be read as one
 * message is refused as INVALID_ARGUMENT (reason
 * MALFORMED_REQUEST): a truncated envelope, a length that disagrees with the bytes, an unknown flag, a compressed
 * flag without a compression the server knows, a payload that does not inflate or parse. Connect would answer
 * INTERNAL, as if the server were at fault, and clients would not know the request itself is bad.
 */
function checkedEnvelope(req: UniversalServerRequest, body: AsyncIterable<Uint8Array>, input: DescMessage, options: RequestGuardOptions): AsyncIterable<Uint8Array> {
  // gRPC and gRPC-Web name the message compression in grpc-encoding, Connect streams in connect-content-encoding.
  const encoding = (req.header.get("grpc-encoding") ?? req.header.get("connect-content-encoding") ?? "identity").toLowerCase();
  const json = /[+/]json(;|$)/i.test(req.header.get("content-type") ?? "");
  return {
    async *[Symbol.asyncIterator]() {
      const chunks: Uint8Array[] = [];
      for await (const chunk of body) chunks.push(chunk);
      const bytes = Buffer.concat(chunks);
      const problem = envelopeProblem(bytes, encoding, json, input, options);
      if (problem !== undefined) throw toConnectError(malformed(problem));
      yield bytes;
    },
  };
}

export function malformed(problem: string): ApiError {
  return new ApiError(Code.InvalidArgument, "MALFORMED_REQUEST", `the request cannot be read: ${problem}`);
}

function envelopeProblem(bytes: Buffer, encoding: string, json: boolean, input: DescMessage, options: RequestGuardOptions): string | undefined {
  if (bytes.length < 5) return "the message envelope is truncated";
  const flag = bytes[0]!;
  if (flag !== 0 && flag !== 1) return `unknown envelope flag ${flag}`;
  const length = bytes.readUInt32BE(1);
  if (length !== bytes.length - 5) return `the envelope declares ${length} bytes and holds ${bytes.length - 5}`;
  let payload: Uint8Array = bytes.subarray(5);
  if (flag === 1) {
    const inflate = encoding === "gzip" ? gunzipSync : encoding === "deflate" ? inflateSync : encoding === "br" ? brotliDecompressSync : undefined;
    if (inflate === undefined) return `a compressed message without a known encoding (${encoding})`;
    try {
      payload = inflate(payload, { maxOutputLength: options.maxRequestBytes });
    } catch {
      return `the message does not inflate as ${encoding}`;
    }
  }
  try {
    if (json) fromJsonString(input, fatalDecoder.decode(payload), { ignoreUnknownFields: options.ignoreUnknownJsonFields });
    else fromBinary(input, payload);
  } catch (error) {
    return error instanceof Error ? error.message : "the message does not parse";
  }
  return undefined;
}

async function checkedConnectPost(req: UniversalServerRequest, input: DescMessage, options: RequestGuardOptions): Promise<UniversalServerRequest> {
  const bytes = await readBody(req, options.maxRequestBytes);
  const json = isJson(req) ? checkJson(bytes, input, options) : undefined;
  // A checked JSON object goes on parsed: connect reads it with fromJson's defaults (unknown fields refused, which
  // the check has just ruled out), so the body is not decoded and parsed a second time. Lenient parsing needs
  // connect's own options, so it gets the bytes.
  if (json !== undefined && !options.ignoreUnknownJsonFields) return { ...req, body: json };
  return { ...req, body: createAsyncIterable([bytes]) };
}

function checkConnectGet(req: UniversalServerRequest, input: DescMessage, options: RequestGuardOptions): void {
  const query = new URL(req.url).search.slice(1);
  const params = new Map<string, string>();
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    if (eq > 0) params.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  // URLSearchParams would turn an invalid percent-encoded byte into U+FFFD; the raw bytes are what was sent.
  const raw = params.get("message") ?? "";
  const bytes = params.get("base64") === "1" ? base64Decode(decodeURIComponentBytes(raw).toString()) : decodeURIComponentBytes(raw);
  if (bytes.byteLength > options.maxRequestBytes) throw tooLarge(options.maxRequestBytes);
  if (params.get("encoding") === "json" && !compressed(params.get("compression") ?? null)) checkJson(bytes, input, options);
}

function decodeURIComponentBytes(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "%" && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c === "+") {
      out.push(0x20);
    } else {
      out.push(...Buffer.from(c, "utf8"));
    }
  }
  return Buffer.from(out);
}

const fatalDecoder = new TextDecoder("utf-8", { fatal: true });
const lenientDecoder = new TextDecoder("utf-8");

/** Refuses invalid UTF-8 and (unless lenient) unknown fields; returns the parsed document when it is a JSON object. */
function checkJson(bytes: Uint8Array, input: DescMessage, options: RequestGuardOptions): JsonObject | undefined {
  let text: string;
  let badUtf8 = false;
  try {
    text = fatalDecoder.decode(bytes);
  } catch {
    text = lenientDecoder.decode(bytes);
    badUtf8 = true;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    if (badUtf8) throw invalidRequest([{ field: "", description: "the request body is not valid UTF-8", reason: "INVALID_UTF8" }]);
    return undefined; // not JSON at all: connect says so
  }
  const problem = findProblem(input, json, "", { utf8: badUtf8, unknown: !options.ignoreUnknownJsonFields });
  if (problem) throw invalidRequest([problem]);
  if (badUtf8) throw invalidRequest([{ field: "", description: "the request body is not valid UTF-8", reason: "INVALID_UTF8" }]);
  return typeof json === "object" && json !== null && !Array.isArray(json) ? (json as JsonObject) : undefined;
}

function invalidRequest(violations: FieldViolation[]): ApiError {
  const message = violations.map((v) => (v.field === "" ? v.description : `${v.field}: ${v.description}`)).join("; ");
  return new ApiError(Code.InvalidArgument, "INVALID_REQUEST", message, { violations });
}

const REPLACEMENT = "\uFFFD";
const join = (path: string, name: string) => (path === "" ? name : `${path}.${name}`);

/** Well-known types have their own JSON forms (a Timestamp is a string, a Struct any object): not walked by field. */
const isWellKnown = (desc: DescMessage) => desc.file.name.startsWith("google/protobuf/");

/**
 * The first field of `json` (a ProtoJSON value of `desc`) that is not a field of the message, or a string that held
 * invalid UTF-8 (decoded as U+FFFD), with its path in API field names (`activity.metadata["k"]`, `items[2].name`).
 */
function findProblem(desc: DescMessage, json: unknown, path: string, check: { utf8: boolean; unknown: boolean }): FieldViolation | undefined {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined;
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    const field = desc.fields.find((f) => f.jsonName === key || f.name === key);
    if (field === undefined) {
      if (key.startsWith("[")) continue; // an extension, by its full name
      if (check.unknown) {
        return { field: join(path, key), description: `unknown field "${key}" of ${desc.typeName}`, reason: "UNKNOWN_FIELD" };
      }
      if (check.utf8 && containsReplacement(value)) return badUtf8(join(path, key));
      continue;
    }
    const found = fieldProblem(field, value, join(path, field.name), check);
    if (found) return found;
  }
  return undefined;
}

function fieldProblem(field: DescField, value: unknown, path: string, check: { utf8: boolean; unknown: boolean }): FieldViolation | undefined {
  switch (field.fieldKind) {
    case "scalar":
      return check.utf8 && field.scalar === ScalarType.STRING && containsReplacement(value) ? badUtf8(path) : undefined;
    case "enum":
      return check.utf8 && containsReplacement(value) ? badUtf8(path) : undefined;
    case "message":
      return messageProblem(field.message, value, path, check);
    case "list": {
      if (!Array.isArray(value)) return undefined;
      for (const [i, item] of value.entries()) {
        const at = `${path}[${i}]`;
        const found = field.listKind === "message" ? messageProblem(field.message, item, at, check) : check.utf8 && containsReplacement(item) ? badUtf8(at) : undefined;
        if (found) return found;
      }
      return undefined;
    }
    case "map": {
      if (typeof value !== "object" || value === null) return undefined;
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        const at = `${path}[${JSON.stringify(k)}]`;
        if (check.utf8 && k.includes(REPLACEMENT)) return badUtf8(path);
        const found = field.mapKind === "message" ? messageProblem(field.message, v, at, check) : check.utf8 && containsReplacement(v) ? badUtf8(at) : undefined;
        if (found) return found;
      }
      return undefined;
    }
  }
}

function messageProblem(desc: DescMessage, value: unknown, path: string, check: { utf8: boolean; unknown: boolean }): FieldViolation | undefined {
  if (isWellKnown(desc)) return check.utf8 && containsReplacement(value) ? badUtf8(path) : undefined;
  return findProblem(desc, value, path, check);
}

function containsReplacement(value: unknown): boolean {
  if (typeof value === "string") return value.includes(REPLACEMENT);
  if (Array.isArray(value)) return value.some(containsReplacement);
  if (typeof value === "object" && value !== null) return Object.entries(value).some(([k, v]) => k.includes(REPLACEMENT) || containsReplacement(v));
  return false;
}

const badUtf8 = (field: string): FieldViolation => ({ field, description: "not valid UTF-8", reason: "INVALID_UTF8" });
