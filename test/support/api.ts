// A real Kindling API for a test file: its own database on the run's PostgreSQL, migrations applied, the server
// listening on a free port, and a tenant with an ADMIN key. Clients speak Connect over HTTP/1.1 JSON (as a
// browser would) or gRPC over HTTP/2 (as an internal service would).
import { randomUUID } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { loadConfig } from "../../src/config/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { startKindling, type Started } from "../../src/app.ts";
import { createOrm, type Orm } from "../../src/db/orm.ts";
import { createTenantWithAdminKey } from "../../src/db/repositories/tenant.repository.ts";
import { createTestDatabase, type TestDatabase } from "./database.ts";

export interface Credentials {
  readonly tenantId: string;
  readonly keyId: string;
  readonly secret: string;
}

export type Protocol = "connect-json" | "connect-binary" | "grpc" | "grpc-web";

export interface TestApi {
  readonly url: string;
  readonly databaseUrl: string;
  readonly orm: Orm;
  readonly admin: Credentials;
  /** A second tenant, for isolation tests. */
  newTenant(name?: string): Promise<Credentials>;
  /** A client authenticated with API-key headers (or with the given headers, e.g. a bearer JWT). */
  client<S extends DescService>(service: S, auth?: Credentials | Record<string, string>, protocol?: Protocol): Client<S>;
  close(): Promise<void>;
}

export interface StartTestApiOptions {
  readonly label?: string;
  /** Settings beside the defaults; a function gets the test database's URL (e.g. to reach it through a proxy). */
  readonly env?: Record<string, string> | ((databaseUrl: string) => Record<string, string>);
  /** A clock for the server; see `createTestClock`. */
  readonly now?: () => number;
  /** A database of the caller's (e.g. a Citus coordinator's) instead of a new one on the shared PostgreSQL; kept on close. */
  readonly database?: TestDatabase;
}

/** A settable clock: tests play a week of daily windows by moving it, while the server runs for real. */
export interface TestClock {
  readonly now: () => number;
  set(ms: number): void;
  advance(ms: number): void;
}

export function createTestClock(startMs: number): TestClock {
  let current = startMs;
  return {
    now: () => current,
    set: (ms) => {
      current = ms;
    },
    advance: (ms) => {
      current += ms;
    },
  };
}

export async function startTestApi(options: StartTestApiOptions = {}): Promise<TestApi> {
  const db: TestDatabase = options.database ?? await createTestDatabase({ label: options.label ?? "api" });
  // A caller's database is the caller's to drop.
  const dropOwn = () => (options.database ? Promise.resolve() : db.drop());
  // At `error` by default: a call answered INTERNAL logs its cause (message, SQLSTATE; logging.interceptor.ts), so
  // an unexpected failure in a test says why; TEST_LOG_LEVEL=info shows every request, silent none.
  const config = loadConfig({ DATABASE_URL: db.url, PORT: "0", LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "error", RATE_LIMIT_PER_SECOND: "0", ...(typeof options.env === "function" ? options.env(db.url) : options.env) });
  const logger = createLogger(config.logLevel);
  let started: Started | undefined;
  let orm: Orm | undefined;
  try {
    started = await startKindling(config, logger, "api", options.now ? { now: options.now } : {});
    orm = await createOrm(db.url, 4);
    const readyOrm = orm;
    const newTenant = async (name = "tenant") => {
      const created = await createTenantWithAdminKey(readyOrm.em.fork(), { id: randomUUID(), name });
      return { tenantId: created.tenantId, keyId: created.keyId, secret: created.secret };
    };
    const admin = await newTenant("test tenant");
    const url = started.apiUrl!;
    const running = started;
    return {
      url,
      databaseUrl: db.url,
      orm,
      admin,
      newTenant,
      client(service, auth = admin, protocol = "connect-json") {
        const headers: Record<string, string> = "keyId" in auth ? { apikey: String(auth.keyId), secretkey: String(auth.secret) } : auth;
        const withHeaders: Interceptor = (next) => (req) => {
          for (const [k, v] of Object.entries(headers)) req.header.set(k, v);
          return next(req);
        };
        const common = { baseUrl: url, interceptors: [withHeaders] };
        const transport =
          protocol === "grpc"
            ? createGrpcTransport({ ...common })
            : protocol === "grpc-web"
              ? createGrpcWebTransport({ ...common, httpVersion: "1.1" })
              : createConnectTransport({ ...common, httpVersion: "1.1", useBinaryFormat: protocol === "connect-binary", useHttpGet: true });
        return createClient(service, transport);
      },
      async close() {
        await running.stop();
        await readyOrm.close();
        await dropOwn();
      },
    };
  } catch (error) {
    await started?.stop();
    await orm?.close();
    await dropOwn();
    throw error;
  }
}
