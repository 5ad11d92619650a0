// Probes and tooling: gRPC health (what Kubernetes and grpc_health_probe ask), server reflection (what grpcurl
// uses), and the plain HTTP /healthz and /readyz endpoints.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { create, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Health, HealthCheckResponse_ServingStatus } from "../../src/gen/grpc/health/v1/health_pb.js";
import { ServerReflection, ServerReflectionRequestSchema } from "../../src/gen/grpc/reflection/v1/reflection_pb.js";
import { startTestApi, type TestApi } from "../support/api.ts";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ label: "health", env: { KINDLING_DEMO: "true" } });
});
afterAll(async () => {
  await api?.close();
});

describe("health and reflection", () => {
  it("health/grpc_check_reports_serving_for_server_and_services", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: api.url }));
    expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await health.check({ service: "kindling.v1.ActivityService" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    await expect(health.check({ service: "no.such.Service" })).rejects.toThrow(/unknown service/);
  });

  it("health/http_probes_answer", async () => {
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${api.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });
  });

  it("demo/page_is_served_and_calls_connect_endpoints", async () => {
    const res = await fetch(`${api.url}/demo`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain("/kindling.v1.");
    expect(html).toContain("RecordActivity");
  });

  it("reflection/lists_services_and_describes_a_symbol_with_dependencies", async () => {
    const reflection = createClient(ServerReflection, createGrpcTransport({ baseUrl: api.url }));
    async function* requests() {
      yield create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } });
      yield create(ServerReflectionRequestSchema, { messageRequest: { case: "fileContainingSymbol", value: "kindling.v1.ActivityService" } });
    }
    const answers = [];
    for await (const answer of reflection.serverReflectionInfo(requests())) answers.push(answer);
    const listed = answers[0]!.messageResponse;
    expect(listed.case).toBe("listServicesResponse");
    const names = listed.case === "listServicesResponse" ? listed.value.service.map((s) => s.name) : [];
    expect(names).toEqual(expect.arrayContaining(["kindling.v1.ActivityService", "kindling.v1.MemberStreakService", "grpc.health.v1.Health"]));
    const files = answers[1]!.messageResponse;
    expect(files.case).toBe("fileDescriptorResponse");
    const fileNames = files.case === "fileDescriptorResponse" ? files.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name) : [];
    expect(fileNames[0]).toBe("kindling/v1/activity_service.proto");
    expect(fileNames).toEqual(expect.arrayContaining(["kindling/v1/activity.proto", "buf/validate/validate.proto", "google/protobuf/timestamp.proto"]));
  });
});
