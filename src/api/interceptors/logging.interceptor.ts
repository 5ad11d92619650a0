// One structured line per request: tenant, method, status code and latency.
import { Code, type Interceptor } from "@connectrpc/connect";
import { callNext, toConnectError } from "../errors.ts";
import type { Logger } from "../../observability/logger.ts";
import { principalKey } from "../context.ts";

export function createLoggingInterceptor(logger: Logger): Interceptor {
  type Request = Parameters<ReturnType<Interceptor>>[0];
  const log = (req: Request, started: number, code: string, err?: unknown) => {
    const failed = code === "internal" || code === "unknown";
    // Below the configured level, the line is not even built (the benchmark runs at `warn`).
    if (!failed && !logger.isLevelEnabled("info")) return;
    const principal = req.contextValues.get(principalKey);
    const entry = {
      method: `${req.service.typeName}/${req.method.name}`,
      protocol: req.header.get("content-type") ?? undefined,
      tenant: principal?.tenantId,
      role: principal?.role,
      code,
      ms: Math.round((performance.now() - started) * 100) / 100,
    };
    if (failed) logger.error({ ...entry, err }, "request failed");
    else logger.info(entry, "request");
  };
  // Not an async function (see rate-limit.interceptor.ts); a synchronous throw below is logged and rejected too.
  return (next) => (req) => {
    const started = performance.now();
    return callNext(next, req).then(
      (value) => {
        log(req, started, "ok");
        return value;
      },
      (error: unknown) => {
        // Mapping is pure, so the code logged is the one the client will see from the error interceptor.
        const mapped = toConnectError(error);
        log(req, started, Code[mapped.code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase(), error);
        throw error;
      },
    );
  };
}
