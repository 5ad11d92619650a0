// src/api/binary-encoder.ts: the generated encoders write exactly toBinary's bytes, for every message type the API
// can answer with every field set to values at the edges of its type, and leave to toBinary (and its errors) what
// they do not cover.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { create, createFileRegistry, createRegistry, toBinary, ScalarType, type DescField, type DescFile, type DescMessage, type Message } from "@bufbuild/protobuf";
import * as wkt from "@bufbuild/protobuf/wkt";
import { binaryEncoderStats, encodeBinary } from "../../src/api/binary-encoder.ts";
import { RecordActivityResponseSchema } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { StreakResultSchema } from "../../src/gen/kindling/v1/activity_pb.js";

/** Every generated file of the API (src/gen), by its `file_…` exports. */
async function apiFiles(): Promise<DescFile[]> {
  const root = join(import.meta.dirname, "../../src/gen");
  const files: DescFile[] = [];
  for (const entry of readdirSync(root, { recursive: true, encoding: "utf8" })) {
    if (!entry.endsWith("_pb.js")) continue;
    const module = (await import(pathToFileURL(join(root, entry)).href)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(module)) if (name.startsWith("file_")) files.push(value as DescFile);
  }
  return files;
}

const messagesOf = (registry: Iterable<{ kind: string }>): DescMessage[] => [...registry].filter((d): d is DescMessage => d.kind === "message");

/** A deterministic pseudo-random source (mulberry32), so a failure repeats. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STRINGS = ["", "a", "x".repeat(64), "y".repeat(65), "z".repeat(300), "é", "日本語", "😀", "\ud800", "a\udc00b", `${"é".repeat(40)}😀${"q".repeat(30)}`, "\ud83d".repeat(70)];
const INT32S = [0, 1, -1, 127, 128, 16_383, 16_384, 2_147_483_647, -2_147_483_648, -0];
const UINT32S = [0, 1, 127, 128, 2_097_151, 2_097_152, 268_435_456, 4_294_967_295];
const INT64S = [0n, 1n, -1n, 127n, 128n, 4_294_967_295n, 4_294_967_296n, 9_007_199_254_740_993n, 9_223_372_036_854_775_807n, -9_223_372_036_854_775_808n];
const UINT64S = [0n, 1n, 128n, 4_294_967_296n, 18_446_744_073_709_551_615n];
const DOUBLES = [0, -0, 1.5, -2.25, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e308, 5e-324];
const FLOATS = [0, -0, 1.5, Number.NaN, Number.NEGATIVE_INFINITY, 3.4028234663852886e38, 1e-45];

function scalarValue(type: ScalarType, next: () => number): unknown {
  const pick = <T,>(values: readonly T[]): T => values[Math.floor(next() * values.length)]!;
  switch (type) {
    case ScalarType.STRING:
      return pick(STRINGS);
    case ScalarType.BYTES:
      return Uint8Array.from({ length: pick([0, 1, 5, 200]) }, () => Math.floor(next() * 256));
    case ScalarType.BOOL:
      return next() < 0.5;
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return pick(INT32S);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return pick(UINT32S);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return pick(INT64S);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return pick(UINT64S);
    case ScalarType.DOUBLE:
      return pick(DOUBLES);
    case ScalarType.FLOAT:
      return pick(FLOATS);
  }
}

const mapKey = (type: ScalarType, next: () => number): string => {
  const value = scalarValue(type, next);
  return typeof value === "bigint" || typeof value === "number" || typeof value === "boolean" ? String(value) : (value as string);
};

function enumValue(field: DescField & { enum: { values: readonly { number: number }[] } }, next: () => number): number {
  const values = field.enum.values;
  return values[Math.floor(next() * values.length)]!.number;
}

/**
 * A message of `desc` with every field set (a oneof to one of its cases, picked at random), nested messages to
 * `depth`, lists and maps of 0–3 entries. Singular wrapper fields hold a bare value and Struct fields a JSON object,
 * as protobuf-es stores them.
 */
function populated(desc: DescMessage, next: () => number, depth: number): Message {
  const message = create(desc) as unknown as Record<string, unknown>;
  const count = () => Math.floor(next() * 4);
  const child = (d: DescMessage) => (depth > 0 ? populated(d, next, depth - 1) : create(d));
  const oneofCases = new Map<string, DescField>();
  for (const oneof of desc.oneofs) {
    const fields = oneof.fields;
    if (next() < 0.85) oneofCases.set(oneof.localName, fields[Math.floor(next() * fields.length)]!);
  }
  for (const field of desc.fields) {
    let value: unknown;
    switch (field.fieldKind) {
      case "scalar":
        value = scalarValue(field.scalar, next);
        break;
      case "enum":
        value = enumValue(field, next);
        break;
      case "message":
        if (field.oneof === undefined && wkt.isWrapperDesc(field.message)) value = scalarValue(field.message.fields[0].scalar, next);
        else if (field.message.typeName === "google.protobuf.Struct" && desc.typeName !== "google.protobuf.Value") value = { a: 1, b: ["x", true, null] };
        else if (depth === 0 && next() < 0.5) value = undefined;
        else value = child(field.message);
        break;
      case "list":
        value = Array.from({ length: count() }, () =>
          field.listKind === "message"
            ? field.message.typeName === "google.protobuf.Struct" && desc.typeName !== "google.protobuf.Value" ? { k: "v" } : child(field.message)
            : field.listKind === "enum" ? enumValue(field, next) : scalarValue(field.scalar, next),
        );
        break;
      case "map": {
        const record: Record<string, unknown> = {};
        for (let i = count(); i > 0; i--) {
          record[mapKey(field.mapKey, next)] =
            field.mapKind === "message" ? child(field.message) : field.mapKind === "enum" ? enumValue(field, next) : scalarValue(field.scalar, next);
        }
        value = record;
        break;
      }
    }
    if (field.oneof !== undefined) {
      if (oneofCases.get(field.oneof.localName) === field) message[field.oneof.localName] = { case: field.localName, value };
    } else if (value !== undefined) {
      message[field.localName] = value;
    }
  }
  return message as unknown as Message;
}

/** encodeBinary gives toBinary's bytes, with and without headroom, or throws toBinary's error. */
function expectSameBytes(desc: DescMessage, message: Message): void {
  let expected: Buffer;
  try {
    expected = Buffer.from(toBinary(desc, message));
  } catch (error) {
    expect(() => encodeBinary(desc, message), desc.typeName).toThrow((error as Error).message);
    return;
  }
  expect(Buffer.from(encodeBinary(desc, message)), desc.typeName).toEqual(expected);
  const withHeadroom = encodeBinary(desc, message, 5, true);
  expect(Buffer.from(withHeadroom.subarray(5)), `${desc.typeName} after headroom`).toEqual(expected);
  // Kept bytes (`exact`) hold their own memory, not a slice of Node's shared pool.
  expect(withHeadroom.buffer.byteLength).toBe(withHeadroom.byteLength);
}

// A proto2 file and an editions file with what the API's own messages never use: required fields, group
// (delimited) encoding, explicit presence with defaults, 64-bit and bool map keys, unpacked lists, every scalar type.
const { FieldDescriptorProto_Type: T, FieldDescriptorProto_Label: L } = wkt;
const scalarTypes = [T.DOUBLE, T.FLOAT, T.INT64, T.UINT64, T.INT32, T.FIXED64, T.FIXED32, T.BOOL, T.STRING, T.BYTES, T.UINT32, T.SFIXED32, T.SFIXED64, T.SINT32, T.SINT64];
function syntheticFiles(): DescMessage[] {
  const mapEntry = (name: string, key: wkt.FieldDescriptorProto_Type) => ({
    name, options: { mapEntry: true },
    field: [{ name: "key", number: 1, label: L.OPTIONAL, type: key }, { name: "value", number: 2, label: L.OPTIONAL, type: T.STRING }],
  });
  const proto2 = create(wkt.FileDescriptorProtoSchema, {
    name: "synthetic2.proto", package: "synthetic", syntax: "proto2",
    enumType: [{ name: "Colour", value: [{ name: "RED", number: 3 }, { name: "BLUE", number: -2 }] }],
    messageType: [{
      name: "Legacy",
      field: [
        { name: "needed", number: 1, label: L.REQUIRED, type: T.INT32 },
        { name: "grouped", number: 2, label: L.OPTIONAL, type: T.GROUP, typeName: ".synthetic.Legacy.Grouped" },
        { name: "colour", number: 3, label: L.OPTIONAL, type: T.ENUM, typeName: ".synthetic.Colour", defaultValue: "BLUE" },
        { name: "note", number: 4, label: L.OPTIONAL, type: T.STRING, defaultValue: "hello" },
      ],
      nestedType: [{ name: "Grouped", field: [{ name: "x", number: 1, label: L.OPTIONAL, type: T.INT32 }] }],
    }, {
      name: "Optional2",
      field: [
        ...scalarTypes.map((type, i) => ({ name: `f${i}`, number: i + 1, label: L.OPTIONAL, type })),
        ...scalarTypes.filter((t) => t !== T.STRING && t !== T.BYTES).map((type, i) => ({ name: `r${i}`, number: 100 + i, label: L.REPEATED, type })),
        { name: "colour", number: 200, label: L.OPTIONAL, type: T.ENUM, typeName: ".synthetic.Colour" },
        { name: "colours", number: 201, label: L.REPEATED, type: T.ENUM, typeName: ".synthetic.Colour" },
      ],
    }],
  });
  const proto3 = create(wkt.FileDescriptorProtoSchema, {
    name: "synthetic3.proto", package: "synthetic3", syntax: "proto3",
    enumType: [{ name: "Shade", value: [{ name: "SHADE_UNSPECIFIED", number: 0 }, { name: "DARK", number: 1 }, { name: "NEGATIVE", number: -5 }] }],
    messageType: [{
      name: "Every",
      field: [
        ...scalarTypes.map((type, i) => ({ name: `s${i}`, number: i + 1, label: L.OPTIONAL, type })),
        ...scalarTypes.map((type, i) => ({ name: `o${i}`, number: 20 + i, label: L.OPTIONAL, type, proto3Optional: true, oneofIndex: i })),
        ...scalarTypes.map((type, i) => ({ name: `p${i}`, number: 40 + i, label: L.REPEATED, type })),
        ...scalarTypes.filter((t) => t !== T.STRING && t !== T.BYTES).map((type, i) => ({ name: `u${i}`, number: 60 + i, label: L.REPEATED, type, options: { packed: false } })),
        { name: "shade", number: 80, label: L.OPTIONAL, type: T.ENUM, typeName: ".synthetic3.Shade" },
        { name: "shades", number: 81, label: L.REPEATED, type: T.ENUM, typeName: ".synthetic3.Shade" },
        { name: "child", number: 82, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".synthetic3.Every" },
        { name: "children", number: 83, label: L.REPEATED, type: T.MESSAGE, typeName: ".synthetic3.Every" },
        { name: "by_int", number: 84, label: L.REPEATED, type: T.MESSAGE, typeName: ".synthetic3.Every.ByIntEntry" },
        { name: "by_sint", number: 85, label: L.REPEATED, type: T.MESSAGE, typeName: ".synthetic3.Every.BySintEntry" },
        { name: "by_string", number: 86, label: L.REPEATED, type: T.MESSAGE, typeName: ".synthetic3.Every.ByStringEntry" },
        { name: "a_number", number: 90, label: L.OPTIONAL, type: T.SINT64, oneofIndex: scalarTypes.length },
        { name: "a_text", number: 91, label: L.OPTIONAL, type: T.STRING, oneofIndex: scalarTypes.length },
        { name: "a_child", number: 92, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".synthetic3.Every", oneofIndex: scalarTypes.length },
        { name: "a_shade", number: 93, label: L.OPTIONAL, type: T.ENUM, typeName: ".synthetic3.Shade", oneofIndex: scalarTypes.length },
        { name: "far", number: 536_870_911, label: L.OPTIONAL, type: T.BOOL },
      ],
      oneofDecl: [...scalarTypes.map((_, i) => ({ name: `_o${i}` })), { name: "either" }],
      nestedType: [
        { ...mapEntry("ByIntEntry", T.INT32), field: [{ name: "key", number: 1, label: L.OPTIONAL, type: T.INT32 }, { name: "value", number: 2, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".synthetic3.Every" }] },
        mapEntry("BySintEntry", T.SINT32),
        mapEntry("ByStringEntry", T.STRING),
      ],
    }, {
      name: "WideKeys",
      field: [
        { name: "by_long", number: 1, label: L.REPEATED, type: T.MESSAGE, typeName: ".synthetic3.WideKeys.ByLongEntry" },
        { name: "by_bool", number: 2, label: L.REPEATED, type: T.MESSAGE, typeName: ".synthetic3.WideKeys.ByBoolEntry" },
      ],
      nestedType: [mapEntry("ByLongEntry", T.INT64), mapEntry("ByBoolEntry", T.BOOL)],
    }],
  });
  return [...messagesOf(createFileRegistry(proto2, () => undefined)), ...messagesOf(createFileRegistry(proto3, () => undefined))];
}

describe("binary encoder", () => {
  it("binary_encoder/every_api_message_with_every_field_set_encodes_to_toBinary_bytes", async () => {
    const descs = messagesOf(createRegistry(...(await apiFiles())));
    expect(descs.length).toBeGreaterThan(150);
    const before = binaryEncoderStats().fallbacks;
    const next = random(16);
    for (const desc of descs) {
      expectSameBytes(desc, create(desc));
      for (let i = 0; i < 12; i++) expectSameBytes(desc, populated(desc, next, 2));
    }
    // All of them on the generated path: none of the API's values needed toBinary.
    expect(binaryEncoderStats().fallbacks - before).toBe(0);
  });

  it("binary_encoder/well_known_and_synthetic_types_encode_to_toBinary_bytes", () => {
    const wellKnown = messagesOf(createRegistry(wkt.file_google_protobuf_struct, wkt.file_google_protobuf_wrappers, wkt.file_google_protobuf_any,
      wkt.file_google_protobuf_timestamp, wkt.file_google_protobuf_duration, wkt.file_google_protobuf_descriptor, wkt.file_google_protobuf_type));
    const next = random(7);
    for (const desc of [...wellKnown, ...syntheticFiles()]) {
      expectSameBytes(desc, create(desc));
      const before = binaryEncoderStats().fallbacks;
      for (let i = 0; i < 20; i++) {
        const message = populated(desc, next, 2);
        if (desc.typeName === "synthetic.Legacy") (message as unknown as { needed: number }).needed = 4;
        expectSameBytes(desc, message);
      }
      // Every scalar type, oneofs, packed and unpacked lists and 32-bit map keys are on the generated path.
      if (desc.typeName === "synthetic3.Every") expect(binaryEncoderStats().fallbacks - before).toBe(0);
    }
  });

  it("binary_encoder/unknown_fields_follow_the_known_ones", () => {
    const result = create(StreakResultSchema, { definitionId: "d1", currentStreak: 3 });
    result.$unknown = [{ no: 900, wireType: 0, data: Uint8Array.of(0x96, 0x01) }, { no: 3, wireType: 2, data: Uint8Array.of(2, 0x68, 0x69) }];
    expectSameBytes(RecordActivityResponseSchema, create(RecordActivityResponseSchema, { results: [result] }));
    expectSameBytes(StreakResultSchema, result);
    // Data of another typed array: toBinary writes its elements as bytes; never memory the size pass did not count.
    result.$unknown = [{ no: 7, wireType: 2, data: new Uint16Array([0x0102, 0x0304]) as unknown as Uint8Array }];
    expectSameBytes(StreakResultSchema, result);
  });

  it("binary_encoder/an_encoding_started_inside_another_of_the_same_type_gives_toBinary_bytes", () => {
    const inner = create(StreakResultSchema, { definitionId: "inner", currentStreak: 2 });
    const outer = create(RecordActivityResponseSchema, { results: [create(StreakResultSchema, { definitionId: "first" }), inner] });
    // A getter that encodes a message of the same root type, also while the outer encoding is under way.
    let nested: Uint8Array | undefined;
    Object.defineProperty(outer.results[0]!, "message", {
      enumerable: true,
      get: () => {
        nested = encodeBinary(RecordActivityResponseSchema, create(RecordActivityResponseSchema, { results: [inner] }));
        return "hello";
      },
    });
    expectSameBytes(RecordActivityResponseSchema, outer);
    expect(Buffer.from(nested!)).toEqual(Buffer.from(toBinary(RecordActivityResponseSchema, create(RecordActivityResponseSchema, { results: [inner] }))));
  });

  it("binary_encoder/values_toBinary_refuses_raise_its_errors_and_values_it_converts_give_its_bytes", () => {
    const bad = (patch: Record<string, unknown>) => Object.assign(create(StreakResultSchema, { definitionId: "d1" }), patch) as Message;
    for (const patch of [{ currentStreak: 2 ** 40 }, { currentStreak: 1.5 }, { currentStreak: "x" }, { previousStreak: -1 }, { streak: create(RecordActivityResponseSchema) }]) {
      const message = bad(patch);
      let expected: unknown;
      try {
        toBinary(StreakResultSchema as DescMessage, message);
      } catch (error) {
        expected = error;
      }
      if (expected === undefined) {
        expectSameBytes(StreakResultSchema, message);
        continue;
      }
      expect(() => encodeBinary(StreakResultSchema, message), Object.keys(patch)[0]).toThrow((expected as Error).message);
    }
    // Forms toBinary accepts and converts: a numeric string for an int32, a missing string field (written as "undefined").
    const converted = bad({ currentStreak: "12" });
    expectSameBytes(StreakResultSchema, converted);
    const missing = create(StreakResultSchema, { definitionId: "d1" }) as unknown as Record<string, unknown>;
    delete missing.message;
    expectSameBytes(StreakResultSchema, missing as unknown as Message);
  });
});
