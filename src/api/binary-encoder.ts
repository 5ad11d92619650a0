// Protobuf binary encoding for the answers this process writes itself (src/api/known-encoding.ts, for the unary gRPC
// path): the same bytes as `toBinary`, at a fraction of its cost.
//
// `toBinary` runs one closure per field through a BinaryWriter that grows its buffer as it goes and, for every
// nested message, forks a length prefix it patches (and shifts) when the message ends. Those per-field calls go
// through one call site for every field of every message, so V8 can inline none of them: a recorded activity's
// answer (its activity, a progress view, milestones, rewards, ~1 KiB) cost ~25 µs of the API's ~300 µs.
//
// Here each message type gets two functions, generated once from its descriptor, that read its fields by name:
// one adds up the answer's size (each nested message's, packed field's, map entry's and string's length noted in
// order as it goes), the other writes into one buffer of exactly that size, taking the lengths back in the same
// order. Fields are written as `toBinary` writes them (by field number, with the same presence rules and unknown
// fields last), so the bytes are equal; test/unit/binary-encoder.test.ts compares them for every message type of
// the API with every field set.
//
// Each value is read twice (once by each pass), so messages must hold plain data, as `create`, `fromBinary` and `clone`
// make them: a getter whose value changed between the passes would be written with the other's length (the length
// check at the end catches only a changed total).
//
// Anything this does not cover goes to `toBinary` itself, which then also raises its own errors:
// - a value not of its field's plain type (a number out of an int32's range, a string where a number belongs, a
//   message of another type, a missing field, unknown-field data that is not a Uint8Array): the size pass stops and
//   the whole message is encoded by `toBinary`;
// - message types with fields stored in another form than their message (wrapper fields as bare values, Struct
//   fields as JSON objects), group encoding, required fields, or map keys other than strings and 32-bit integers:
//   such a message is encoded by `toBinary` wherever it occurs (none of Kindling's own messages is).
import { create, toBinary, ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence, isWrapperDesc } from "@bufbuild/protobuf/wkt";
import { WireType } from "@bufbuild/protobuf/wire";

type Encode = (message: Message, headroom: number, exact: boolean) => Uint8Array;

const encoders = new WeakMap<DescMessage, Encode>();
let fallbacks = 0;

/** Messages this process handed to `toBinary` for a value the generated encoders do not cover (tests read it). */
export function binaryEncoderStats(): { readonly fallbacks: number } {
  return { fallbacks };
}

/**
 * `toBinary(desc, message)`, with `headroom` bytes left unwritten ahead of the encoding for the caller (a gRPC
 * envelope). The array is a slice of Node's shared buffer pool unless `exact`: kept bytes should not hold a pool.
 */
export function encodeBinary(desc: DescMessage, message: Message, headroom = 0, exact = false): Uint8Array {
  let encode = encoders.get(desc);
  if (encode === undefined) encoders.set(desc, (encode = compile(desc)));
  return encode(message, headroom, exact);
}

/** Room for `length` bytes: a slice of Node's shared buffer pool unless `exact` (bytes that are kept). */
const allocate = (length: number, exact: boolean): Buffer => (exact ? Buffer.allocUnsafeSlow(length) : Buffer.allocUnsafe(length));

/** `bytes` after `headroom` bytes left for the caller (the same array when there is no headroom). */
export function withHeadroom(bytes: Uint8Array, headroom: number, exact = false): Uint8Array {
  if (headroom === 0) return bytes;
  const out = allocate(headroom + bytes.length, exact);
  out.set(bytes, headroom);
  return out;
}

/** `toBinary`'s bytes after `headroom` bytes left for the caller (toBinary's own array is exact). */
function viaToBinary(desc: DescMessage, message: Message, headroom: number, exact: boolean): Uint8Array {
  return withHeadroom(toBinary(desc, message), headroom, exact);
}

/** Whether `toBinary` handles the message type itself (see the header): it keeps its own code for those. */
function delegated(desc: DescMessage): boolean {
  return desc.fields.some((f) => {
    if (f.presence === FeatureSet_FieldPresence.LEGACY_REQUIRED) return true;
    if (f.fieldKind === "message" || f.fieldKind === "list" || f.fieldKind === "map") {
      if ("delimitedEncoding" in f && f.delimitedEncoding) return true;
      const child = f.fieldKind === "message" ? f.message : f.fieldKind === "list" && f.listKind === "message" ? f.message : f.fieldKind === "map" && f.mapKind === "message" ? f.message : undefined;
      if (child?.typeName === "google.protobuf.Struct" && desc.typeName !== "google.protobuf.Value") return true;
      if (f.fieldKind === "message" && f.oneof === undefined && isWrapperDesc(f.message)) return true;
    }
    if (f.fieldKind === "map" && !INT32_KEYS.has(f.mapKey) && f.mapKey !== ScalarType.STRING) return true;
    return false;
  });
}

const INT32_KEYS = new Set<ScalarType>([ScalarType.INT32, ScalarType.UINT32, ScalarType.SINT32, ScalarType.FIXED32, ScalarType.SFIXED32]);

/** The size of `n` (a uint32) as a varint. */
function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** `n` (a uint32) as varint bytes. */
export function varintBytes(n: number): number[] {
  const bytes: number[] = [];
  for (let v = n >>> 0; ; v >>>= 7) {
    if (v < 0x80) return [...bytes, v];
    bytes.push((v & 0x7f) | 0x80);
  }
}

/** The varint bytes of a tag (written by the generated code as constants). */
export const tagBytes = (number: number, wireType: WireType): number[] => varintBytes((number << 3) | wireType);

function wireTypeOf(type: ScalarType): WireType {
  switch (type) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return WireType.LengthDelimited;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WireType.Bit64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return WireType.Bit32;
    default:
      return WireType.Varint;
  }
}

// The generated functions' helpers, passed to the factory by name.
class Fallback {}
const FALLBACK = new Fallback();

const helpers = {
  /** Stops the size pass: the message goes to `toBinary`. */
  fb(): never {
    throw FALLBACK;
  },
  varintSize,
  utf8Length(s: string): number {
    const length = s.length;
    if (length > 64) return Buffer.byteLength(s, "utf8");
    let n = length;
    for (let i = 0; i < length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) continue;
      if (c < 0x800) n += 1;
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
        n += 2;
        i++;
      } else n += 2; // three bytes, a lone surrogate's replacement character too (as TextEncoder writes it)
    }
    return n;
  },
  writeVarint(b: Buffer, p: number, n: number): number {
    while (n > 0x7f) {
      b[p++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    b[p++] = n;
    return p;
  },
  /** A negative int32, sign-extended to ten bytes. */
  writeNegative(b: Buffer, p: number, n: number): number {
    for (let i = 0; i < 9; i++) {
      b[p++] = (n & 0x7f) | 0x80;
      n >>= 7;
    }
    b[p++] = 1;
    return p;
  },
  writeString(b: Buffer, p: number, s: string, length: number): number {
    if (length === s.length && length <= 64) {
      for (let i = 0; i < length; i++) b[p + i] = s.charCodeAt(i);
      return p + length;
    }
    return p + b.write(s, p, length, "utf8");
  },
  /** A 64-bit value's check: a bigint in its type's range, or a fallback. */
  check64(v: unknown, signed: boolean): void {
    if (typeof v !== "bigint") throw FALLBACK;
    if (signed ? v < -0x8000000000000000n || v > 0x7fffffffffffffffn : v < 0n || v > 0xffffffffffffffffn) throw FALLBACK;
  },
  /** The varint size of a checked 64-bit value (negative ones take ten bytes as two's complement). */
  varint64Size(v: bigint): number {
    if (v >= 0n && v < 0x80000000n) return varintSize(Number(v));
    if (v < 0n) return 10;
    let n = 1;
    for (let u = v; u > 0x7fn; u >>= 7n) n++;
    return n;
  },
  writeVarint64(b: Buffer, p: number, v: bigint): number {
    if (v >= 0n && v < 0x80000000n) return helpers.writeVarint(b, p, Number(v));
    let u = BigInt.asUintN(64, v);
    while (u > 0x7fn) {
      b[p++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    b[p++] = Number(u);
    return p;
  },
  zigzag64(v: bigint): bigint {
    return BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
  },
  isFloat32(v: unknown): boolean {
    return typeof v === "number" && (Number.isFinite(Math.fround(v)) || !Number.isFinite(v));
  },
  toBinary,
  create,
};

/**
 * Source text of the size pass (`size`) and write pass (`write`) for one value of a scalar or enum type held in
 * `v`: `size` adds to `n` (pushing a string's length to `S`), `write` writes at `p` (taking it from `S`).
 */
function scalarCode(type: ScalarType): { size: string; write: string } {
  switch (type) {
    case ScalarType.STRING:
      return {
        size: `if (typeof v !== "string") fb(); l = utf8Length(v); S.push(l); n += varintSize(l) + l;`,
        write: `l = S[c++]; p = writeVarint(B, p, l); p = writeString(B, p, v, l);`,
      };
    case ScalarType.BYTES:
      return {
        size: `if (!(v instanceof Uint8Array)) fb(); n += varintSize(v.byteLength) + v.byteLength;`,
        write: `p = writeVarint(B, p, v.byteLength); B.set(v, p); p += v.byteLength;`,
      };
    case ScalarType.BOOL:
      return { size: `n += 1;`, write: `B[p++] = v ? 1 : 0;` };
    case ScalarType.INT32:
      return {
        size: `if (typeof v !== "number" || (v | 0) !== v) fb(); n += v < 0 ? 10 : varintSize(v);`,
        write: `p = v < 0 ? writeNegative(B, p, v) : writeVarint(B, p, v);`,
      };
    case ScalarType.SINT32:
      return {
        size: `if (typeof v !== "number" || (v | 0) !== v) fb(); n += varintSize(((v << 1) ^ (v >> 31)) >>> 0);`,
        write: `p = writeVarint(B, p, ((v << 1) ^ (v >> 31)) >>> 0);`,
      };
    case ScalarType.UINT32:
      return {
        size: `if (typeof v !== "number" || v >>> 0 !== v) fb(); n += varintSize(v);`,
        write: `p = writeVarint(B, p, v);`,
      };
    case ScalarType.FIXED32:
      return { size: `if (typeof v !== "number" || v >>> 0 !== v) fb(); n += 4;`, write: `B.writeUInt32LE(v, p); p += 4;` };
    case ScalarType.SFIXED32:
      return { size: `if (typeof v !== "number" || (v | 0) !== v) fb(); n += 4;`, write: `B.writeInt32LE(v, p); p += 4;` };
    case ScalarType.FLOAT:
      return { size: `if (!isFloat32(v)) fb(); n += 4;`, write: `B.writeFloatLE(v, p); p += 4;` };
    case ScalarType.DOUBLE:
      return { size: `if (typeof v !== "number") fb(); n += 8;`, write: `B.writeDoubleLE(v, p); p += 8;` };
    case ScalarType.INT64:
      return { size: `check64(v, true); n += varint64Size(v);`, write: `p = writeVarint64(B, p, v);` };
    case ScalarType.UINT64:
      return { size: `check64(v, false); n += varint64Size(v);`, write: `p = writeVarint64(B, p, v);` };
    case ScalarType.SINT64:
      return { size: `check64(v, true); n += varint64Size(zigzag64(v));`, write: `p = writeVarint64(B, p, zigzag64(v));` };
    case ScalarType.FIXED64:
      return { size: `check64(v, false); n += 8;`, write: `B.writeBigUInt64LE(v, p); p += 8;` };
    case ScalarType.SFIXED64:
      return { size: `check64(v, true); n += 8;`, write: `B.writeBigInt64LE(v, p); p += 8;` };
  }
}

/** `toBinary`'s test for a set implicit-presence field, on `v`. */
function implicitSet(field: DescField & { fieldKind: "scalar" | "enum" }): string {
  if (field.fieldKind === "enum") return `v !== ${field.enum.values[0]!.number}`;
  switch (field.scalar) {
    case ScalarType.BOOL:
      return `v !== false`;
    case ScalarType.STRING:
      return `v !== ""`;
    case ScalarType.BYTES:
      return `(!(v instanceof Uint8Array) || v.byteLength > 0)`;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return `!Object.is(v, 0)`;
    default:
      return `v != 0`;
  }
}

const bytesCode = (bytes: readonly number[]) => bytes.map((b) => `B[p++] = ${b};`).join(" ");

/**
 * Generates the size and write functions of every message type reachable from `root`, and returns the encoder of
 * `root`. Compiled once per answer type.
 */
function compile(root: DescMessage): Encode {
  if (delegated(root)) return (message, headroom, exact) => viaToBinary(root, message, headroom, exact);
  const descs: DescMessage[] = [];
  const index = new Map<DescMessage, number>();
  const toBinaryTypes = new Set<DescMessage>();
  const visit = (d: DescMessage) => {
    if (index.has(d)) return;
    index.set(d, descs.length);
    descs.push(d);
    if (delegated(d)) {
      toBinaryTypes.add(d);
      return;
    }
    for (const f of d.fields) {
      if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message") || (f.fieldKind === "map" && f.mapKind === "message")) visit(f.message);
    }
  };
  visit(root);
  const source: string[] = [];
  for (const [k, desc] of descs.entries()) {
    if (toBinaryTypes.has(desc)) {
      // Encoded by toBinary in the size pass; the write pass copies its bytes.
      source.push(`function s${k}(m) { const bytes = toBinary(D[${k}], m); X.push(bytes); return bytes.length; }`);
      source.push(`function w${k}(m, B, p) { const bytes = X[x++]; B.set(bytes, p); return p + bytes.length; }`);
      continue;
    }
    const size: string[] = [];
    const write: string[] = [];
    if (desc.fields.length > 0) size.push(`if (m.$typeName !== ${JSON.stringify(desc.typeName)}) fb();`);
    for (const f of [...desc.fields].sort((a, b) => a.number - b.number)) {
      const code = fieldCode(f, index);
      size.push(code.size);
      write.push(code.write);
    }
    size.push(`const u = m.$unknown; if (u !== undefined) for (let e = 0; e < u.length; e++) { const f = u[e]; if (!(f.data instanceof Uint8Array)) fb(); n += varintSize(((f.no << 3) | f.wireType) >>> 0) + f.data.byteLength; }`);
    write.push(`const u = m.$unknown; if (u !== undefined) for (let e = 0; e < u.length; e++) { const f = u[e]; p = writeVarint(B, p, ((f.no << 3) | f.wireType) >>> 0); B.set(f.data, p); p += f.data.byteLength; }`);
    source.push(`function s${k}(m) { let n = 0, v, l, i; ${size.join("\n")} return n; }`);
    source.push(`function w${k}(m, B, p) { let v, l; ${write.join("\n")} return p; }`);
  }
  // The generated text is made here from descriptors alone (names quoted by JSON.stringify, numbers): no input of a
  // call reaches it.
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function(
    "h",
    "D",
    `"use strict";
     const { fb, varintSize, utf8Length, writeVarint, writeNegative, writeString, check64, zigzag64, varint64Size, writeVarint64, isFloat32, toBinary, create } = h;
     const hasOwnProperty = Object.prototype.hasOwnProperty;
     // An undefined message where one is written (a oneof's value, a list element, a map value): an empty one, as toBinary writes.
     const E = [];
     const empty = (k) => E[k] ??= create(D[k]);
     // S: lengths noted by the size pass, taken back in order by the write pass at c; X: delegated messages' bytes.
     const S = [];
     const X = [];
     let c = 0, x = 0;
     ${source.join("\n")}
     return { size(m) { S.length = 0; X.length = 0; return s0(m); }, write(m, B, p) { c = 0; x = 0; return w0(m, B, p); } };`,
  ) as (h: typeof helpers, d: readonly DescMessage[]) => { size(m: Message): number; write(m: Message, b: Buffer, p: number): number };
  const passes = factory(helpers, descs);
  // The passes keep their lengths in state of their own: an encoding started while one of this type is under way (a
  // getter that encodes) goes to toBinary, so neither sees the other's lengths.
  let busy = false;
  return (message, headroom, exact) => {
    if (busy) {
      fallbacks++;
      return viaToBinary(root, message, headroom, exact);
    }
    busy = true;
    try {
      let size: number;
      try {
        size = passes.size(message);
      } catch {
        // A value of another form (FALLBACK) or shape (a oneof that is not an object): toBinary encodes it, or raises
        // its own error for it.
        fallbacks++;
        return viaToBinary(root, message, headroom, exact);
      }
      const out = allocate(headroom + size, exact);
      const end = passes.write(message, out, headroom);
      if (end !== headroom + size) throw new Error(`binary encoder: ${root.typeName} wrote ${end - headroom} bytes of ${size}`);
      return out;
    } finally {
      busy = false;
    }
  };
}

/** The size-pass and write-pass source of one field (its value read from `m`). */
function fieldCode(f: DescField, index: ReadonlyMap<DescMessage, number>): { size: string; write: string } {
  const name = JSON.stringify(f.localName);
  switch (f.fieldKind) {
    case "scalar":
    case "enum": {
      const type = f.fieldKind === "enum" ? ScalarType.INT32 : f.scalar;
      const tag = tagBytes(f.number, wireTypeOf(type));
      const value = scalarCode(type);
      const size = `n += ${tag.length}; ${value.size}`;
      const write = `${bytesCode(tag)} ${value.write}`;
      if (f.oneof !== undefined) {
        const oneof = JSON.stringify(f.oneof.localName);
        return { size: `v = m[${oneof}]; if (v.case === ${name}) { v = v.value; ${size} }`, write: `v = m[${oneof}]; if (v.case === ${name}) { v = v.value; ${write} }` };
      }
      const set = f.presence === FeatureSet_FieldPresence.IMPLICIT ? implicitSet(f) : `v !== undefined && hasOwnProperty.call(m, ${name})`;
      return { size: `v = m[${name}]; if (${set}) { ${size} }`, write: `v = m[${name}]; if (${set}) { ${write} }` };
    }
    case "message": {
      const k = index.get(f.message)!;
      const tag = tagBytes(f.number, WireType.LengthDelimited);
      const size = `n += ${tag.length}; i = S.length; S.push(0); l = s${k}(v); S[i] = l; n += varintSize(l) + l;`;
      const write = `${bytesCode(tag)} p = writeVarint(B, p, S[c++]); p = w${k}(v, B, p);`;
      if (f.oneof !== undefined) {
        const oneof = JSON.stringify(f.oneof.localName);
        const value = `v = v.value; if (v === undefined) v = empty(${k});`;
        return { size: `v = m[${oneof}]; if (v.case === ${name}) { ${value} ${size} }`, write: `v = m[${oneof}]; if (v.case === ${name}) { ${value} ${write} }` };
      }
      return { size: `v = m[${name}]; if (v !== undefined && hasOwnProperty.call(m, ${name})) { ${size} }`, write: `v = m[${name}]; if (v !== undefined && hasOwnProperty.call(m, ${name})) { ${write} }` };
    }
    case "list": {
      if (f.listKind === "message") {
        const k = index.get(f.message)!;
        const tag = tagBytes(f.number, WireType.LengthDelimited);
        return {
          size: `v = m[${name}]; for (let e = 0; e < v.length; e++) { let item = v[e]; if (item === undefined) item = empty(${k}); n += ${tag.length}; i = S.length; S.push(0); l = s${k}(item); S[i] = l; n += varintSize(l) + l; }`,
          write: `v = m[${name}]; for (let e = 0; e < v.length; e++) { let item = v[e]; if (item === undefined) item = empty(${k}); ${bytesCode(tag)} p = writeVarint(B, p, S[c++]); p = w${k}(item, B, p); }`,
        };
      }
      const type = f.listKind === "enum" ? ScalarType.INT32 : f.scalar;
      const value = scalarCode(type);
      if (f.packed) {
        const tag = tagBytes(f.number, WireType.LengthDelimited);
        // The packed length is the elements' sizes; `n` is borrowed for it.
        return {
          size: `v = m[${name}]; if (v.length !== 0) { const outer = n; n = 0; i = S.length; S.push(0); for (let e = 0; e < v.length; e++) { const item = v[e]; { const v = item; ${value.size} } } S[i] = n; n = outer + ${tag.length} + varintSize(S[i]) + S[i]; }`,
          write: `v = m[${name}]; if (v.length !== 0) { ${bytesCode(tag)} p = writeVarint(B, p, S[c++]); for (let e = 0; e < v.length; e++) { const item = v[e]; { const v = item; ${value.write} } } }`,
        };
      }
      const tag = tagBytes(f.number, wireTypeOf(type));
      return {
        size: `v = m[${name}]; for (let e = 0; e < v.length; e++) { const item = v[e]; { const v = item; n += ${tag.length}; ${value.size} } }`,
        write: `v = m[${name}]; for (let e = 0; e < v.length; e++) { const item = v[e]; { const v = item; ${bytesCode(tag)} ${value.write} } }`,
      };
    }
    case "map": {
      const tag = tagBytes(f.number, WireType.LengthDelimited);
      const keyType = f.mapKey;
      const keyTag = tagBytes(1, wireTypeOf(keyType));
      const key = scalarCode(keyType);
      // Object keys are strings: a 32-bit integer key is parsed back, as toBinary does (not a number: fallback).
      const keyValue = keyType === ScalarType.STRING ? `const v = key;` : `const v = Number.parseInt(key); if (!Number.isFinite(v)) fb();`;
      const keyWrite = keyType === ScalarType.STRING ? `const v = key;` : `const v = Number.parseInt(key);`;
      let valueSize: string;
      let valueWrite: string;
      if (f.mapKind === "message") {
        const k = index.get(f.message)!;
        const valueTag = tagBytes(2, WireType.LengthDelimited);
        valueSize = `let v = value; if (v === undefined) v = empty(${k}); n += ${valueTag.length}; const j = S.length; S.push(0); l = s${k}(v); S[j] = l; n += varintSize(l) + l;`;
        valueWrite = `let v = value; if (v === undefined) v = empty(${k}); ${bytesCode(valueTag)} p = writeVarint(B, p, S[c++]); p = w${k}(v, B, p);`;
      } else {
        const type = f.mapKind === "enum" ? ScalarType.INT32 : f.scalar;
        const valueTag = tagBytes(2, wireTypeOf(type));
        const value = scalarCode(type);
        valueSize = `const v = value; n += ${valueTag.length}; ${value.size}`;
        valueWrite = `const v = value; ${bytesCode(valueTag)} ${value.write}`;
      }
      return {
        size: `v = m[${name}]; for (const key of Object.keys(v)) { const value = v[key]; const outer = n; n = 0; i = S.length; S.push(0);
                 { ${keyValue} n += ${keyTag.length}; ${key.size} } { ${valueSize} } S[i] = n; n = outer + ${tag.length} + varintSize(S[i]) + S[i]; }`,
        write: `v = m[${name}]; for (const key of Object.keys(v)) { const value = v[key]; ${bytesCode(tag)} p = writeVarint(B, p, S[c++]);
                  { ${keyWrite} ${bytesCode(keyTag)} ${key.write} } { ${valueWrite} } }`,
      };
    }
  }
}
