// Interoperability: the same server answers a plain @grpc/grpc-js client (stubs loaded at run time from the same
// .proto files, as an internal service in another stack would), Connect over HTTP/1.1 with JSON — including GET
// for NO_SIDE_EFFECTS methods, as a browser cache would use — Connect binary, and gRPC-Web. Each records an
// activity and reads progress back.
import http from "node:http";
import type { Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { CalendarPeriod, ConditionType } from "../../src/gen/kindling/v1/definition_pb.js";
import { createApiServer, IDLE_HTTP1_CONNECTION_MS } from "../../src/api/server.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { startTestApi, type Protocol, type TestApi } from "../support/api.ts";

let api: TestApi;
let definitionId: string;

beforeAll(async () => {
  api = await startTestApi({ label: "interop" });
  const defs = api.client(DefinitionService);
  const { definition } = await defs.createDefinition({
    definition: {
      name: "Interop daily",
      eventTypes: ["interop.event"],
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "Europe/Paris", resetTime: "04:00" } } },
      condition: { type: ConditionType.COUNT, min: 1 },
    },
  });
  definitionId = definition!.id;
  await defs.publishDefinition({ definitionId });
});
afterAll(async () => {
  await api?.close();
});

describe("Connect, gRPC and gRPC-Web clients", () => {
  it.each<Protocol>(["connect-json", "connect-binary", "grpc", "grpc-web"])("interop/%s_records_and_reads", async (protocol) => {
    const member = `member-${protocol}`;
    const activities = api.client(ActivityService, api.admin, protocol);
    const recorded = await activities.recordActivity({
      activity: { memberRef: { case: "memberExternalId", value: member }, target: { case: "eventType", value: "interop.event" }, occurTime: timestampFromMs(Date.now()), uniqueIdentifier: `${protocol}-1` },
    });
    expect(recorded.results[0]?.applied).toBe(true);
    const { streak } = await api.client(MemberStreakService, api.admin, protocol).getMemberStreak({ memberExternalId: member, definitionId });
    expect(streak?.currentCount).toBe(1);
    expect(streak?.currentWindowSatisfied).toBe(true);
  });

  it("interop/connect_get_for_no_side_effects_methods", async () => {
    const message = encodeURIComponent(JSON.stringify({ definitionId }));
    const res = await fetch(`${api.url}/kindling.v1.DefinitionService/GetDefinition?connect=v1&encoding=json&message=${message}`, {
      headers: { apikey: api.admin.keyId, secretkey: api.admin.secret },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { definition: { id: string; name: string } };
    expect(body.definition).toMatchObject({ id: definitionId, name: "Interop daily" });
    // A method with side effects is not reachable by GET.
    const post = await fetch(`${api.url}/kindling.v1.DefinitionService/PublishDefinition?connect=v1&encoding=json&message=${message}`, {
      headers: { apikey: api.admin.keyId, secretkey: api.admin.secret },
    });
    expect(post.status).toBe(405);
  });

  it("interop/http1_keep_alive_connection_outlives_a_client_idle_for_more_than_node_default", async () => {
    // A client idle for 7.5 s (Node's own server default closes after 5 s, plus a 1 s margin) reuses its connection: the server keeps it
    // open (IDLE_HTTP1_CONNECTION_MS) and says so, so a close cannot race the client's next request.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const message = encodeURIComponent(JSON.stringify({ definitionId }));
    const get = () => new Promise<{ status: number; reused: boolean; keepAlive: string }>((resolve, reject) => {
      const req = http.get(`${api.url}/kindling.v1.DefinitionService/GetDefinition?connect=v1&encoding=json&message=${message}`,
        { agent, headers: { apikey: api.admin.keyId, secretkey: api.admin.secret } }, (res) => {
          res.resume();
          res.once("end", () => resolve({ status: res.statusCode!, reused: req.reusedSocket, keepAlive: String(res.headers["keep-alive"]) }));
        });
      req.once("error", reject);
    });
    try {
      const first = await get();
      expect(first).toEqual({ status: 200, reused: false, keepAlive: `timeout=${IDLE_HTTP1_CONNECTION_MS / 1000}` });
      await new Promise((resolve) => setTimeout(resolve, 7_500));
      expect(await get()).toMatchObject({ status: 200, reused: true });
    } finally {
      agent.destroy();
    }
  }, 20_000);

  it("interop/shutdown_closes_idle_http1_keep_alive_connections_at_once", async () => {
    // An idle keep-alive connection holds no request: shutdown closes it at once instead of waiting out the grace
    // period (here ten minutes, beyond this test's timeout) or the 65 s idle timeout.
    const server = createApiServer({ logger: createLogger("silent"), services: [], maxRequestBytes: 1 << 20, checkReady: async () => true, shutdownGraceMs: 600_000 });
    const { url } = await server.listen(0, "127.0.0.1");
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const socket = await new Promise<Socket>((resolve, reject) => {
        const req = http.get(`${url}/no-such-path`, { agent }, (res) => {
          res.resume();
          res.once("end", () => resolve(req.socket!));
        });
        req.once("error", reject);
      });
      const socketClosed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      await server.close();
      await socketClosed;
    } finally {
      agent.destroy();
    }
  }, 20_000);

  it("interop/grpc_js_client_from_proto_files", async () => {
    const root = join(import.meta.dirname, "..", "..", "proto");
    const definition = protoLoader.loadSync(["kindling/v1/activity_service.proto", "kindling/v1/member_streak_service.proto"], {
      includeDirs: [root, join(root, "vendor")],
      keepCase: false,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- proto-loader yields untyped constructors
    const pkg = grpc.loadPackageDefinition(definition) as any;
    const address = new URL(api.url).host;
    const metadata = new grpc.Metadata();
    metadata.set("apikey", api.admin.keyId);
    metadata.set("secretkey", api.admin.secret);
    const activityClient = new pkg.kindling.v1.ActivityService(address, grpc.credentials.createInsecure());
    const streakClient = new pkg.kindling.v1.MemberStreakService(address, grpc.credentials.createInsecure());
    const call = <T>(client: Record<string, (...args: unknown[]) => unknown>, method: string, request: unknown) =>
      new Promise<T>((resolve, reject) => {
        client[method]!.call(client, request, metadata, (error: grpc.ServiceError | null, response: T) => (error ? reject(error) : resolve(response)));
      });
    const now = Date.now();
    const recorded = await call<{ results: { applied: boolean; currentStreak: number }[] }>(activityClient, "recordActivity", {
      activity: {
        memberExternalId: "grpc-js-member",
        eventType: "interop.event",
        occurTime: { seconds: String(Math.floor(now / 1000)), nanos: 0 },
        uniqueIdentifier: "grpc-js-1",
      },
    });
    expect(recorded.results[0]).toMatchObject({ applied: true, currentStreak: 1 });
    const read = await call<{ streak: { currentCount: number; state: string } }>(streakClient, "getMemberStreak", { memberExternalId: "grpc-js-member", definitionId });
    expect(read.streak).toMatchObject({ currentCount: 1, state: "MEMBER_STREAK_STATE_IN_PROGRESS" });
    const missing = await call(streakClient, "getMemberStreak", { memberExternalId: "nobody", definitionId }).catch((e: grpc.ServiceError) => e);
    expect((missing as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
    activityClient.close();
    streakClient.close();
  });
});
