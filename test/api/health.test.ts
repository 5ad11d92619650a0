// Probes and tooling: gRPC health (what Kubernetes and grpc_health_probe ask), server reflection (what grpcurl
// uses), and the plain HTTP /healthz and /readyz endpoints.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
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

  // grpcurl decodes error details through reflection: "google.rpc.ErrorInfo is not recognized" otherwise. Asked
  // the way grpcurl asks, by a grpc-js client of the reflection service built from its .proto file.
  it("reflection/serves_the_descriptors_of_the_error_details_kindling_sends", async () => {
    const root = join(import.meta.dirname, "..", "..", "proto", "vendor");
    const definition = protoLoader.loadSync("grpc/reflection/v1/reflection.proto", { includeDirs: [root], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- proto-loader yields untyped constructors
    const pkg = grpc.loadPackageDefinition(definition) as any;
    const client = new pkg.grpc.reflection.v1.ServerReflection(new URL(api.url).host, grpc.credentials.createInsecure());
    const call = client.ServerReflectionInfo() as grpc.ClientDuplexStream<unknown, { file_descriptor_response?: { file_descriptor_proto: Buffer[] }; error_response?: { error_message: string } }>;
    const answers: { file_descriptor_response?: { file_descriptor_proto: Buffer[] }; error_response?: { error_message: string } }[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (answer) => answers.push(answer));
      call.on("end", resolve);
      call.on("error", reject);
    });
    const symbols = ["google.rpc.ErrorInfo", "google.rpc.BadRequest", "google.rpc.RetryInfo"];
    for (const symbol of symbols) call.write({ file_containing_symbol: symbol });
    call.write({ file_by_filename: "google/rpc/error_details.proto" });
    call.end();
    await done;
    client.close();
    expect(answers).toHaveLength(4);
    for (const [i, answer] of answers.entries()) {
      expect(answer.error_response, symbols[i] ?? "error_details.proto").toBeUndefined();
      const files = answer.file_descriptor_response!.file_descriptor_proto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
      expect(files[0]!.name).toBe("google/rpc/error_details.proto");
      expect(files[0]!.messageType.map((m) => m.name)).toEqual(expect.arrayContaining(["ErrorInfo", "BadRequest", "RetryInfo"]));
    }
  });
});
