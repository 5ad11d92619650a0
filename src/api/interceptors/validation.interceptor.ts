// Every request message is checked against its protovalidate rules before a handler runs, so handlers never
// validate by hand and invalid input changes nothing. Violations come back as INVALID_ARGUMENT with reason
// INVALID_REQUEST and one google.rpc.BadRequest field violation per broken rule.
import type { Interceptor } from "@connectrpc/connect";
import { createValidator } from "@bufbuild/protovalidate";
import { pathToString } from "@bufbuild/protobuf/reflect";
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
  return (next) => async (req) => {
    if (!req.stream) {
      check(req.method.input, req.message);
      return next(req);
    }
    // Streaming requests (WatchEvents' single message, reflection's stream) validate each message as it arrives,
    // before the handler sees it.
    const messages = req.message;
    async function* validated() {
      for await (const message of messages) {
        check(req.method.input, message);
        yield message;
      }
    }
    return next({ ...req, message: validated() });
  };
}
