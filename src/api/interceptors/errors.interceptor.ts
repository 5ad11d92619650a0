import type { Interceptor } from "@connectrpc/connect";
import { toConnectError } from "../errors.ts";

/**
 * Outermost interceptor: every failure leaves the server through the one error mapper — including failures of
 * a server stream, which surface while its messages are read, after `next` has returned.
 */
export function createErrorInterceptor(): Interceptor {
  return (next) => async (req) => {
    let res;
    try {
      res = await next(req);
    } catch (error) {
      throw toConnectError(error);
    }
    if (!res.stream) return res;
    const messages = res.message;
    async function* mapped() {
      try {
        yield* messages;
      } catch (error) {
        throw toConnectError(error);
      }
    }
    return { ...res, message: mapped() };
  };
}
