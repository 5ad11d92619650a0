import type { Interceptor } from "@connectrpc/connect";
import { callNext, toConnectError } from "../errors.ts";

/**
 * Outermost interceptor: every failure leaves the server through the one error mapper — including failures of
 * a server stream, which surface while its messages are read, after `next` has returned.
 */
export function createErrorInterceptor(): Interceptor {
  // Not an async function (see rate-limit.interceptor.ts): one `then` with handlers made once, rather than an async
  // layer suspended around every call. A synchronous throw below is mapped too.
  return (next) => (req) => callNext(next, req).then(mapStreamErrors, rejectMapped);
}

function rejectMapped(error: unknown): never {
  throw toConnectError(error);
}

function mapStreamErrors<T extends { readonly stream: boolean; readonly message: unknown }>(res: T): T {
  if (!res.stream) return res;
  const messages = res.message as AsyncIterable<unknown>;
  async function* mapped() {
    try {
      yield* messages;
    } catch (error) {
      throw toConnectError(error);
    }
  }
  return { ...res, message: mapped() };
}
