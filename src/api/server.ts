// One port, every protocol: gRPC, gRPC-Web and Connect (JSON and binary, GET for NO_SIDE_EFFECTS methods) over
// HTTP/2 — cleartext with prior knowledge, as gRPC clients speak it — and HTTP/1.1 for browsers and curl.
// Plain /healthz (process alive) and /readyz (dependencies answer) sit beside them for load balancers, the
// browser widget's script at /widget/, and — when enabled — the /demo page. Browser pages on other origins get
// CORS grants as src/api/cors.ts decides.
//
// Node's cleartext HTTP/2 server cannot downgrade to HTTP/1.1 (allowHTTP1 needs TLS and ALPN), so a plain TCP
// listener reads the first bytes of each connection and hands it to HTTP/2 or the HTTP/1.1 server: an HTTP/2
// client always opens with the fixed preface "PRI * HTTP/2.0". HTTP/2 connections are framed by h2/connection.ts,
// which answers plain unary gRPC calls itself and relays every other stream to Node's HTTP/2 server.
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import http from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo, type Socket } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DescService } from "@bufbuild/protobuf";
import { createRegistry, type DescFile } from "@bufbuild/protobuf";
import type { ConnectRouter, Interceptor, ServiceImpl, ContextValues, ServiceImplSpec } from "@connectrpc/connect";
import { createConnectRouter, createContextValues, createServiceImplSpec } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { Code, ConnectError } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { guardHandler, strictJsonOptions, type RequestGuardOptions } from "./request-guard.ts";
import { createGrpcUnary, type UnaryMethodSpec } from "./grpc-unary.ts";
import { Http2Connection } from "./h2/connection.ts";
import { presizeBinaryWriters } from "./binary-writer-capacity.ts";
import { Health, file_grpc_health_v1_health } from "../gen/grpc/health/v1/health_pb.js";
import { file_google_rpc_error_details } from "../gen/google/rpc/error_details_pb.js";
import * as reflectionV1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import * as reflectionV1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { createHealthService, createHealthState } from "./services/health.service.ts";
import { createReflectionAnswerer, createReflectionServices } from "./services/reflection.service.ts";
import type { Logger } from "../observability/logger.ts";
import { DEMO_PAGE } from "./demo/demo-page.ts";
import type { DemoAccess } from "./demo/demo-access.ts";
import { vouchedPrincipalKey } from "./context.ts";
import { isSameOrigin, type CorsPolicy } from "./cors.ts";

type NodeServerRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeServerResponse = http.ServerResponse | http2.Http2ServerResponse;

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** The built widget (web/, bundled by the widget's build) that /widget/ serves. */
const DEFAULT_WIDGET_DIR = fileURLToPath(new URL("../../web/dist/", import.meta.url));
const WIDGET_FILE = /^\/widget\/([a-z0-9][a-z0-9.-]*\.js(?:\.map)?)(?:\?.*)?$/;

/**
 * How long an idle HTTP/1.1 keep-alive connection stays open (Node's default is 5 s). A client that reuses a
 * connection just as the server closes it gets ECONNRESET for a request that was never read; clients and load
 * balancers keep idle connections for up to a minute (60 s is the common balancer default), so the server waits
 * longer than they do and the close comes from their side.
 */
export const IDLE_HTTP1_CONNECTION_MS = 65_000;

/** Where a client on this machine reaches an API bound to `host` (a wildcard address means loopback). */
export function clientUrl(host: string, port: number): string {
  const reachable = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host;
  return `http://${reachable.includes(":") ? `[${reachable}]` : reachable}:${port}`;
}

export interface ServiceRegistration {
  readonly service: DescService;
  readonly register: (router: ConnectRouter) => void;
  /** The implementation per method, as connect's router holds it (the unary gRPC path calls the same functions). */
  readonly spec: ServiceImplSpec;
}

/** Pairs a service with its implementation while the types still line up; the list itself is heterogeneous. */
export function serviceRegistration<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceRegistration {
  return { service, register: (router) => router.service(service, impl), spec: createServiceImplSpec(service, impl) };
}

export interface ApiServerOptions {
  readonly logger: Logger;
  readonly services: readonly ServiceRegistration[];
  readonly interceptors?: readonly Interceptor[];
  readonly contextValues?: (req: NodeServerRequest) => ContextValues;
  readonly maxRequestBytes: number;
  /** Readiness of dependencies (database reachable); /readyz and gRPC health report it. */
  readonly checkReady: () => Promise<boolean>;
  readonly shutdownGraceMs: number;
  /**
   * Answer plain unary gRPC calls over HTTP/2 through connect's unary machinery directly (grpc-unary.ts) instead
   * of connect-node's generic pipeline, on HTTP/2 connections framed here (h2/connection.ts). Default true; false
   * serves HTTP/2 with Node's own and sends every call through connect-node.
   */
  readonly grpcUnaryPath?: boolean;
  /**
   * Drop unknown fields of JSON requests instead of refusing them with INVALID_ARGUMENT (ProtoJSON's default).
   * For rolling upgrades, while newer clients may send fields this server does not know yet. Default false.
   */
  readonly ignoreUnknownJsonFields?: boolean;
  /** CORS grants for browser pages on other origins; none when absent. */
  readonly cors?: CorsPolicy;
  /** The /demo page and its operator panel's route; when absent, /demo is 404. */
  readonly demo?: DemoAccess;
  /** Where /widget/ files are read from (default web/dist of this checkout). */
  readonly widgetDir?: string;
}

export interface ApiServer {
  /** `reusePort`: SO_REUSEPORT, so other Kindling API processes on this host can bind the same port. */
  listen(port: number, host: string, reusePort?: boolean): Promise<{ port: number; url: string }>;
  /** Stops accepting, drains in-flight requests up to the grace period, then closes what is left. */
  close(): Promise<void>;
}

export function createApiServer(options: ApiServerOptions): ApiServer {
  presizeBinaryWriters();
  const { logger } = options;
  const health = createHealthState();
  const shutdown = new AbortController();
  const kindlingNames = options.services.map((s) => s.service.typeName);
  const reflectionNames = [reflectionV1.ServerReflection.typeName, reflectionV1alpha.ServerReflection.typeName];
  const allNames = [...kindlingNames, Health.typeName, ...reflectionNames];
  const files: DescFile[] = [
    ...options.services.map((s) => s.service.file),
    file_grpc_health_v1_health,
    reflectionV1.file_grpc_reflection_v1_reflection,
    reflectionV1alpha.file_grpc_reflection_v1alpha_reflection,
    // The error details Kindling sends (ErrorInfo, BadRequest, RetryInfo), so that grpcurl can decode them.
    file_google_rpc_error_details,
  ];
  const reflection = createReflectionServices(createReflectionAnswerer(createRegistry(...files), files, allNames));

  const registrations: ServiceRegistration[] = [
    ...options.services,
    serviceRegistration(Health, createHealthService(health, kindlingNames)),
    serviceRegistration(reflectionV1.ServerReflection, reflection.v1),
    serviceRegistration(reflectionV1alpha.ServerReflection, reflection.v1alpha),
  ];
  const routes = (router: ConnectRouter) => {
    for (const registration of registrations) registration.register(router);
  };

  // Requests of the demo's operator panel, rewritten to their API path; their calls act as the demo tenant.
  const demoRequests = new WeakSet<NodeServerRequest>();
  const demo = options.demo;
  const baseValues = options.contextValues;
  const contextValues = demo
    ? (req: NodeServerRequest) => {
        const values = baseValues?.(req) ?? createContextValues();
        if (demoRequests.has(req)) values.set(vouchedPrincipalKey, demo.principal);
        return values;
      }
    : baseValues;

  // The same options for connect-node's adapter and for the router the unary gRPC path replays odd bodies into.
  const guard: RequestGuardOptions = { maxRequestBytes: options.maxRequestBytes, ignoreUnknownJsonFields: options.ignoreUnknownJsonFields ?? false };
  const connectOptions = {
    interceptors: [...(options.interceptors ?? [])],
    readMaxBytes: options.maxRequestBytes,
    jsonOptions: strictJsonOptions(guard),
    shutdownSignal: shutdown.signal,
    acceptCompression: [compressionGzip, compressionBrotli],
    compressMinBytes: 1024,
    ...(contextValues ? { contextValues } : {}),
  };
  // One router for both: the adapter below and the unary gRPC path, which replays odd bodies into the same handlers.
  const connectHandlers = connectHandlersByPath(connectOptions, routes, guard);
  const connectHandler = nodeAdapter(connectHandlers, contextValues, logger);
  // The unary path answers on the stream and has no Node request to give `contextValues`: a server given them
  // serves every call through connect-node, which does.
  const grpcUnary = options.grpcUnaryPath === false || baseValues !== undefined ? undefined : createGrpcUnary({
    methods: unaryMethods(registrations),
    connectHandlers,
    interceptors: connectOptions.interceptors,
    acceptCompression: connectOptions.acceptCompression,
    compressMinBytes: connectOptions.compressMinBytes,
    readMaxBytes: options.maxRequestBytes,
    shutdownSignal: shutdown.signal,
    onError: (error, path) => logger.warn({ error: error instanceof Error ? error.message : String(error), path }, "unary gRPC call failed outside its handler"),
  });

  const handle = (req: NodeServerRequest, res: NodeServerResponse) => {
    if (req.url === "/healthz") {
      sendJson(res, 200, { status: "ok" });
      return;
    }
    const url = req.url ?? "";
    if (url.startsWith("/widget/")) {
      void serveWidget(req, res);
      return;
    }
    if (url === "/demo" || url === "/" || url.startsWith("/demo/")) {
      if (!demo) {
        sendText(res, 404, "Not found. The demo page is off: set KINDLING_DEMO=true to enable it (a development aid).\n");
        return;
      }
      if (url === "/demo" || url === "/") {
        const r = res as http.ServerResponse;
        r.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" });
        r.end(DEMO_PAGE);
        return;
      }
      const apiPath = demo.apiPath(url);
      if (apiPath === undefined) {
        sendText(res, 404, "Not found: the demo panel may not call this.\n");
        return;
      }
      req.url = apiPath;
      demoRequests.add(req);
      connectHandler(req, res);
      return;
    }
    if (req.url === "/readyz") {
      void options.checkReady().then(
        (ready) => {
          const ok = ready && health.isServing();
          sendJson(res, ok ? 200 : 503, { status: ok ? "ready" : "not_ready" });
        },
        () => sendJson(res, 503, { status: "not_ready" }),
      );
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && options.cors && !isSameOrigin(origin, hostOf(req))) {
      const r = res as http.ServerResponse;
      if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
        r.writeHead(204, options.cors.preflight(origin));
        r.end();
        return;
      }
      for (const [name, value] of Object.entries(options.cors.actual(origin, nodeHeaderReader(req)))) r.setHeader(name, value);
    } else if (req.method === "GET") {
      // A cacheable read answers differently per Origin (the grant): caches must key on it.
      (res as http.ServerResponse).setHeader("vary", "Origin");
    }
    connectHandler(req, res);
  };

  // The widget's files: read once and kept while their modification time stays, revalidated by ETag. Public,
  // readable from any origin (a module script on another origin needs a CORS grant), cached briefly since the
  // path is stable across versions.
  const widgetDir = options.widgetDir ?? DEFAULT_WIDGET_DIR;
  const widgetFiles = new Map<string, { mtimeMs: number; size: number; body: Buffer; etag: string }>();
  async function serveWidget(req: NodeServerRequest, res: NodeServerResponse): Promise<void> {
    const r = res as http.ServerResponse;
    const name = WIDGET_FILE.exec(req.url ?? "")?.[1];
    if (!name || (req.method !== "GET" && req.method !== "HEAD")) {
      sendText(res, 404, "Not found.\n");
      return;
    }
    const path = join(widgetDir, name);
    let file = widgetFiles.get(name);
    try {
      const info = await stat(path);
      if (!file || file.mtimeMs !== info.mtimeMs || file.size !== info.size) {
        const body = await readFile(path);
        file = { mtimeMs: info.mtimeMs, size: info.size, body, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` };
        widgetFiles.set(name, file);
      }
    } catch {
      widgetFiles.delete(name);
      sendText(res, 404, `Not found: ${name} is not built (${path} is missing). Build the widget from web/ (see the README's browser section).\n`);
      return;
    }
    const headers = {
      "content-type": name.endsWith(".map") ? "application/json; charset=utf-8" : "text/javascript; charset=utf-8",
      "cache-control": "public, max-age=300",
      etag: file.etag,
      "access-control-allow-origin": "*",
      "cross-origin-resource-policy": "cross-origin",
    };
    if (req.headers["if-none-match"] === file.etag) {
      r.writeHead(304, headers);
      r.end();
      return;
    }
    r.writeHead(200, { ...headers, "content-length": String(file.body.length) });
    r.end(req.method === "HEAD" ? undefined : file.body);
  }

  const h2 = http2.createServer({}, handle);
  const h1 = http.createServer({ keepAliveTimeout: IDLE_HTTP1_CONNECTION_MS }, handle);
  // h1 never listens itself (connections are handed to it below), and Node's HTTP server starts tracking its
  // connections on "listening": without it closeIdleConnections() on shutdown finds none (an idle keep-alive
  // client held every shutdown for the whole grace period) and headersTimeout/requestTimeout are not enforced.
  h1.emit("listening");
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<Socket>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  // noDelay: gRPC answers are small HEADERS, DATA and trailer frames written one after another; with Nagle on, the
  // later ones wait for the client's delayed ACK (tens of milliseconds a call). http.createServer sets it on its
  // own sockets; these are accepted here and handed over.
  // With the unary gRPC path on, HTTP/2 connections are framed here (src/api/h2/connection.ts): unary gRPC calls are
  // answered from their frames, every other stream is relayed to `h2`.
  const framed = new Set<Http2Connection>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    sniff(socket, (isHttp2, seen) => {
      if (!isHttp2) {
        h1.emit("connection", socket);
        return true;
      }
      if (!grpcUnary) {
        socket.unshift(seen);
        h2.emit("connection", socket);
        return false;
      }
      const connection = new Http2Connection(socket, { take: (stream, headers) => grpcUnary.handle(stream, headers), relayTo: h2 }, seen);
      framed.add(connection);
      connection.onClose(() => framed.delete(connection));
      return true;
    });
  });

  return {
    async listen(port, host, reusePort = false) {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ port, host, reusePort }, () => {
          server.off("error", reject);
          resolve();
        });
      });
      const address = server.address() as AddressInfo;
      const ready = await options.checkReady().catch(() => false);
      health.set(ready);
      const url = clientUrl(host, address.port);
      logger.info({ url, ready }, "api listening");
      return { port: address.port, url };
    },
    async close() {
      health.set(false);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close();
      for (const connection of framed) connection.close();
      h1.closeIdleConnections();
      h1.close();
      const timer = setTimeout(() => {
        shutdown.abort();
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
      }, options.shutdownGraceMs);
      timer.unref();
      await closed;
      clearTimeout(timer);
      shutdown.abort();
      logger.info("api stopped");
    },
  };
}

/** Every unary method of the registered services, by its gRPC request path. */
function unaryMethods(registrations: readonly ServiceRegistration[]): Map<string, UnaryMethodSpec> {
  const methods = new Map<string, UnaryMethodSpec>();
  for (const { spec } of registrations) {
    for (const m of Object.values(spec.methods)) {
      if (m.kind === "unary") methods.set(`/${spec.service.typeName}/${m.method.name}`, m);
    }
  }
  return methods;
}

/** connect's per-method handlers by request path, each behind the request guard (request-guard.ts). */
function connectHandlersByPath(options: Parameters<typeof createConnectRouter>[0], routes: (router: ConnectRouter) => void, guard: RequestGuardOptions): Map<string, UniversalHandler> {
  const router = createConnectRouter(options);
  routes(router);
  return new Map(router.handlers.map((h) => [h.requestPath, guardHandler(h, guard)]));
}

/** connect-node's adapter (connectNodeAdapter), over handlers of our own: the guarded ones. */
function nodeAdapter(handlers: Map<string, UniversalHandler>, contextValues: ApiServerOptions["contextValues"], logger: Logger) {
  return (req: NodeServerRequest, res: NodeServerResponse) => {
    const handler = handlers.get(req.url?.split("?", 2)[0] ?? "");
    if (!handler) {
      (res as http.ServerResponse).writeHead(404);
      res.end();
      return;
    }
    const uReq = universalRequestFromNodeRequest(req, res, undefined, contextValues?.(req));
    handler(uReq)
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((reason: unknown) => {
        if (ConnectError.from(reason).code === Code.Aborted) return;
        logger.error({ error: reason instanceof Error ? reason.message : String(reason), rpc: handler.requestPath }, "handler failed outside the call");
      });
  };
}

/**
 * Reads until the bytes seen so far either diverge from the HTTP/2 preface or complete it, then hands the socket on
 * with them. `dispatch` answers whether the socket is to flow again: Node's HTTP/2 session reads the native handle
 * itself (and drains what was unshifted), and resuming the JS stream there would race it for bytes; the HTTP/1.1
 * server and the framed connection read through the stream.
 */
function sniff(socket: Socket, dispatch: (isHttp2: boolean, seen: Buffer) => boolean): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, HTTP2_PREFACE.length);
    const matches = seen.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
    if (matches && n < HTTP2_PREFACE.length) return;
    socket.off("data", onData);
    socket.pause();
    if (!matches) socket.unshift(seen);
    if (dispatch(matches, seen)) socket.resume();
  };
  socket.on("data", onData);
}

function sendText(res: NodeServerResponse, status: number, body: string): void {
  const r = res as http.ServerResponse;
  r.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
  r.end(body);
}

/** The request's host as the browser addressed it (HTTP/1.1 Host, HTTP/2 :authority). */
function hostOf(req: NodeServerRequest): string | undefined {
  return "authority" in req ? req.authority : req.headers.host;
}

function nodeHeaderReader(req: NodeServerRequest): { get(name: string): string | null } {
  return {
    get(name) {
      const value = req.headers[name];
      return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
    },
  };
}

function sendJson(res: NodeServerResponse, status: number, body: unknown): void {
  // Both response classes share this surface; TypeScript cannot call a method on the union directly.
  const r = res as http.ServerResponse;
  r.writeHead(status, { "content-type": "application/json" });
  r.end(JSON.stringify(body));
}
