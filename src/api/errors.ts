// The one place where errors become Connect/gRPC errors. Handlers and repositories throw typed errors (or
// DomainError from the domain core); this mapper gives each a code, a stable UPPER_SNAKE reason in a
// google.rpc.ErrorInfo detail, field violations in a google.rpc.BadRequest detail, and keeps the original as cause.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { DomainError } from "../domain/domain-error.ts";
import { TargetDefinitionError } from "../engine/ingest/activity-ingestor.ts";
import { EngineError, type EngineErrorKind } from "../engine/engine-error.ts";
import { BadRequestSchema, BadRequest_FieldViolationSchema, ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";

export const ERROR_DOMAIN = "kindling.dev";

export interface FieldViolation {
  readonly field: string;
  readonly description: string;
  readonly reason?: string;
}

/** An expected failure with an API meaning. `reason` is part of the contract: never rename one. */
export class ApiError extends Error {
  readonly code: Code;
  readonly reason: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly violations: readonly FieldViolation[];
  readonly retryAfterMs: number | undefined;

  constructor(
    code: Code,
    reason: string,
    message: string,
    extra: { metadata?: Record<string, string>; violations?: FieldViolation[]; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "ApiError";
    this.code = code;
    this.reason = reason;
    this.metadata = extra.metadata ?? {};
    this.violations = extra.violations ?? [];
    this.retryAfterMs = extra.retryAfterMs;
  }
}

export const notFound = (what: string, metadata: Record<string, string> = {}) =>
  new ApiError(Code.NotFound, `${what.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}_NOT_FOUND`, `${what} not found`, { metadata });
export const failedPrecondition = (reason: string, message: string, metadata: Record<string, string> = {}) =>
  new ApiError(Code.FailedPrecondition, reason, message, { metadata });
export const invalidArgument = (reason: string, message: string, violations: FieldViolation[] = []) =>
  new ApiError(Code.InvalidArgument, reason, message, { violations });
export const permissionDenied = (message: string) => new ApiError(Code.PermissionDenied, "PERMISSION_DENIED", message);
export const unauthenticated = (message: string) => new ApiError(Code.Unauthenticated, "UNAUTHENTICATED", message);

function withDetails(code: Code, message: string, reason: string, extra: {
  metadata?: Readonly<Record<string, string>>;
  violations?: readonly FieldViolation[];
  retryAfterMs?: number | undefined;
  cause?: unknown;
}): ConnectError {
  const details: ConstructorParameters<typeof ConnectError>[3] = [
    { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, domain: ERROR_DOMAIN, metadata: { ...extra.metadata } }) },
  ];
  if (extra.violations && extra.violations.length > 0) {
    details.push({
      desc: BadRequestSchema,
      value: create(BadRequestSchema, {
        fieldViolations: extra.violations.map((v) => create(BadRequest_FieldViolationSchema, { field: v.field, description: v.description, reason: v.reason ?? "" })),
      }),
    });
  }
  if (extra.retryAfterMs !== undefined) {
    const ms = Math.max(0, Math.ceil(extra.retryAfterMs));
    details.push({ desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 } }) });
  }
  return new ConnectError(message, code, undefined, details, extra.cause);
}

const engineCodes: Record<EngineErrorKind, Code> = {
  NOT_FOUND: Code.NotFound,
  FAILED_PRECONDITION: Code.FailedPrecondition,
  INVALID_ARGUMENT: Code.InvalidArgument,
  PERMISSION_DENIED: Code.PermissionDenied,
};

/** Maps anything thrown by a handler to a ConnectError. Unknown errors become INTERNAL without leaking details. */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ApiError) {
    return withDetails(error.code, error.message, error.reason, { ...error, cause: error });
  }
  if (error instanceof EngineError) {
    const violations = error.field === undefined ? [] : [{ field: error.field, description: error.message, reason: error.reason }];
    return withDetails(engineCodes[error.kind], error.message, error.reason, { metadata: error.metadata, violations, cause: error });
  }
  if (error instanceof TargetDefinitionError) {
    return error.found
      ? withDetails(Code.FailedPrecondition, error.message, "DEFINITION_NOT_LIVE", { metadata: { definition_id: error.definitionId }, cause: error })
      : withDetails(Code.NotFound, error.message, "DEFINITION_NOT_FOUND", { metadata: { definition_id: error.definitionId }, cause: error });
  }
  if (error instanceof DomainError) {
    return withDetails(Code.InvalidArgument, error.message, error.reason, {
      violations: [{ field: error.field, description: error.message, reason: error.reason }],
      cause: error,
    });
  }
  if (isDatabaseUnavailable(error)) {
    // The outcome of a write cut off mid-way is unknown, and retrying it is safe: every write is idempotent
    // (unique_identifier, request ids), so the client is told to retry, as for any transient failure.
    return withDetails(Code.Unavailable, "database unavailable, retry", "DATABASE_UNAVAILABLE", { retryAfterMs: 1_000, cause: error });
  }
  if (error instanceof ConnectError) {
    // Errors raised by Connect itself (malformed request, unsupported codec, too large) get a reason too.
    if (error.findDetails(ErrorInfoSchema).length > 0) return error;
    // A body connect cannot decode is the request's fault, not the server's: connect calls it INTERNAL.
    if (error.code === Code.Internal && MALFORMED_BODY.test(error.rawMessage)) {
      return withDetails(Code.InvalidArgument, `the request cannot be read: ${error.rawMessage}`, "MALFORMED_REQUEST", { cause: error });
    }
    const reason = error.code === Code.ResourceExhausted ? "REQUEST_TOO_LARGE" : Code[error.code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
    return withDetails(error.code, error.rawMessage, reason, { cause: error });
  }
  return withDetails(Code.Internal, "internal error", "INTERNAL", { cause: error });
}

// What connect-es says when it cannot decode a request body (binary or JSON parse, envelope decompression).
const MALFORMED_BODY = /^(parse binary|parse JSON|cannot decode|decompression failed|received compressed envelope|invalid envelope|protocol error)/i;

// SQLSTATEs of a database that is going away, restarting or out of connections: class 08 (connection exception),
// 57P01-57P03 (admin shutdown, crash shutdown, cannot connect now), 53300 (too many connections).
const UNAVAILABLE_SQLSTATES = /^(08...|57P0[123]|53300)$/;
// What node and pg report for a connection that cannot be made or was cut.
const UNAVAILABLE_SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);
const UNAVAILABLE_MESSAGES = [
  "Connection terminated",
  "timeout exceeded when trying to connect",
  "Client has encountered a connection error and is not queryable",
  "Client was closed and is not queryable",
];

/** Whether `error` (or any error it wraps, as MikroORM's DriverException does) is a lost or refused database connection. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current instanceof ApiError || current instanceof ConnectError) return false;
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && (UNAVAILABLE_SQLSTATES.test(code) || UNAVAILABLE_SOCKET_CODES.has(code))) return true;
    if (UNAVAILABLE_MESSAGES.some((m) => current instanceof Error && current.message.startsWith(m))) return true;
  }
  return false;
}

/**
 * A promise rejected with whatever was thrown: what an async function that threw it returns. For interceptors
 * that are not async functions (src/api/interceptors/rate-limit.interceptor.ts says why) and catch a throw.
 */
export async function rejectWith(error: unknown): Promise<never> {
  throw error;
}

/** `next(req)`, a synchronous throw turned into the rejection an async function would have returned. */
export function callNext<Req, Res>(next: (req: Req) => Promise<Res>, req: Req): Promise<Res> {
  try {
    return next(req);
  } catch (error) {
    return rejectWith(error);
  }
}
