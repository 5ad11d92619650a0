// The benchmark's load generator, in its own thread: a client sharing the server's event loop would take its
// CPU from the server it measures (pgbench, the other side of the ratio, is a separate process too). One gRPC
// `connections` gRPC (HTTP/2) connections, `concurrency` calls in flight for `seconds`, then requests/s and latency
// percentiles.
import { parentPort, workerData } from "node:worker_threads";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import http2 from "node:http2";
import { create, fromBinary, toBinary, type DescMessage, type DescMethodUnary, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ActivityService } from "../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../src/gen/kindling/v1/member_streak_service_pb.js";
import { Health } from "../src/gen/grpc/health/v1/health_pb.js";

export interface LoadJob {
  /** `health`: the gRPC health check, a no-op RPC: the floor the transport alone sets on this machine. */
  readonly kind: "ingest" | "read" | "health";
  readonly apiUrl: string;
  readonly keyId: string;
  readonly secret: string;
  readonly definitionId: string;
  readonly members: number;
  readonly seconds: number;
  readonly concurrency: number;
  /** HTTP/2 connections the calls are spread over, round robin (each connection is served by one API process). */
  readonly connections: number;
  /** `raw`: unary gRPC framed by hand on node:http2 (lean); `connect`: connect-node's gRPC transport. */
  readonly client: "raw" | "connect";
  /** Makes unique identifiers unique across runs. */
  readonly run: string;
}

export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  /** The Go load generator's own CPU per answered call (µs); absent from the JavaScript clients. */
  readonly clientCpuMicrosPerCall?: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function drive(job: LoadJob, call: (i: number) => Promise<unknown>): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let counter = 0;
  const deadline = performance.now() + job.seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (performance.now() < deadline) {
        const i = counter++;
        const t0 = performance.now();
        try {
          await call(i);
          latencies.push(performance.now() - t0);
        } catch (error) {
          errors++;
          if (errors <= 3) console.error("request failed:", (error as Error).message);
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    requests: latencies.length,
    errors,
    perSecond: round(latencies.length / elapsed),
    p50Ms: round(percentile(latencies, 50)),
    p95Ms: round(percentile(latencies, 95)),
    p99Ms: round(percentile(latencies, 99)),
  };
}

/**
 * A lean gRPC client (BENCH_CLIENT=raw, the default): unary calls framed by hand on node:http2 sessions — the
 * request encoded with protobuf-es, the response's grpc-status checked and its message decoded. The same wire
 * protocol any gRPC client speaks, at a fraction of a framework client's CPU, so that on a 2-core machine the load
 * generator takes as little as possible from the server it measures (pgbench's own client is lean C).
 */
interface UnaryClient {
  unary<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>): (i: number, input: MessageInitShape<I>) => Promise<MessageShape<O>>;
  close(): void;
}

function rawClient(job: LoadJob): UnaryClient {
  const sessions = Array.from({ length: Math.max(1, job.connections) }, () =>
    // A session error (reset connection) fails the calls on it, which count as errors; it must not crash the run.
    http2.connect(job.apiUrl).on("error", (error: Error) => console.error("http2 session failed:", error.message)),
  );
  const unary = <I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>) => {
    const path = `/${method.parent.typeName}/${method.name}`;
    return (i: number, input: MessageInitShape<I>): Promise<MessageShape<O>> =>
      new Promise((resolve, reject) => {
        const payload = toBinary(method.input, create(method.input, input));
        const frame = Buffer.alloc(5 + payload.length);
        frame.writeUInt32BE(payload.length, 1);
        frame.set(payload, 5);
        const stream = sessions[i % sessions.length]!.request({
          ":method": "POST", ":path": path, "content-type": "application/grpc+proto", te: "trailers", apikey: job.keyId, secretkey: job.secret,
        });
        const chunks: Buffer[] = [];
        let status: string | undefined;
        let message = "";
        const take = (h: http2.IncomingHttpHeaders) => {
          if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
          if (h["grpc-message"] !== undefined) message = decodeURIComponent(String(h["grpc-message"]));
        };
        stream.on("response", take);
        stream.on("trailers", take);
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("error", reject);
        stream.on("end", () => {
          if (status !== "0") return reject(new Error(`grpc-status ${status}: ${message}`));
          const body = Buffer.concat(chunks);
          if (body.length < 5) return reject(new Error(`grpc-status 0 without a response message (${body.length} bytes)`));
          resolve(fromBinary(method.output, body.subarray(5, 5 + body.readUInt32BE(1))));
        });
        stream.end(frame);
      });
  };
  return { unary, close: () => sessions.forEach((s) => s.close()) };
}

function activity(job: LoadJob, i: number) {
  return {
    memberRef: { case: "memberExternalId" as const, value: `m${(i * 7919) % job.members}` },
    target: { case: "eventType" as const, value: "purchase" },
    occurTime: timestampFromMs(Date.now()),
    value: 5,
    uniqueIdentifier: `${job.run}-${i}`,
  };
}

/** connect-node's gRPC transport (BENCH_CLIENT=connect), with the same `unary` shape as rawClient. */
function connectClient(job: LoadJob): UnaryClient {
  const transports = Array.from({ length: Math.max(1, job.connections) }, () =>
    createGrpcTransport({
      baseUrl: job.apiUrl,
      interceptors: [(next) => (req) => (req.header.set("apikey", job.keyId), req.header.set("secretkey", job.secret), next(req))],
    }),
  );
  const unary = <I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>) => {
    const calls = transports.map(
      (t) => (createClient(method.parent, t) as unknown as Record<string, (input: MessageInitShape<I>) => Promise<MessageShape<O>>>)[method.localName]!,
    );
    return (i: number, input: MessageInitShape<I>) => calls[i % calls.length]!(input);
  };
  return { unary, close: () => undefined };
}

async function main(job: LoadJob): Promise<LoadResult> {
  const client = job.client === "raw" ? rawClient(job) : connectClient(job);
  try {
    if (job.kind === "ingest") {
      const record = client.unary(ActivityService.method.recordActivity);
      return await drive(job, (i) => record(i, { activity: activity(job, i) }));
    }
    if (job.kind === "health") {
      const check = client.unary(Health.method.check);
      return await drive(job, (i) => check(i, { service: "" }));
    }
    const read = client.unary(MemberStreakService.method.getMemberStreak);
    return await drive(job, (i) => read(i, { memberExternalId: `m${(i * 104729) % job.members}`, definitionId: job.definitionId }));
  } finally {
    client.close();
  }
}

if (parentPort) {
  const port = parentPort;
  main(workerData as LoadJob).then(
    (result) => port.postMessage(result),
    (error: unknown) => {
      throw error;
    },
  );
}
