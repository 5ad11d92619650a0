// Responses that many calls share: a handler that answers a read with a response it built before (the same board
// of GetLeaderboard while its statement returns the same answer) marks it shared. A shared response is frozen, so
// no call can change what the others send, and the gRPC unary path (grpc-unary.ts) encodes it once and sends the
// same bytes after that. Bytes fields (Uint8Array) cannot be frozen: a shared response must not carry any that
// anything mutates.
import type { DescMessage, Message } from "@bufbuild/protobuf";
import { encodeBinary } from "./binary-encoder.ts";

/** Shared responses, with their binary encoding once it was made. */
const shared = new WeakMap<object, Uint8Array | null>();

/** Freezes `message` with everything it holds and marks it shared; returns it. */
export function shareResponse<M extends Message>(message: M): M {
  deepFreeze(message);
  shared.set(message, null);
  return message;
}

export function isSharedResponse(message: object): boolean {
  return shared.has(message);
}

/** `toBinary(schema, message)`'s bytes (./binary-encoder.ts), made once for a shared response and reused for it after that. */
export function binaryOf(schema: DescMessage, message: Message): Uint8Array {
  const known = shared.get(message);
  if (known === undefined) return encodeBinary(schema, message);
  if (known !== null) return known;
  const bytes = encodeBinary(schema, message, 0, true);
  shared.set(message, bytes);
  return bytes;
}

function deepFreeze(value: unknown): void {
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return;
  for (const v of Object.values(value)) deepFreeze(v);
  Object.freeze(value);
}
