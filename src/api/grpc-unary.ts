// Unary gRPC over HTTP/2 — the calls internal services make on every purchase, login or progress read — answered
// by connect's own unary machinery without its general streaming pipeline.
//
// connect-node serves every protocol through one generic path: Node request → web Headers + AbortController →
// an async-iterable pipeline (split envelopes, decompress, parse, invoke, serialize, compress, join) → Node
// response. For a unary gRPC call that pipeline is most of the CPU a call costs here (≈0.4 ms a call, measured in
// bench/: a no-op RPC topped out at ≈2,000 calls/s with the API process's thread saturated). This module answers
// the same calls with the same pieces connect uses for them, called directly:
//   - a handler context as connect builds it (deadline from `grpc-timeout`; a signal aborted by the deadline, the
//     client, shutdown, or the call's end), with one controller per call instead of connect's linked ones,
//   - the interceptor chain and the implementation (`invokeUnaryImplementation`, exactly as connect's handlers),
//   - compression negotiation and the status trailers (`compressionNegotiate`, `setTrailerStatus`).
// What is ours is the framing of one message in one gRPC envelope, the call's signal, the headers as RecordHeaders
// (src/api/record-headers.ts), and the call's HTTP/2 stream: taken as its headers arrive on a connection framed by
// src/api/h2/connection.ts (a FramedStream), its answer written in one piece. Responses are encoded by
// src/api/known-encoding.ts (toBinary, the bytes made once for a shared response, or the kept bytes of a reused
// progress answer plus its per-read fields).
//
// Only plain, well-formed calls take this path: HTTP/2, POST, `application/grpc[+proto]`, an uncompressed request
// (or `identity`), a valid timeout, and a body that is exactly one uncompressed envelope within the size limit.
// Anything else — gRPC-Web, Connect, JSON, streaming methods, compressed requests — is relayed to connect-node by the
// connection; a malformed body is replayed into connect's own gRPC handler, so its error answers stay exact.
import type http2 from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { encodeMessage } from "./known-encoding.ts";
import { RecordHeaders, type HeaderRecord } from "./record-headers.ts";
import { Code, ConnectError, createContextValues, type HandlerContext, type Interceptor, type MethodImplSpec } from "@connectrpc/connect";
import type { Compression, UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import { compressionNegotiate, invokeUnaryImplementation } from "@connectrpc/connect/protocol";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { FramedStream } from "./h2/connection.ts";

/** A unary method with its implementation, as connect's router holds it. */
export type UnaryMethodSpec = Extract<MethodImplSpec, { kind: "unary" }>;

export interface GrpcUnaryOptions {
  /** Unary methods answered here, by request path (`/package.Service/Method`). */
  readonly methods: ReadonlyMap<string, UnaryMethodSpec>;
  /** connect's own handlers by request path: malformed bodies are replayed into them. */
  readonly connectHandlers: ReadonlyMap<string, UniversalHandler>;
  readonly interceptors: readonly Interceptor[];
  readonly acceptCompression: readonly Compression[];
  readonly compressMinBytes: number;
  readonly readMaxBytes: number;
  readonly shutdownSignal: AbortSignal;
  /** A call that could not be answered at all (its stream broke); connect-node's adapter logs these too. */
  readonly onError: (error: unknown, path: string) => void;
}

export interface GrpcUnary {
  /** Takes the call and answers it on its stream (true), or leaves the stream untouched (false), to be relayed. */
  handle(stream: FramedStream, headers: http2.IncomingHttpHeaders): boolean;
}

const CONTENT_TYPES = new Set(["application/grpc", "application/grpc+proto"]);
/** A call's response headers and trailers as they start (RecordHeaders: copied only if the call changes them). */
export const RESPONSE_HEADER = Object.freeze({ "content-type": "application/grpc+proto" });
export const OK_TRAILER = Object.freeze({ "grpc-status": "0" });
/**
 * The reason the handler context is aborted with once a call succeeded (connect aborts it then too, with a
 * DOMException whose creation was ≈5 % of a no-op call's CPU here). A frozen plain object: nothing can change it
 * for later calls, and `ConnectError.from` wraps it in a new error rather than returning it.
 */
const CALL_ENDED = Object.freeze({ name: "CallEnded", message: "the call has ended" });

/** A gRPC envelope's header: one byte of flags (1: compressed), then the message's length, 32 bits big-endian. */
const ENVELOPE_BYTES = 5;

const totals = { answered: 0, replayed: 0 };

/** Calls this process answered on the unary path, and bodies it handed to connect's handler (tests, benchmark). */
export function grpcUnaryTotals(): { readonly answered: number; readonly replayed: number } {
  return { ...totals };
}

export function createGrpcUnary(options: GrpcUnaryOptions): GrpcUnary {
  const interceptors = [...options.interceptors];
  const acceptCompression = [...options.acceptCompression];

  // The call's signal. connect's createHandlerContext links a new controller to a deadline controller, the
  // request's signal and the shutdown signal with a listener on each, and copies the three header sets; that
  // was ≈13 % of a no-op call's CPU here. Here each call has one controller: aborted by its own deadline timer
  // (only when the call has a deadline), by the client closing the stream, by shutdown (one listener for every
  // open call) or, like connect's, when the call ends.
  const open = new Set<AbortController>();
  options.shutdownSignal.addEventListener(
    "abort",
    () => {
      for (const controller of open) controller.abort(options.shutdownSignal.reason);
    },
    { once: true },
  );

  function openCall(timeoutMs: number | undefined) {
    const controller = new AbortController();
    if (options.shutdownSignal.aborted) controller.abort(options.shutdownSignal.reason);
    else open.add(controller);
    let timer: NodeJS.Timeout | undefined;
    let deadline: number | undefined;
    if (timeoutMs !== undefined) {
      deadline = Date.now() + timeoutMs;
      const expire = () => controller.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
      if (timeoutMs <= 0) expire();
      else timer = setTimeout(expire, timeoutMs);
    }
    return {
      controller,
      timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
      close(reason: unknown) {
        clearTimeout(timer);
        open.delete(controller);
        controller.abort(reason);
      },
    };
  }

  function eligible(headers: http2.IncomingHttpHeaders): UnaryMethodSpec | undefined {
    if (headers[":method"] !== "POST") return undefined;
    const type = headers["content-type"];
    if (type === undefined || !CONTENT_TYPES.has(type)) return undefined;
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return undefined;
    const path = headers[":path"];
    return path === undefined ? undefined : options.methods.get(path);
  }

  async function answer(spec: UnaryMethodSpec, stream: FramedStream, headers: http2.IncomingHttpHeaders, body: Buffer, arrived: number): Promise<void> {
    const header = new RecordHeaders(headers);
    // Parsed as the request arrived: the deadline runs from then, as in connect, not from the body's last byte.
    const timeout = parseTimeout(header.get("grpc-timeout"), Number.MAX_SAFE_INTEGER);
    const length = body.length >= 5 ? body.readUInt32BE(1) : -1;
    const wellFormed = length >= 0 && body[0] === 0 && body.length === 5 + length && length <= options.readMaxBytes && timeout.error === undefined;
    if (!wellFormed) return replay(stream, headers, header, [body]);
    let input;
    try {
      input = fromBinary(spec.method.input, body.subarray(5));
    } catch {
      // connect's handler answers an unparsable message with its own error.
      return replay(stream, headers, header, [body]);
    }
    totals.answered++;

    const compression = compressionNegotiate(acceptCompression, null, header.get("grpc-accept-encoding"), "grpc-accept-encoding");
    // Nothing between opening the call and the try below can throw, so every opened call is closed.
    const call = openCall(timeout.timeoutMs === undefined ? undefined : timeout.timeoutMs - (Date.now() - arrived));
    let answered = false;
    stream.once("close", () => {
      if (!answered) call.controller.abort(new ConnectError("the client closed the stream", Code.Canceled));
    });
    const context: HandlerContext = {
      method: spec.method,
      service: spec.method.parent,
      requestMethod: "POST",
      protocolName: "grpc",
      url: `http://${authorityOf(headers)}${headers[":path"]}`,
      signal: call.controller.signal,
      timeoutMs: call.timeoutMs,
      requestHeader: header,
      responseHeader: new RecordHeaders(RESPONSE_HEADER),
      responseTrailer: new RecordHeaders(OK_TRAILER),
      values: createContextValues(),
    };
    if (compression.response) context.responseHeader.set("grpc-encoding", compression.response.name);
    let payload: Uint8Array | undefined;
    try {
      const output = await invokeUnaryImplementation(spec, context, input, interceptors);
      payload = await envelope(encodeMessage(spec.method.output, output, ENVELOPE_BYTES), compression.response);
      call.close(CALL_ENDED);
    } catch (error) {
      payload = undefined;
      const connectError = error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
      call.close(connectError);
      setTrailerStatus(context.responseTrailer, connectError);
    }
    answered = true;
    stream.answer(200, nodeHeaders(context.responseHeader), nodeHeaders(context.responseTrailer), payload);
  }

  /**
   * The message in its gRPC envelope: `framed` is the encoding after ENVELOPE_BYTES left free (encodeMessage's
   * headroom), which become the envelope's flags and length; a compressed message gets a buffer of its own.
   */
  async function envelope(framed: Uint8Array, compression: Compression | null): Promise<Uint8Array> {
    const size = framed.byteLength - ENVELOPE_BYTES;
    if (compression && size >= options.compressMinBytes) {
      const data = await compression.compress(framed.subarray(ENVELOPE_BYTES));
      const out = Buffer.allocUnsafe(ENVELOPE_BYTES + data.byteLength);
      writeEnvelopeHeader(out, 1, data.byteLength);
      out.set(data, ENVELOPE_BYTES);
      return out;
    }
    writeEnvelopeHeader(framed, 0, size);
    return framed;
  }

  /**
   * Hands a call this path does not take to connect's own gRPC handler, as if connect-node had read it: the body is
   * what was read so far, then (when the request is still arriving) the rest of the stream. Its answer is a unary
   * gRPC answer (one envelope at most, or an error in trailers), written once it is complete.
   */
  async function replay(stream: FramedStream, headers: http2.IncomingHttpHeaders, header: Headers, read: readonly Buffer[], rest?: AsyncIterable<Buffer>): Promise<void> {
    totals.replayed++;
    const path = headers[":path"] ?? "";
    const handler = options.connectHandlers.get(path);
    if (!handler) throw new Error(`no connect handler for ${path}`);
    const requestAbort = new AbortController();
    stream.once("close", () => requestAbort.abort(new ConnectError("the client closed the stream", Code.Canceled)));
    const uReq: UniversalServerRequest = {
      httpVersion: "2.0",
      method: "POST",
      url: `http://${authorityOf(headers)}${path}`,
      header,
      body: (async function* () {
        for (const chunk of read) if (chunk.length > 0) yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        if (rest) for await (const chunk of rest) yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      })(),
      signal: requestAbort.signal,
    };
    const uRes = await handler(uReq);
    const body: Uint8Array[] = [];
    if (uRes.body) for await (const chunk of uRes.body) body.push(chunk);
    const head = uRes.header === undefined ? {} : nodeHeaders(new Headers(uRes.header));
    const trailer = uRes.trailer === undefined ? undefined : nodeHeaders(new Headers(uRes.trailer));
    stream.answer(uRes.status, head, trailer, body.length === 0 ? undefined : Buffer.concat(body));
  }

  return {
    handle(stream, headers) {
      const spec = eligible(headers);
      if (!spec) return false;
      const arrived = Date.now();
      const chunks: Buffer[] = [];
      let size = 0;
      const settle = (run: Promise<void>) =>
        run.catch((error: unknown) => {
          // Only a broken stream gets here (the call's own errors are answered in trailers): nothing to answer on.
          options.onError(error, headers[":path"] ?? "");
          // Also when the client already reset it: destroy() is what marks the call's work over.
          stream.destroy();
        });
      const onData = (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size <= options.readMaxBytes + 5) return;
        // More than one envelope within the limit can hold: connect's handler reads the rest and answers (with
        // its size error, or its error for a second message) — nothing of it is run here.
        stream.off("data", onData);
        stream.off("end", onEnd);
        stream.pause();
        void settle(replay(stream, headers, new RecordHeaders(headers), chunks, stream));
      };
      const onEnd = () => {
        void settle(answer(spec, stream, headers, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), arrived));
      };
      stream.on("data", onData);
      stream.once("end", onEnd);
      return true;
    },
  };
}

function writeEnvelopeHeader(out: Uint8Array, flags: number, length: number): void {
  out[0] = flags;
  out[1] = length >>> 24;
  out[2] = (length >>> 16) & 0xff;
  out[3] = (length >>> 8) & 0xff;
  out[4] = length & 0xff;
}

/** The request's authority, as the compatibility request gives it (`:authority`, or `host`). */
function authorityOf(headers: http2.IncomingHttpHeaders): string {
  return headers[":authority"] ?? headers.host ?? "";
}

/** Web headers as the record written to the stream: an untouched RecordHeaders' own record, or a copy. */
export function nodeHeaders(headers: Headers): HeaderRecord {
  if (headers instanceof RecordHeaders && headers.untouched !== undefined) return headers.untouched;
  const out: Record<string, string | string[]> = {};
  headers.forEach((value, key) => {
    // Headers joins repeated fields with ", ", which is right for every field but set-cookie.
    out[key] = key === "set-cookie" ? headers.getSetCookie() : value;
  });
  return out;
}
