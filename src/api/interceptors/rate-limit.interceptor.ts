// Per-credential token bucket. Over the limit the call fails with RESOURCE_EXHAUSTED, reason RATE_LIMITED and a
// google.rpc.RetryInfo telling the client how long to wait. State is per process: with N API replicas the
// effective limit is N times the setting, which is documented in the README.
import { Code, type Interceptor } from "@connectrpc/connect";
import { ApiError } from "../errors.ts";
import { principalKey } from "../context.ts";

export function createRateLimitInterceptor(perSecond: number, now: () => number = Date.now): Interceptor {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const burst = Math.max(1, perSecond);
  // Not an async function: nothing is awaited here, and an async layer costs every call a promise of its own and
  // extra turns of the microtask queue. A refusal is a rejected promise, as an async function's throw would be.
  return (next) => (req) => {
    const principal = req.contextValues.get(principalKey);
    if (perSecond <= 0 || principal === undefined) return next(req);
    const t = now();
    const bucket = buckets.get(principal.credentialId) ?? { tokens: burst, at: t };
    bucket.tokens = Math.min(burst, bucket.tokens + ((t - bucket.at) / 1000) * perSecond);
    bucket.at = t;
    if (bucket.tokens < 1) {
      buckets.set(principal.credentialId, bucket);
      return Promise.reject(new ApiError(Code.ResourceExhausted, "RATE_LIMITED", `rate limit of ${perSecond} requests per second exceeded`, {
        retryAfterMs: ((1 - bucket.tokens) / perSecond) * 1000,
      }));
    }
    bucket.tokens -= 1;
    if (buckets.size > 100_000) buckets.clear();
    buckets.set(principal.credentialId, bucket);
    return next(req);
  };
}
