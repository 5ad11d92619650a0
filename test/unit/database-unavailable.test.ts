// A database that is down, restarting or cut off answers UNAVAILABLE (reason DATABASE_UNAVAILABLE, retry after
// 1 s), which clients retry with the same unique_identifier, instead of INTERNAL, which they do not. Found by
// test/reliability/postgres-kill.test.ts: while PostgreSQL restarted, recordings were refused as INTERNAL.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema, RetryInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { isDatabaseUnavailable, toConnectError } from "../../src/api/errors.ts";

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });
// MikroORM wraps the driver's error in a DriverException that copies the code and keeps the original as cause.
const wrapped = (cause: Error) => Object.assign(new Error(`wrapped: ${cause.message}`, { cause }), { name: "DriverException" });

describe("errors: database unavailable", () => {
  it.each([
    ["refused connection", withCode("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED")],
    ["admin shutdown (restart, failover)", withCode("terminating connection due to administrator command", "57P01")],
    ["crash shutdown", withCode("terminating connection because of crash of another server process", "57P02")],
    ["starting up", withCode("the database system is starting up", "57P03")],
    ["connection failure", withCode("connection failure", "08006")],
    ["too many connections", withCode("sorry, too many clients already", "53300")],
    ["cut mid-query", new Error("Connection terminated unexpectedly")],
    ["pool timeout", new Error("timeout exceeded when trying to connect")],
    ["wrapped by the ORM", wrapped(withCode("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED"))],
  ])("errors/database_%s_is_unavailable_with_a_retry_hint", (_, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
    const mapped = toConnectError(error);
    expect(mapped.code).toBe(Code.Unavailable);
    expect(mapped.findDetails(ErrorInfoSchema)[0]?.reason).toBe("DATABASE_UNAVAILABLE");
    expect(mapped.findDetails(RetryInfoSchema)[0]?.retryDelay?.seconds).toBe(1n);
    expect(mapped.rawMessage).not.toContain("127.0.0.1");
  });

  it.each([
    ["a unique violation", withCode("duplicate key value violates unique constraint", "23505")],
    ["a syntax error", withCode("syntax error at or near", "42601")],
    ["a plain bug", new TypeError("x is undefined")],
  ])("errors/%s_stays_internal", (_, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
    expect(toConnectError(error).code).toBe(Code.Internal);
  });
});
