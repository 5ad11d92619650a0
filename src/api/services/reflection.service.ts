// gRPC server reflection (v1 and the v1alpha that older grpcurl builds ask for) answered from the descriptors that
// protoc-gen-es embedded in src/gen, so grpcurl can list and call Kindling without local .proto files.
import { create, toBinary, type DescFile, type Registry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** Both protocol versions have identical shapes; one implementation serves both through this structural type. */
interface ReflectionRequest {
  host: string;
  messageRequest:
    | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: undefined; value?: undefined };
}

type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

const NOT_FOUND = 5;

function withDependencies(file: DescFile): Uint8Array[] {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  const visit = (f: DescFile) => {
    if (seen.has(f.name)) return;
    seen.add(f.name);
    out.push(toBinary(FileDescriptorProtoSchema, f.proto));
    for (const dep of f.dependencies) visit(dep);
  };
  visit(file);
  return out;
}

export function createReflectionAnswerer(registry: Registry, files: readonly DescFile[], serviceNames: readonly string[]) {
  const byName = new Map<string, DescFile>();
  const index = (f: DescFile) => {
    if (byName.has(f.proto.name)) return;
    byName.set(f.proto.name, f);
    f.dependencies.forEach(index);
  };
  files.forEach(index);

  const notFound = (what: string): Answer => ({ case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` } });

  return (request: ReflectionRequest): Answer => {
    const r = request.messageRequest;
    switch (r.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: serviceNames.map((name) => ({ name })) } };
      case "fileByFilename": {
        const file = byName.get(r.value);
        return file ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: withDependencies(file) } } : notFound(`file ${r.value}`);
      }
      case "fileContainingSymbol": {
        const symbol = r.value.replace(/^\./, "");
        const desc = registry.get(symbol) ?? registry.get(symbol.slice(0, Math.max(0, symbol.lastIndexOf("."))));
        if (desc === undefined) return notFound(`symbol ${symbol}`);
        return { case: "fileDescriptorResponse", value: { fileDescriptorProto: withDependencies(desc.file) } };
      }
      case "fileContainingExtension": {
        const ext = registry.getExtensionFor(
          registry.getMessage(r.value.containingType) ?? ({ typeName: r.value.containingType } as never),
          r.value.extensionNumber,
        );
        return ext ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: withDependencies(ext.file) } } : notFound("extension");
      }
      case "allExtensionNumbersOfType": {
        const numbers: number[] = [];
        for (const d of registry) if (d.kind === "extension" && d.extendee.typeName === r.value) numbers.push(d.number);
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: numbers } };
      }
      default:
        return { case: "errorResponse", value: { errorCode: 3, errorMessage: "empty reflection request" } };
    }
  };
}

export function createReflectionServices(answer: ReturnType<typeof createReflectionAnswerer>) {
  const v1Impl: ServiceImpl<typeof v1.ServerReflection> = {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        yield create(v1.ServerReflectionResponseSchema, { validHost: request.host, originalRequest: request, messageResponse: answer(request) });
      }
    },
  };
  const v1alphaImpl: ServiceImpl<typeof v1alpha.ServerReflection> = {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        yield create(v1alpha.ServerReflectionResponseSchema, { validHost: request.host, originalRequest: request, messageResponse: answer(request) });
      }
    },
  };
  return { v1: v1Impl, v1alpha: v1alphaImpl };
}
