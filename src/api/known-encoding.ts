// Responses whose binary form is mostly known before the call: a progress answer reused from the progress cache
// (src/api/mappers/progress-cache.ts) is the same message but for a few fields filled in per read, so the bytes of
// everything else are kept with the cached answer and only those few fields are encoded per call. Used where
// responses are encoded to the protobuf binary format by this code (src/api/grpc-unary.ts); every other path
// encodes the message itself, which holds every field.
//
// Protobuf's binary format is a sequence of fields in any order, and a message field written once is the message:
// so `prefix` (the encoding of the message with the per-read fields unset) followed by the encoding of just the
// per-read fields decodes to the whole message. A message is registered once it is complete; the per-read fields
// may still be set after (a team added to a progress answer), the others must not change (nothing changes a
// registered answer: callers only add to it the fields that are encoded per call).
import { create, type DescMessage, type Message } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { binaryOf, isSharedResponse } from "./shared-responses.ts";
import { encodeBinary, tagBytes, varintBytes, withHeadroom } from "./binary-encoder.ts";

interface Known {
  readonly desc: DescMessage;
  /** The message's encoding with the `perCall` fields at their defaults. */
  readonly prefix: Uint8Array;
  /** Local names of the fields encoded on every call. */
  readonly perCall: readonly string[];
}

const known = new WeakMap<object, Known>();
const empties = new WeakMap<DescMessage, Record<string, unknown>>();

function emptyOf(desc: DescMessage): Record<string, unknown> {
  let empty = empties.get(desc);
  // Copied once by spreading: a fast-mode object, cheap to copy on every call (progress-cache.ts says why).
  if (empty === undefined) empties.set(desc, (empty = { ...(create(desc) as unknown as Record<string, unknown>) }));
  return empty;
}

/**
 * The encoding of `message` without the `perCall` fields: what `withKnownEncoding` takes. Computed once, when the
 * message is first built.
 */
export function encodeWithout<Desc extends DescMessage>(desc: Desc, message: Message, perCall: readonly string[]): Uint8Array {
  const rest: Record<string, unknown> = { ...(message as unknown as Record<string, unknown>) };
  const empty = emptyOf(desc);
  for (const name of perCall) rest[name] = empty[name];
  return encodeBinary(desc, rest as never, 0, true);
}

/** Registers `message` (of type `desc`) as `prefix` followed by its `perCall` fields, as they are when encoded. */
export function withKnownEncoding<T extends Message>(desc: DescMessage, message: T, prefix: Uint8Array, perCall: readonly string[]): T {
  known.set(message, { desc, prefix, perCall });
  return message;
}

function perCallBytes(k: Known, message: object): Uint8Array {
  const values = message as Record<string, unknown>;
  const only: Record<string, unknown> = { ...emptyOf(k.desc) };
  for (const name of k.perCall) only[name] = values[name];
  return encodeBinary(k.desc, only as never);
}

/**
 * `toBinary(desc, message)`'s bytes (./binary-encoder.ts), using the bytes already made for a shared response (./shared-responses.ts), or the known
 * encoding of the message itself or of its singular message fields (a response wrapping a progress answer). The
 * bytes decode to the same message; fields may come out of number order.
 *
 * With `headroom`, the encoding starts that many bytes into the array returned, and the bytes before it are left
 * for the caller to fill (the five of a gRPC envelope): an answer assembled here from kept bytes is assembled in
 * place, rather than copied once more into a framed buffer. Every byte from `headroom` on is written here.
 */
export function encodeMessage(desc: DescMessage, message: Message, headroom = 0): Uint8Array {
  if (isSharedResponse(message)) return withHeadroom(binaryOf(desc, message), headroom);
  const own = known.get(message);
  if (own !== undefined && own.desc === desc) {
    const tail = perCallBytes(own, message);
    const out = Buffer.allocUnsafe(headroom + own.prefix.length + tail.length);
    out.set(own.prefix, headroom);
    out.set(tail, headroom + own.prefix.length);
    return out;
  }
  let others: Record<string, unknown> | undefined;
  const parts: { readonly header: Uint8Array; readonly prefix: Uint8Array; readonly tail: Uint8Array }[] = [];
  const values = message as unknown as Record<string, unknown>;
  for (const field of desc.fields) {
    if (field.fieldKind !== "message" || field.oneof !== undefined) continue;
    const value = values[field.localName];
    if (typeof value !== "object" || value === null) continue;
    const inner = known.get(value);
    if (inner === undefined || inner.desc !== field.message) continue;
    others ??= { ...values };
    others[field.localName] = undefined;
    const tail = perCallBytes(inner, value);
    parts.push({ header: fieldHeader(field.number, inner.prefix.length + tail.length), prefix: inner.prefix, tail });
  }
  if (others === undefined) return encodeBinary(desc, message, headroom);
  // The other fields, then each known field (tag, length, kept bytes, per-call bytes), copied once into the answer.
  const head = encodeBinary(desc, others as never);
  let length = head.length;
  for (const p of parts) length += p.header.length + p.prefix.length + p.tail.length;
  const out = Buffer.allocUnsafe(headroom + length);
  out.set(head, headroom);
  let at = headroom + head.length;
  for (const p of parts) {
    out.set(p.header, at);
    out.set(p.prefix, (at += p.header.length));
    out.set(p.tail, (at += p.prefix.length));
    at += p.tail.length;
  }
  return out;
}

/** The tag (wire type LEN) and length of a message field, as varints. */
function fieldHeader(number: number, length: number): Uint8Array {
  return Uint8Array.from([...tagBytes(number, WireType.LengthDelimited), ...varintBytes(length)]);
}
