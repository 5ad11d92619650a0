// The benchmark's load generator, in its own thread: a client sharing the server's event loop would take its
// CPU from the server it measures (pgbench, the other side of the ratio, is a separate process too). One gRPC
// `connections` gRPC (HTTP/2) connections, `concurrency` calls in flight for `seconds`, then requests/s and latency
// percentiles.
import { parentPort, workerData } from "node:worker_threads";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";
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

async function main(job: LoadJob): Promise<LoadResult> {
  const transports = Array.from({ length: Math.max(1, job.connections) }, () =>
    createGrpcTransport({
      baseUrl: job.apiUrl,
      interceptors: [(next) => (req) => (req.header.set("apikey", job.keyId), req.header.set("secretkey", job.secret), next(req))],
    }),
  );
  const on = <S extends DescService>(service: S) => transports.map((t) => createClient(service, t));
  const pick = <T>(clients: readonly T[], i: number): T => clients[i % clients.length]!;
  if (job.kind === "ingest") {
    const activities = on(ActivityService);
    return drive(job, (i) =>
      pick(activities, i).recordActivity({
        activity: {
          memberRef: { case: "memberExternalId", value: `m${(i * 7919) % job.members}` },
          target: { case: "eventType", value: "purchase" },
          occurTime: timestampFromMs(Date.now()),
          value: 5,
          uniqueIdentifier: `${job.run}-${i}`,
        },
      }),
    );
  }
  if (job.kind === "health") {
    const health = on(Health);
    return drive(job, (i) => pick(health, i).check({ service: "" }));
  }
  const streaks = on(MemberStreakService);
  return drive(job, (i) => pick(streaks, i).getMemberStreak({ memberExternalId: `m${(i * 104729) % job.members}`, definitionId: job.definitionId }));
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
