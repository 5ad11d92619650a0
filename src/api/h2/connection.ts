// Cleartext HTTP/2 (RFC 9113) connections framed here in JavaScript, so that a unary gRPC call costs what its frames
// cost and not what Node's HTTP/2 streams do. Node's HTTP/2 server builds a Duplex stream with its state, listeners
// and ticks for every call; answering a no-op gRPC call on a bare Node HTTP/2 server cost ~37 µs of CPU here, and
// ~7 µs when the frames are read and written directly (bench, 32 calls in flight; docs/scaling.md).
//
// Every connection's frames are read here: the connection's settings, pings, flow control, header blocks (HPACK,
// src/api/h2/hpack.ts) and its streams' lifecycles. Each new stream is offered to `take` (the unary gRPC path,
// src/api/grpc-unary.ts) as a FramedStream; a stream it does not take — gRPC-Web, Connect, streaming methods,
// /readyz and every other route — is relayed to Node's own HTTP/2 server (the one `createApiServer` has always
// served) through an in-process HTTP/2 connection, request and answer passed on with their flow control, so
// everything but the plain unary calls is served exactly as before.
import { EventEmitter } from "node:events";
import http2 from "node:http2";
import type { Socket } from "node:net";
import { duplexPair } from "node:stream";
import { encodeHeaderBlock, HpackDecoder, HpackError } from "./hpack.ts";

const Frame = {
  Data: 0,
  Headers: 1,
  Priority: 2,
  RstStream: 3,
  Settings: 4,
  PushPromise: 5,
  Ping: 6,
  GoAway: 7,
  WindowUpdate: 8,
  Continuation: 9,
} as const;

const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

/** Error codes (RFC 9113 §7). */
export const H2Error = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  STREAM_CLOSED: 5,
  FRAME_SIZE_ERROR: 6,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  COMPRESSION_ERROR: 9,
  ENHANCE_YOUR_CALM: 11,
} as const;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const HEADER_BYTES = 9;
const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 2 ** 31 - 1;
/** SETTINGS_MAX_FRAME_SIZE's default: the largest frame this side accepts (it announces no other). */
const DEFAULT_MAX_FRAME_SIZE = 16_384;
/** What the client may have in flight: 1 MiB per stream, 16 MiB per connection. */
const STREAM_WINDOW = 1 << 20;
const CONNECTION_WINDOW = 1 << 24;
const MAX_CONCURRENT_STREAMS = 1000;
const MAX_HEADER_LIST_BYTES = 65_536;
/** A header block split over CONTINUATION frames may not grow past this (a flood of them is refused). */
const MAX_HEADER_BLOCK_BYTES = 256 * 1024;
/** Output a client leaves unread past this ends the connection. */
const MAX_UNREAD_OUTPUT = 64 * 1024 * 1024;
/** PING and SETTINGS acknowledgements written while the client reads nothing: past this, a flood (ENHANCE_YOUR_CALM). */
const MAX_UNREAD_ACKS = 1000;
/** CONTINUATION frames one header block may take. */
const MAX_CONTINUATIONS = 64;
/**
 * Streams reset by the client, or by this side for the client's errors: a burst of this many, then this many a
 * second (as nghttp2 allows), or the connection ends with ENHANCE_YOUR_CALM — opening and resetting streams in a
 * loop would otherwise start unbounded work ("rapid reset").
 */
const RESET_BURST = 1000;
const RESETS_PER_SECOND = 33;
/** A connection ended for an error gets this long to close from the client's side before it is destroyed. */
const FAILED_CONNECTION_LINGER_MS = 5_000;
const REQUEST_PSEUDO = new Set([":method", ":path", ":scheme", ":authority", ":protocol"]);
/** Fields that belong to HTTP/1.1 connections and make an HTTP/2 request malformed (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const FORBIDDEN_IN_VALUE = /[\0\r\n]/;
/** A stream whose answer is waiting for window beyond this stops reading its relayed source. */
const RELAY_HIGH_WATER = 256 * 1024;

export type RequestHeaders = Record<string, string>;
type ResponseHeaders = Readonly<Record<string, string | number | readonly string[] | undefined>>;

export interface ConnectionOptions {
  /** Offered each new stream once its headers arrived; true: it answers the stream (FramedStream), else relayed. */
  readonly take: (stream: FramedStream, headers: RequestHeaders) => boolean;
  /** Node's HTTP/2 server that serves what `take` leaves. */
  readonly relayTo: http2.Http2Server;
}

class ConnectionError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

interface Queued {
  /** HEADERS block, or DATA bytes. */
  readonly headers: boolean;
  bytes: Buffer;
  readonly end: boolean;
}

/** What the connection keeps of each open stream, whoever answers it. */
abstract class StreamBase {
  /** This side's window for sending on the stream. */
  sendWindow: number;
  /** Bytes the client may still send on the stream (this side's receive window). */
  recvWindow = STREAM_WINDOW;
  /** Bytes received on the stream not yet given back to the client in WINDOW_UPDATE. */
  unacked = 0;
  remoteClosed = false;
  localClosed = false;
  readonly queue: Queued[] = [];
  queuedBytes = 0;

  readonly connection: Http2Connection;
  readonly id: number;

  constructor(connection: Http2Connection, id: number) {
    this.connection = connection;
    this.id = id;
    this.sendWindow = connection.peerInitialWindow;
  }

  abstract onData(payload: Buffer, end: boolean): void;
  /** The client ended its side of the stream (END_STREAM on DATA, on its headers or on trailers). */
  abstract onRemoteEnd(): void;
  /** The stream ended abnormally: reset by the client (its code), or the connection went away. */
  abstract onAbort(code: number): void;
  /** Both sides have ended the stream. */
  abstract onClosed(): void;
  /** Queued answer bytes fell below the relay's high-water mark. */
  onDrained(): void {}
}

/**
 * A stream answered here (the unary gRPC path): the request's body arrives as "data" events and "end"; "close"
 * when the stream is over either way (a client's reset, a broken connection, or the answer written: never an
 * "error"); `answer` writes status, headers, payload and trailers at once. The events and `pause`/async iteration
 * are the part of Node's ServerHttp2Stream the unary path uses.
 */
export class FramedStream extends StreamBase {
  readonly #events = new EventEmitter();
  destroyed = false;
  closed = false;
  #paused = false;
  #pending: Buffer[] = [];
  #ended = false;
  #settled = false;
  #wake: (() => void) | undefined;

  on(event: "data" | "end" | "close", listener: (chunk: Buffer) => void): this {
    this.#events.on(event, listener);
    return this;
  }
  once(event: "end" | "close", listener: () => void): this {
    this.#events.once(event, listener);
    return this;
  }
  off(event: "data" | "end", listener: (chunk: Buffer) => void): this {
    this.#events.off(event, listener);
    return this;
  }

  /** From here on the body is read by iterating the stream. */
  pause(): void {
    this.#paused = true;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    this.#paused = true;
    for (;;) {
      const chunk = this.#pending.shift();
      if (chunk !== undefined) {
        // Read now: the client may send as much again.
        this.connection.streamConsumed(this, chunk.length);
        yield chunk;
        continue;
      }
      if (this.#ended || this.destroyed) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  override onData(payload: Buffer, end: boolean): void {
    if (payload.length > 0) {
      // Iterated: the window comes back as chunks are read. Listened to: the listener takes it at once.
      if (this.#paused) this.#pending.push(payload);
      else {
        this.connection.streamConsumed(this, payload.length);
        this.#events.emit("data", payload);
      }
    }
    if (end) this.onRemoteEnd();
    else this.#notify();
  }

  override onRemoteEnd(): void {
    this.#ended = true;
    if (!this.#paused) this.#events.emit("end");
    this.#notify();
  }

  override onAbort(): void {
    this.destroyed = true;
    // Reset before its body was whole and before anything read it: the call never started, nothing will answer.
    if (!this.#ended && !this.#paused) this.#settle();
    this.#notify();
    this.onClosed();
  }

  override onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.#events.emit("close");
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /**
   * The whole answer: `status` and `headers`, then the payload (if any), then `trailers` (if given) ending the
   * stream. A stream already over gets nothing. Frozen header records are encoded once.
   */
  answer(status: number, headers: ResponseHeaders, trailers: ResponseHeaders | undefined, payload: Uint8Array | undefined): void {
    this.#settle();
    if (this.destroyed || this.localClosed) return;
    const c = this.connection;
    const raw = blockFor(status, headers);
    const tail = trailers === undefined ? undefined : blockFor(undefined, trailers);
    const size = payload?.byteLength ?? 0;
    if (this.queue.length === 0 && size <= this.sendWindow && size <= c.sendWindow && size <= c.peerMaxFrameSize && raw.length < c.peerMaxFrameSize && (tail?.length ?? 0) <= c.peerMaxFrameSize) {
      // The usual case: every frame in one buffer, written now.
      const head = c.outgoingBlock(raw);
      const total = HEADER_BYTES + head.length + (payload ? HEADER_BYTES + size : 0) + (tail ? HEADER_BYTES + tail.length : 0);
      const out = Buffer.allocUnsafe(total);
      let o = writeFrameHeader(out, 0, head.length, Frame.Headers, END_HEADERS | (payload || tail ? 0 : END_STREAM), this.id);
      o += head.copy(out, o);
      if (payload) {
        o = writeFrameHeader(out, o, size, Frame.Data, tail ? 0 : END_STREAM, this.id);
        out.set(payload, o);
        o += size;
        this.sendWindow -= size;
        c.sendWindow -= size;
      }
      if (tail) {
        o = writeFrameHeader(out, o, tail.length, Frame.Headers, END_HEADERS | END_STREAM, this.id);
        tail.copy(out, o);
      }
      c.write(out);
      c.ended(this);
      return;
    }
    c.enqueue(this, true, raw, !payload && !tail);
    if (payload) c.enqueue(this, false, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), !tail);
    if (tail) c.enqueue(this, true, tail, true);
  }

  /** Ends the stream abnormally (RST_STREAM INTERNAL_ERROR), as Node's stream.destroy() does. */
  destroy(): void {
    this.#settle();
    if (this.destroyed) return;
    this.connection.reset(this, H2Error.INTERNAL_ERROR);
  }

  /** The call's work is over (answered or given up): it no longer counts against the connection's concurrency. */
  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.connection.settled();
  }
}

const encodedBlocks = new WeakMap<object, Map<number | undefined, Buffer>>();

function blockFor(status: number | undefined, headers: ResponseHeaders): Buffer {
  if (!Object.isFrozen(headers)) return encodeHeaderBlock(status, headers);
  let byStatus = encodedBlocks.get(headers);
  if (!byStatus) encodedBlocks.set(headers, (byStatus = new Map()));
  let block = byStatus.get(status);
  if (!block) byStatus.set(status, (block = encodeHeaderBlock(status, headers)));
  return block;
}

/** A stream `take` left: relayed to Node's HTTP/2 server over the connection's in-process relay. */
class RelayedStream extends StreamBase {
  #request: http2.ClientHttp2Stream | undefined;
  #done = false;

  start(session: http2.ClientHttp2Session, headers: RequestHeaders, endStream: boolean): void {
    let request: http2.ClientHttp2Stream;
    try {
      request = session.request(headers, { endStream });
    } catch {
      // Headers Node refuses (connection-specific fields and the like) make a malformed request.
      this.connection.reset(this, H2Error.PROTOCOL_ERROR);
      return;
    }
    this.#request = request;
    const c = this.connection;
    request.on("error", () => {});
    request.on("response", c.guard((response: http2.IncomingHttpHeaders, flags: number) => {
      const status = Number(response[":status"]);
      const rest: Record<string, string | string[] | undefined> = {};
      for (const name in response) if (!name.startsWith(":")) rest[name] = response[name];
      // An answer that is only headers (HEAD, 204, 304, a gRPC trailers-only answer) ends with them.
      const only = (flags & END_STREAM) !== 0;
      if (only) this.#done = true;
      c.enqueue(this, true, encodeHeaderBlock(status, rest), only);
    }));
    let trailers: http2.IncomingHttpHeaders | undefined;
    request.on("trailers", (t) => (trailers = t));
    request.on("data", c.guard((chunk: Buffer) => {
      c.enqueue(this, false, chunk, false);
      if (this.queuedBytes > RELAY_HIGH_WATER) request.pause();
    }));
    request.on("end", c.guard(() => {
      if (this.#done) return;
      this.#done = true;
      if (trailers !== undefined && Object.keys(trailers).length > 0) c.enqueue(this, true, encodeHeaderBlock(undefined, trailers), true);
      else c.enqueue(this, false, Buffer.alloc(0), true);
    }));
    request.on("close", c.guard(() => {
      if (this.#done || this.localClosed) return;
      // The relayed stream ended without its answer's end: reset the client's stream with the code it had.
      c.reset(this, request.rstCode === undefined || request.rstCode === H2Error.NO_ERROR ? H2Error.INTERNAL_ERROR : request.rstCode);
    }));
  }

  override onData(payload: Buffer, end: boolean): void {
    const request = this.#request;
    if (!request || request.destroyed) return;
    // The stream's window comes back once the relay has taken the bytes (the connection's came back on receipt).
    const length = payload.length;
    request.write(payload, () => this.connection.streamConsumed(this, length));
    if (end) this.onRemoteEnd();
  }

  override onRemoteEnd(): void {
    // Request trailers are not relayed (no service reads them); they end the body.
    this.#request?.end();
  }

  override onAbort(code: number): void {
    const request = this.#request;
    if (request && !request.destroyed) request.close(code === H2Error.NO_ERROR ? H2Error.CANCEL : code);
  }

  override onClosed(): void {
    // The answer ended before the client's body (the client was told to stop): the relayed request ends too.
    const request = this.#request;
    if (request && !request.destroyed && !request.writableEnded) request.close(H2Error.CANCEL);
  }

  override onDrained(): void {
    if (this.#request?.isPaused()) this.#request.resume();
  }
}

/** A DATA or HEADERS frame's payload without its padding (PADDED: a length byte first, that many bytes last). */
function unpadded(payload: Buffer, flags: number): Buffer {
  if (!(flags & PADDED)) return payload;
  if (payload.length < 1 || payload[0]! >= payload.length) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "bad padding");
  return payload.subarray(1, payload.length - payload[0]!);
}

/** HPACK's dynamic table size update to 0 (this side never uses the table). */
const TABLE_SIZE_ZERO = Buffer.from([0x20]);

function writeFrameHeader(out: Buffer, offset: number, length: number, type: number, flags: number, stream: number): number {
  out[offset] = length >>> 16;
  out[offset + 1] = (length >>> 8) & 0xff;
  out[offset + 2] = length & 0xff;
  out[offset + 3] = type;
  out[offset + 4] = flags;
  out.writeUInt32BE(stream, offset + 5);
  return offset + HEADER_BYTES;
}

function frame(type: number, flags: number, stream: number, payload?: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + (payload?.length ?? 0));
  writeFrameHeader(out, 0, payload?.length ?? 0, type, flags, stream);
  payload?.copy(out, HEADER_BYTES);
  return out;
}

function u32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value >>> 0, 0);
  return b;
}

const OUR_SETTINGS = (() => {
  const entries: [number, number][] = [
    [0x3, MAX_CONCURRENT_STREAMS],
    [0x4, STREAM_WINDOW],
    [0x6, MAX_HEADER_LIST_BYTES],
  ];
  const payload = Buffer.allocUnsafe(6 * entries.length);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return Buffer.concat([frame(Frame.Settings, 0, 0, payload), frame(Frame.WindowUpdate, 0, 0, u32(CONNECTION_WINDOW - DEFAULT_WINDOW))]);
})();

/** One client connection. */
export class Http2Connection {
  peerInitialWindow = DEFAULT_WINDOW;
  peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  /** This side's connection-level window for sending. */
  sendWindow = DEFAULT_WINDOW;

  readonly #socket: Socket;
  readonly #options: ConnectionOptions;
  readonly #decoder = new HpackDecoder();
  readonly #streams = new Map<number, StreamBase>();
  /** Streams with DATA waiting for window. */
  readonly #blocked = new Set<StreamBase>();
  #input: Buffer = Buffer.alloc(0);
  #prefaceSeen = false;
  #settingsSeen = false;
  #lastStreamId = 0;
  /** What the client sent that was not yet given back: its window on the connection is CONNECTION_WINDOW minus this. */
  #connectionUnacked = 0;
  /** Calls taken and not yet answered or given up, whether or not their streams are still open. */
  #running = 0;
  #resetTokens = RESET_BURST;
  #resetRefilledAt = Date.now();
  #unreadAcks = 0;
  /** The socket's bytesWritten at the last acknowledgement: the client reads while it moves. */
  #writtenAtLastAck = 0;
  /** The client changed SETTINGS_HEADER_TABLE_SIZE: the next header block starts with a table size update. */
  #tableSizeUpdate = false;
  #continuation: { id: number; flags: number; fragments: Buffer[]; size: number; count: number } | undefined;
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #goingAway = false;
  #closed = false;
  #relay: http2.ClientHttp2Session | undefined;
  /** The server ends of this connection's relay sessions still open. */
  readonly #relayFars = new Set<import("node:stream").Duplex>();
  readonly #closeListeners: (() => void)[] = [];

  constructor(socket: Socket, options: ConnectionOptions, initial?: Buffer) {
    this.#socket = socket;
    this.#options = options;
    this.write(OUR_SETTINGS);
    socket.on("data", (chunk: Buffer) => this.#receive(chunk));
    socket.on("drain", this.guard(() => this.#pumpAll()));
    socket.on("error", () => {});
    socket.on("close", () => this.#teardown());
    socket.on("end", () => this.#teardown());
    if (initial && initial.length > 0) this.#receive(initial);
  }

  /**
   * `listener` with anything it throws ending the connection (INTERNAL_ERROR) instead of the process: for the
   * callbacks of the relay and the socket, which nothing above would catch.
   */
  guard<A extends unknown[]>(listener: (...args: A) => void): (...args: A) => void {
    return (...args: A) => {
      try {
        listener(...args);
      } catch {
        this.#fail(H2Error.INTERNAL_ERROR);
      }
    };
  }

  /** A taken call's work is over (FramedStream). */
  settled(): void {
    this.#running--;
  }

  /** A header block as written next: after the client changed its table size, the update (to 0) goes first. */
  outgoingBlock(block: Buffer): Buffer {
    if (!this.#tableSizeUpdate) return block;
    this.#tableSizeUpdate = false;
    return Buffer.concat([TABLE_SIZE_ZERO, block]);
  }

  /** Called once the connection is gone. */
  onClose(listener: () => void): void {
    this.#closeListeners.push(listener);
  }

  /** Graceful close: GOAWAY, no new streams, the socket ends once the open ones are done. */
  close(): void {
    if (this.#closed || this.#goingAway) return;
    this.#goingAway = true;
    this.#goAway(H2Error.NO_ERROR);
    this.#endIfIdle();
  }

  destroy(): void {
    this.#socket.destroy();
    this.#teardown();
  }

  write(bytes: Buffer): void {
    if (this.#closed) return;
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const out = this.#out;
    if (out.length === 0 || this.#closed) return;
    this.#out = [];
    const bytes = this.#outBytes;
    this.#outBytes = 0;
    if (this.#socket.writableLength > MAX_UNREAD_OUTPUT) {
      this.destroy();
      return;
    }
    if (out.length === 1) this.#socket.write(out[0]!);
    else if (bytes <= 65_536) this.#socket.write(Buffer.concat(out, bytes));
    else {
      this.#socket.cork();
      for (const b of out) this.#socket.write(b);
      this.#socket.uncork();
    }
    if (this.#goingAway) this.#endIfIdle();
  }

  /** Bytes of a stream's body taken: the client gets the stream's window back (a quarter of it at a time). */
  streamConsumed(stream: StreamBase, length: number): void {
    if (length === 0 || this.#closed) return;
    if (stream.remoteClosed || !this.#streams.has(stream.id)) return;
    stream.unacked += length;
    if (stream.unacked >= STREAM_WINDOW / 4) {
      this.write(frame(Frame.WindowUpdate, 0, stream.id, u32(stream.unacked)));
      stream.recvWindow += stream.unacked;
      stream.unacked = 0;
    }
  }

  /** Gives the connection's window back as DATA arrives, a quarter of it at a time. */
  #credit(length: number): void {
    this.#connectionUnacked += length;
    if (this.#connectionUnacked >= CONNECTION_WINDOW / 4) {
      this.write(frame(Frame.WindowUpdate, 0, 0, u32(this.#connectionUnacked)));
      this.#connectionUnacked = 0;
    }
  }

  enqueue(stream: StreamBase, headers: boolean, bytes: Buffer, end: boolean): void {
    if (stream.localClosed || !this.#streams.has(stream.id)) return;
    stream.queue.push({ headers, bytes, end });
    if (!headers) stream.queuedBytes += bytes.length;
    this.#pump(stream);
  }

  /** Writes what the stream has queued, as far as the windows allow. */
  #pump(stream: StreamBase): void {
    while (stream.queue.length > 0) {
      if (this.#socket.writableNeedDrain) {
        // The socket's "drain" pumps it again.
        this.#blocked.add(stream);
        return;
      }
      const item = stream.queue[0]!;
      if (item.headers) {
        this.#writeHeaderBlock(stream.id, this.outgoingBlock(item.bytes), item.end);
        stream.queue.shift();
        if (item.end) this.ended(stream);
        continue;
      }
      // A window may be below zero (the client lowered SETTINGS_INITIAL_WINDOW_SIZE): nothing goes until it is not.
      const length = Math.max(0, Math.min(item.bytes.length, stream.sendWindow, this.sendWindow, this.peerMaxFrameSize));
      if (length === 0 && item.bytes.length > 0) {
        this.#blocked.add(stream);
        return;
      }
      const last = length === item.bytes.length;
      const out = Buffer.allocUnsafe(HEADER_BYTES + length);
      writeFrameHeader(out, 0, length, Frame.Data, last && item.end ? END_STREAM : 0, stream.id);
      item.bytes.copy(out, HEADER_BYTES, 0, length);
      this.write(out);
      stream.sendWindow -= length;
      this.sendWindow -= length;
      stream.queuedBytes -= length;
      if (last) {
        stream.queue.shift();
        if (item.end) this.ended(stream);
      } else item.bytes = item.bytes.subarray(length);
    }
    this.#blocked.delete(stream);
    if (stream.queuedBytes <= RELAY_HIGH_WATER) stream.onDrained();
  }

  #pumpAll(): void {
    for (const stream of [...this.#blocked]) this.#pump(stream);
  }

  #writeHeaderBlock(id: number, block: Buffer, end: boolean): void {
    const max = this.peerMaxFrameSize;
    if (block.length <= max) {
      const out = Buffer.allocUnsafe(HEADER_BYTES + block.length);
      writeFrameHeader(out, 0, block.length, Frame.Headers, END_HEADERS | (end ? END_STREAM : 0), id);
      block.copy(out, HEADER_BYTES);
      this.write(out);
      return;
    }
    for (let offset = 0; offset < block.length; offset += max) {
      const piece = block.subarray(offset, offset + max);
      const first = offset === 0;
      const lastPiece = offset + max >= block.length;
      this.write(frame(first ? Frame.Headers : Frame.Continuation, (lastPiece ? END_HEADERS : 0) | (first && end ? END_STREAM : 0), id, piece));
    }
  }

  /** This side sent END_STREAM on the stream. */
  ended(stream: StreamBase): void {
    stream.localClosed = true;
    if (stream.remoteClosed) this.#remove(stream);
    else {
      // The answer is complete before the request: the client need not send the rest (RFC 9113 §8.1).
      this.write(frame(Frame.RstStream, 0, stream.id, u32(H2Error.NO_ERROR)));
      this.#remove(stream);
    }
  }

  /** Resets the stream from this side. */
  reset(stream: StreamBase, code: number): void {
    if (!this.#streams.has(stream.id)) return;
    this.write(frame(Frame.RstStream, 0, stream.id, u32(code)));
    stream.localClosed = true;
    this.#remove(stream);
    stream.onAbort(code);
  }

  #remove(stream: StreamBase): void {
    if (this.#drop(stream)) stream.onClosed();
    if (this.#goingAway) this.#endIfIdle();
  }

  /** Forgets the stream (false: it was gone already). */
  #drop(stream: StreamBase): boolean {
    this.#blocked.delete(stream);
    return this.#streams.delete(stream.id);
  }

  #endIfIdle(): void {
    if (this.#streams.size > 0 || this.#closed) return;
    if (this.#flushScheduled) return; // #flush calls back here once the last frames are written
    this.#socket.end();
  }

  #goAway(code: number): void {
    const payload = Buffer.allocUnsafe(8);
    payload.writeUInt32BE(this.#lastStreamId, 0);
    payload.writeUInt32BE(code, 4);
    this.write(frame(Frame.GoAway, 0, 0, payload));
  }

  #fail(code: number): void {
    if (this.#closed) return;
    this.#goAway(code);
    this.#goingAway = true;
    this.#flush();
    this.#socket.end();
    const socket = this.#socket;
    setTimeout(() => socket.destroy(), FAILED_CONNECTION_LINGER_MS).unref();
    this.#teardown();
  }

  /** One more reset of the client's making (see RESET_BURST). */
  #chargeReset(): void {
    const now = Date.now();
    this.#resetTokens = Math.min(RESET_BURST, this.#resetTokens + ((now - this.#resetRefilledAt) / 1000) * RESETS_PER_SECOND);
    this.#resetRefilledAt = now;
    if (--this.#resetTokens < 0) throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, "too many reset streams");
  }

  /** An acknowledgement (PING, SETTINGS) to write: counted while the client reads nothing (see MAX_UNREAD_ACKS). */
  #acknowledge(bytes: Buffer): void {
    const written = this.#socket.bytesWritten;
    if (!this.#socket.writableNeedDrain || written !== this.#writtenAtLastAck) this.#unreadAcks = 0;
    else if (++this.#unreadAcks > MAX_UNREAD_ACKS) throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, "acknowledgements left unread");
    this.#writtenAtLastAck = written;
    this.write(bytes);
  }

  #teardown(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const stream of [...this.#streams.values()]) {
      this.#drop(stream);
      stream.onAbort(H2Error.CANCEL);
    }
    this.#relay?.destroy();
    for (const far of this.#relayFars) far.destroy();
    for (const listener of this.#closeListeners) listener();
  }

  #receive(chunk: Buffer): void {
    if (this.#closed) return;
    let input = this.#input.length === 0 ? chunk : Buffer.concat([this.#input, chunk]);
    let p = 0;
    try {
      if (!this.#prefaceSeen) {
        const n = Math.min(input.length, PREFACE.length);
        if (!input.subarray(0, n).equals(PREFACE.subarray(0, n))) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "not the HTTP/2 preface");
        if (n < PREFACE.length) {
          this.#input = input;
          return;
        }
        this.#prefaceSeen = true;
        p = PREFACE.length;
      }
      while (input.length - p >= HEADER_BYTES) {
        const length = (input[p]! << 16) | (input[p + 1]! << 8) | input[p + 2]!;
        if (length > DEFAULT_MAX_FRAME_SIZE) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, "frame larger than SETTINGS_MAX_FRAME_SIZE");
        if (input.length - p < HEADER_BYTES + length) break;
        const type = input[p + 3]!;
        const flags = input[p + 4]!;
        const id = input.readUInt32BE(p + 5) & 0x7fffffff;
        const payload = input.subarray(p + HEADER_BYTES, p + HEADER_BYTES + length);
        p += HEADER_BYTES + length;
        this.#frame(type, flags, id, payload);
        if (this.#closed) return;
      }
    } catch (error) {
      if (error instanceof ConnectionError) {
        this.#fail(error.code);
        return;
      }
      // Anything else is this side's fault: the connection ends, the process goes on.
      this.#fail(error instanceof HpackError ? H2Error.COMPRESSION_ERROR : H2Error.INTERNAL_ERROR);
      return;
    }
    input = p === input.length ? Buffer.alloc(0) : input.subarray(p);
    this.#input = input;
  }

  #frame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.#continuation && type !== Frame.Continuation) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "expected CONTINUATION");
    if (!this.#settingsSeen) {
      if (type !== Frame.Settings || flags & ACK) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "the client's first frame must be SETTINGS");
      this.#settingsSeen = true;
    }
    switch (type) {
      case Frame.Data:
        return this.#data(flags, id, payload);
      case Frame.Headers:
        return this.#headers(flags, id, payload);
      case Frame.Continuation: {
        const c = this.#continuation;
        if (!c || c.id !== id) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "unexpected CONTINUATION");
        c.fragments.push(payload);
        c.size += payload.length;
        if (c.size > MAX_HEADER_BLOCK_BYTES || ++c.count > MAX_CONTINUATIONS) throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, "header block too large");
        if (flags & END_HEADERS) {
          this.#continuation = undefined;
          this.#headerBlock(c.flags, id, Buffer.concat(c.fragments));
        }
        return;
      }
      case Frame.Priority:
        if (id === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (payload.length !== 5) this.#streamError(id, H2Error.FRAME_SIZE_ERROR);
        return;
      case Frame.RstStream: {
        if (id === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "RST_STREAM on stream 0");
        if (payload.length !== 4) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, "RST_STREAM size");
        if (id > this.#lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "RST_STREAM on an idle stream");
        const stream = this.#streams.get(id);
        if (stream) {
          this.#chargeReset();
          this.#drop(stream);
          stream.remoteClosed = true;
          stream.localClosed = true;
          stream.onAbort(payload.readUInt32BE(0));
          if (this.#goingAway) this.#endIfIdle();
        }
        return;
      }
      case Frame.Settings:
        return this.#settings(flags, id, payload);
      case Frame.PushPromise:
        throw new ConnectionError(H2Error.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      case Frame.Ping:
        if (id !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "PING on a stream");
        if (payload.length !== 8) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, "PING size");
        if (!(flags & ACK)) this.#acknowledge(frame(Frame.Ping, ACK, 0, payload));
        return;
      case Frame.GoAway:
        // The client will accept no streams from this side (there are none): its own requests are still served.
        if (id !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "GOAWAY on a stream");
        if (payload.length < 8) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, "GOAWAY size");
        return;
      case Frame.WindowUpdate:
        return this.#windowUpdate(id, payload);
      default:
        return; // unknown frame types are ignored
    }
  }

  #settings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & ACK) {
      if (payload.length !== 0) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, "SETTINGS size");
    for (let i = 0; i < payload.length; i += 6) {
      const key = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      if (key === 0x1) this.#tableSizeUpdate = true;
      if (key === 0x2 && value > 1) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "ENABLE_PUSH must be 0 or 1");
      if (key === 0x4) {
        if (value > MAX_WINDOW) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE too large");
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.#streams.values()) {
          stream.sendWindow += delta;
          if (stream.sendWindow > MAX_WINDOW) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, "stream window overflow");
        }
      }
      if (key === 0x5) {
        if (value < DEFAULT_MAX_FRAME_SIZE || value > 16_777_215) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "MAX_FRAME_SIZE out of range");
        this.peerMaxFrameSize = value;
      }
    }
    this.#acknowledge(frame(Frame.Settings, ACK, 0));
    this.#pumpAll();
  }

  #windowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, "WINDOW_UPDATE size");
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (increment === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, "connection window overflow");
      this.#pumpAll();
      return;
    }
    if (id > this.#lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
    const stream = this.#streams.get(id);
    if (!stream) return;
    if (increment === 0) return this.#streamError(id, H2Error.PROTOCOL_ERROR);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) return this.#streamError(id, H2Error.FLOW_CONTROL_ERROR);
    this.#pump(stream);
  }

  #data(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "DATA on stream 0");
    const body = unpadded(payload, flags);
    if (id > this.#lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "DATA on an idle stream");
    // Every DATA frame counts against the connection's window, which comes back on receipt.
    if (this.#connectionUnacked + payload.length > CONNECTION_WINDOW) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, "DATA beyond the connection's window");
    this.#credit(payload.length);
    const stream = this.#streams.get(id);
    // A stream this side has closed or reset: frames in flight when it ended are ignored. DATA after the client's
    // own END_STREAM is an error.
    if (!stream) return;
    if (stream.remoteClosed) return this.#streamError(id, H2Error.STREAM_CLOSED);
    stream.recvWindow -= payload.length;
    if (stream.recvWindow < 0) return this.#streamError(id, H2Error.FLOW_CONTROL_ERROR);
    // Padding is flow-controlled but never handed on: give it back at once.
    if (payload.length > body.length) this.streamConsumed(stream, payload.length - body.length);
    const end = (flags & END_STREAM) !== 0;
    if (end) stream.remoteClosed = true;
    stream.onData(body, end);
    if (end && stream.localClosed) this.#remove(stream);
  }

  #headers(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "HEADERS on stream 0");
    let block = unpadded(payload, flags);
    if (flags & PRIORITY) {
      if (block.length < 5) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, "HEADERS priority size");
      block = block.subarray(5);
    }
    if (!(flags & END_HEADERS)) {
      this.#continuation = { id, flags, fragments: [block], size: block.length, count: 0 };
      return;
    }
    this.#headerBlock(flags, id, block);
  }

  #headerBlock(flags: number, id: number, block: Buffer): void {
    const end = (flags & END_STREAM) !== 0;
    // Decoded whatever becomes of the stream, so the table stays in step with the client's.
    const headers: RequestHeaders = Object.create(null) as RequestHeaders;
    let malformed = false;
    let regularSeen = false;
    const complete = this.#decoder.decode(
      block,
      (name, value) => {
        // A malformed request (RFC 9113 §8.2, §8.3): pseudo-header fields other than a request's, repeated or after
        // the regular ones; names that are not lower-case tokens; values with NUL, CR or LF.
        if (name.startsWith(":")) {
          if (regularSeen || headers[name] !== undefined || !REQUEST_PSEUDO.has(name)) malformed = true;
        } else {
          regularSeen = true;
          if (!FIELD_NAME.test(name) || CONNECTION_SPECIFIC.has(name) || (name === "te" && value !== "trailers")) malformed = true;
        }
        if (FORBIDDEN_IN_VALUE.test(value)) malformed = true;
        const before = headers[name];
        headers[name] = before === undefined ? value : `${before}${name === "cookie" ? "; " : ", "}${value}`;
      },
      MAX_HEADER_LIST_BYTES,
    );
    const existing = this.#streams.get(id);
    if (existing) {
      // Trailers: only on an open stream, without pseudo-header fields, and they end it.
      if (existing.remoteClosed) return this.#streamError(id, H2Error.STREAM_CLOSED);
      if (!end || malformed || Object.keys(headers).some((name) => name.startsWith(":"))) return this.#streamError(id, H2Error.PROTOCOL_ERROR);
      existing.remoteClosed = true;
      existing.onRemoteEnd();
      if (existing.localClosed) this.#remove(existing);
      return;
    }
    if (id % 2 === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "a client's stream id must be odd");
    // A stream already closed (trailers in flight as this side reset it), or a stream id gone back: reset (so a
    // client reusing an id does not wait), not counted as the client's reset; its block was decoded above.
    if (id <= this.#lastStreamId) return this.#resetId(id, H2Error.STREAM_CLOSED);
    this.#lastStreamId = id;
    if (this.#goingAway) return; // after GOAWAY, new streams are ignored
    if (!complete) return this.#streamError(id, H2Error.ENHANCE_YOUR_CALM);
    const path = headers[":path"];
    if (malformed || headers[":method"] === undefined || headers[":scheme"] === undefined || path === undefined || path === "") return this.#streamError(id, H2Error.PROTOCOL_ERROR);
    if (this.#streams.size >= MAX_CONCURRENT_STREAMS || this.#running >= MAX_CONCURRENT_STREAMS) return this.#resetId(id, H2Error.REFUSED_STREAM);

    const framed = new FramedStream(this, id);
    this.#streams.set(id, framed);
    if (end) framed.remoteClosed = true;
    if (this.#options.take(framed, headers)) {
      this.#running++;
      if (end) framed.onRemoteEnd();
      return;
    }
    this.#streams.delete(id);
    const relayed = new RelayedStream(this, id);
    relayed.remoteClosed = end;
    this.#streams.set(id, relayed);
    relayed.start(this.#relaySession(), headers, end);
  }

  #resetId(id: number, code: number): void {
    this.write(frame(Frame.RstStream, 0, id, u32(code)));
  }

  /** Resets a stream for the client's error (counted as a reset of its making). */
  #streamError(id: number, code: number): void {
    this.#chargeReset();
    const stream = this.#streams.get(id);
    if (stream) this.reset(stream, code);
    else this.#resetId(id, code);
  }

  /** The in-process HTTP/2 connection to Node's server, opened with the first stream `take` leaves. */
  #relaySession(): http2.ClientHttp2Session {
    if (this.#relay && !this.#relay.destroyed && !this.#relay.closed) return this.#relay;
    const [near, far] = duplexPair();
    this.#relayFars.add(far);
    this.#options.relayTo.emit("connection", far);
    const session = http2.connect("http://relay.invalid", {
      createConnection: () => near,
      settings: { initialWindowSize: STREAM_WINDOW, enablePush: false },
      maxSessionMemory: 64,
    });
    session.on("error", () => {});
    session.on("close", () => {
      far.destroy();
      this.#relayFars.delete(far);
      if (this.#relay === session) this.#relay = undefined;
    });
    // Node's server refusing the relayed streams as a flood ends the client's connection the same way.
    session.on("goaway", (code: number) => {
      if (code === H2Error.ENHANCE_YOUR_CALM) this.#fail(H2Error.ENHANCE_YOUR_CALM);
    });
    this.#relay = session;
    return session;
  }
}
