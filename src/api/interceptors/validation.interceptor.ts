// Every request message is checked against its protovalidate rules before a handler runs, so handlers never
// validate by hand and invalid input changes nothing. Violations come back as INVALID_ARGUMENT with reason
// INVALID_REQUEST and one google.rpc.BadRequest field violation per broken rule.
//
// One rule holds for every string of every request: no NUL character (U+0000). PostgreSQL's text cannot hold it,
// so a NUL that reached the database failed the statement and answered INTERNAL (found by the wire fuzzing of
// test/reliability/wire-fuzz.test.ts); it is refused here as a field violation (reason STRING_NUL) instead.
import type { Interceptor } from "@connectrpc/connect";
import { createValidator } from "@bufbuild/protovalidate";
import type { DescMessage } from "@bufbuild/protobuf";
import { isReflectList, isReflectMap, isReflectMessage, pathToString, reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { ApiError } from "../errors.ts";
import { Code } from "@connectrpc/connect";

export function createValidationInterceptor(): Interceptor {
  const validator = createValidator();
  const check = (schema: Parameters<typeof validator.validate>[0], message: Parameters<typeof validator.validate>[1]) => {
    const result = validator.validate(schema, message);
    if (result.kind === "valid") return;
    if (result.kind === "error") throw result.error;
    const violations = result.violations.map((v) => ({
      field: pathToString(v.field),
      description: v.message,
      reason: v.ruleId,
    }));
    throw new ApiError(Code.InvalidArgument, "INVALID_REQUEST", violations.map((v) => `${v.field}: ${v.description}`).join("; "), { violations });
  };
  const checkAll = (schema: DescMessage, message: Parameters<typeof validator.validate>[1]) => {
    check(schema, message);
    const field = nulField(reflect(schema, message as never), "");
    if (field !== undefined) {
      const violation = { field, description: "must not contain a NUL character (U+0000)", reason: "STRING_NUL" };
      throw new ApiError(Code.InvalidArgument, "INVALID_REQUEST", `${field}: ${violation.description}`, { violations: [violation] });
    }
  };
  return (next) => async (req) => {
    if (!req.stream) {
      checkAll(req.method.input, req.message);
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

const hasNul = (value: unknown) => typeof value === "string" && value.includes("\u0000");
const at = (path: string, name: string) => (path === "" ? name : `${path}.${name}`);

/** The path of the first string (field, list item, map key or value, at any depth) holding a NUL. */
function nulField(message: ReflectMessage, path: string): string | undefined {
  for (const field of message.fields) {
    if (!message.isSet(field)) continue;
    const value = message.get(field);
    const here = at(path, field.name);
    if (hasNul(value)) return here;
    if (isReflectMessage(value)) {
      const inner = nulField(value, here);
      if (inner !== undefined) return inner;
    } else if (isReflectList(value)) {
      let index = 0;
      for (const item of value) {
        if (hasNul(item)) return `${here}[${index}]`;
        if (isReflectMessage(item)) {
          const inner = nulField(item, `${here}[${index}]`);
          if (inner !== undefined) return inner;
        }
        index++;
      }
    } else if (isReflectMap(value)) {
      for (const [key, item] of value) {
        if (hasNul(key) || hasNul(item)) return `${here}[${JSON.stringify(String(key).replaceAll("\u0000", "\\0"))}]`;
        if (isReflectMessage(item)) {
          const inner = nulField(item, `${here}[${JSON.stringify(String(key))}]`);
          if (inner !== undefined) return inner;
        }
      }
    }
  }
  return undefined;
}
