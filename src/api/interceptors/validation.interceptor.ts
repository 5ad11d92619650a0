// Every request message is checked against its protovalidate rules before a handler runs, so handlers never
// validate by hand and invalid input changes nothing. Violations come back as INVALID_ARGUMENT with reason
// INVALID_REQUEST and one google.rpc.BadRequest field violation per broken rule.
//
// The rules of an activity's occur_time are checked here in code rather than declared for protovalidate: after the
// year 2000 and at most 5 minutes ahead (activity.proto). Evaluated as CEL they cost ~11 µs per activity, four
// times the rest of a RecordActivity's validation. They apply to every ActivityInput a request carries, at any
// depth, and report like protovalidate rules (field path, message, rule id).
//
// One rule holds for every string of every request: no NUL character (U+0000). PostgreSQL's text cannot hold it,
// so a NUL that reached the database failed the statement and answered INTERNAL (found by the wire fuzzing of
// test/reliability/wire-fuzz.test.ts); it is refused here as a field violation (reason STRING_NUL) instead.
import type { Interceptor } from "@connectrpc/connect";
import { createValidator } from "@bufbuild/protovalidate";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { ApiError, rejectWith } from "../errors.ts";
import { Code } from "@connectrpc/connect";
import { ActivityInputSchema, type ActivityInput } from "../../gen/kindling/v1/activity_pb.js";
import { FUTURE_TOLERANCE_MS } from "../../engine/ingest/activity-ingestor.ts";

interface Violation {
  readonly field: string;
  readonly description: string;
  readonly reason: string;
}

export function createValidationInterceptor(now: () => number = Date.now): Interceptor {
  const validator = createValidator();
  const check = (schema: DescMessage, message: Message) => {
    const result = validator.validate(schema, message);
    if (result.kind === "error") throw result.error;
    const violations: Violation[] = result.kind === "valid"
      ? []
      : result.violations.map((v) => ({ field: pathToString(v.field), description: v.message, reason: v.ruleId }));
    futureActivities(schema, message, "", now(), violations);
    if (violations.length === 0) return;
    throw new ApiError(Code.InvalidArgument, "INVALID_REQUEST", violations.map((v) => `${v.field}: ${v.description}`).join("; "), { violations });
  };
  const checkAll = (schema: DescMessage, message: Parameters<typeof validator.validate>[1]) => {
    check(schema, message);
    const field = nulField(schema, message, "");
    if (field !== undefined) {
      const violation = { field, description: "must not contain a NUL character (U+0000)", reason: "STRING_NUL" };
      throw new ApiError(Code.InvalidArgument, "INVALID_REQUEST", `${field}: ${violation.description}`, { violations: [violation] });
    }
  };
  // Not an async function (see rate-limit.interceptor.ts): a violation is a rejected promise.
  return (next) => (req) => {
    if (!req.stream) {
      try {
        checkAll(req.method.input, req.message);
      } catch (error) {
        return rejectWith(error);
      }
      return next(req);
    }
    // Streaming requests (WatchEvents' single message, reflection's stream) validate each message as it arrives,
    // before the handler sees it.
    const messages = req.message;
    async function* validated() {
      for await (const message of messages) {
        checkAll(req.method.input, message);
        yield message;
      }
    }
    return next({ ...req, message: validated() });
  };
}

/** 2000-01-01T00:00:00Z: activity times must be later (a zero or garbage timestamp is a client bug). */
const YEAR_2000_SECONDS = 946_684_800n;

/** The message fields of each type through which an ActivityInput can be reached (none for most requests). */
const activityPaths = new Map<string, readonly DescField[]>();

function pathsToActivities(desc: DescMessage, visiting?: Set<string>): readonly DescField[] {
  const known = activityPaths.get(desc.typeName);
  if (known !== undefined) return known;
  // Made only when the type is not settled yet: this runs for every request.
  visiting ??= new Set();
  visiting.add(desc.typeName);
  const paths = desc.fields.filter((f) => {
    const child = f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message") ? f.message : undefined;
    if (child === undefined || visiting.has(child.typeName)) return false;
    return child.typeName === ActivityInputSchema.typeName || pathsToActivities(child, visiting).length > 0;
  });
  visiting.delete(desc.typeName);
  // A type on a cycle is only final once the outermost call settles it.
  if (visiting.size === 0 || paths.length > 0) activityPaths.set(desc.typeName, paths);
  return paths;
}

function futureActivities(desc: DescMessage, message: Message, path: string, at: number, out: Violation[]): void {
  if (desc.typeName === ActivityInputSchema.typeName) {
    const time = (message as ActivityInput).occurTime;
    if (time === undefined) return;
    const field = `${path}occur_time`;
    if (time.seconds < YEAR_2000_SECONDS || (time.seconds === YEAR_2000_SECONDS && time.nanos <= 0)) {
      out.push({ field, description: "occur_time must be after 2000-01-01T00:00:00Z", reason: "activity_input.occur_time_after_2000" });
    } else if (timestampMs(time) > at + FUTURE_TOLERANCE_MS) {
      out.push({ field, description: "occur_time must not be more than 5 minutes in the future", reason: "activity_input.occur_time_not_future" });
    }
    return;
  }
  for (const f of pathsToActivities(desc)) {
    const child = f.message!;
    const fields = message as unknown as Record<string, unknown>;
    const holder = f.oneof ? (fields[f.oneof.localName] as { case?: string; value?: unknown }) : undefined;
    const value = holder ? (holder.case === f.localName ? holder.value : undefined) : fields[f.localName];
    if (f.fieldKind === "list") {
      (value as Message[]).forEach((item, i) => futureActivities(child, item, `${path}${f.name}[${i}].`, at, out));
    } else if (value !== undefined) {
      futureActivities(child, value as Message, `${path}${f.name}.`, at, out);
    }
  }
}

const hasNul = (value: unknown) => typeof value === "string" && value.includes("\u0000");
const at = (path: string, name: string) => (path === "" ? name : `${path}.${name}`);

/**
 * The fields of each message type that can hold a string at any depth (strings, messages, their lists and maps),
 * worked out once per type: the check runs on every request, and most fields (numbers, enums, timestamps) cannot.
 */
const stringBearing = new Map<string, readonly DescField[]>();

function stringFields(desc: DescMessage, visiting?: Set<string>): readonly DescField[] {
  const known = stringBearing.get(desc.typeName);
  if (known !== undefined) return known;
  // Made only when the type is not settled yet: this runs for every message of every request.
  visiting ??= new Set();
  visiting.add(desc.typeName);
  const bears = (child: DescMessage | undefined) => child !== undefined && (visiting.has(child.typeName) || stringFields(child, visiting).length > 0);
  const fields = desc.fields.filter((f) => {
    switch (f.fieldKind) {
      case "scalar":
        return f.scalar === ScalarType.STRING;
      case "enum":
        return false;
      case "message":
        return bears(f.message);
      case "list":
        return f.listKind === "scalar" ? f.scalar === ScalarType.STRING : f.listKind === "message" && bears(f.message);
      case "map":
        return f.mapKey === ScalarType.STRING || (f.mapKind === "scalar" ? f.scalar === ScalarType.STRING : f.mapKind === "message" && bears(f.message));
    }
  });
  visiting.delete(desc.typeName);
  // A type on a cycle is only final once the outermost call settles it.
  if (visiting.size === 0 || fields.length > 0) stringBearing.set(desc.typeName, fields);
  return fields;
}

/** The path of the first string (field, list item, map key or value, at any depth) holding a NUL. */
function nulField(desc: DescMessage, message: Message, path: string): string | undefined {
  const values = message as unknown as Record<string, unknown>;
  for (const field of stringFields(desc)) {
    const holder = field.oneof ? (values[field.oneof.localName] as { case?: string; value?: unknown }) : undefined;
    const value = holder ? (holder.case === field.localName ? holder.value : undefined) : values[field.localName];
    if (value === undefined || value === null) continue;
    const here = at(path, field.name);
    // A string also where a wrapper message (google.protobuf.StringValue) is stored unwrapped.
    if (typeof value === "string") {
      if (hasNul(value)) return here;
      continue;
    }
    if (field.fieldKind === "message") {
      const inner = nulField(field.message, value as Message, here);
      if (inner !== undefined) return inner;
    } else if (field.fieldKind === "list") {
      const items = value as unknown[];
      for (let index = 0; index < items.length; index++) {
        const item = items[index];
        if (hasNul(item)) return `${here}[${index}]`;
        if (field.listKind === "message") {
          const inner = nulField(field.message, item as Message, `${here}[${index}]`);
          if (inner !== undefined) return inner;
        }
      }
    } else if (field.fieldKind === "map") {
      for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
        if (hasNul(key) || hasNul(item)) return `${here}[${JSON.stringify(key.replaceAll("\u0000", "\\0"))}]`;
        if (field.mapKind === "message") {
          const inner = nulField(field.message, item as Message, `${here}[${JSON.stringify(key)}]`);
          if (inner !== undefined) return inner;
        }
      }
    }
  }
  return undefined;
}
