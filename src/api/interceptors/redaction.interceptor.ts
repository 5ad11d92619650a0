// Every response leaves through the redaction mapper, so no handler can forget it: provider settings of
// milestone rewards reach ADMIN callers only, provider secrets reach no one (see mappers/redaction.mapper.ts).
// Placed after authentication, which decides the role.
import type { Interceptor } from "@connectrpc/connect";
import type { DescMessage, Message } from "@bufbuild/protobuf";
import { principalKey } from "../context.ts";
import { canContainProvider, redactSecrets } from "../mappers/redaction.mapper.ts";

export function createRedactionInterceptor(): Interceptor {
  // Not an async function (see rate-limit.interceptor.ts): responses that cannot hold a provider pass untouched.
  return (next) => (req) => {
    const output: DescMessage = req.method.output;
    if (!canContainProvider(output)) return next(req);
    return next(req).then((res) => {
      const role = req.contextValues.get(principalKey)?.role ?? "GUEST";
      if (!res.stream) return { ...res, message: redactSecrets(output, res.message as Message, role) };
      const source = res.message as AsyncIterable<Message>;
      async function* redacted() {
        for await (const m of source) yield redactSecrets(output, m, role);
      }
      return { ...res, message: redacted() };
    });
  };
}
