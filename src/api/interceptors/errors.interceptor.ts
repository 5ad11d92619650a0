import type { Interceptor } from "@connectrpc/connect";
import { toConnectError } from "../errors.ts";

/** Outermost interceptor: every failure leaves the server through the one error mapper. */
export function createErrorInterceptor(): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (error) {
      throw toConnectError(error);
    }
  };
}
