// grpc.health.v1: the status Kubernetes gRPC probes, grpc_health_probe and grpcurl ask for. "" is the whole server;
// each Kindling service name answers the same, since they share one process and one database.
import type { ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { Health, HealthCheckResponse_ServingStatus as Status, HealthCheckResponseSchema } from "../../gen/grpc/health/v1/health_pb.js";
import { ConnectError, Code } from "@connectrpc/connect";

export interface HealthState {
  /** True once dependencies answered; false while draining on shutdown. */
  isServing(): boolean;
  /** Resolves when the serving state may have changed. */
  changed(signal: AbortSignal): Promise<void>;
}

export function createHealthState(): HealthState & { set(serving: boolean): void } {
  let serving = false;
  let waiters: (() => void)[] = [];
  return {
    isServing: () => serving,
    set(next) {
      if (next === serving) return;
      serving = next;
      const toWake = waiters;
      waiters = [];
      for (const wake of toWake) wake();
    },
    changed(signal) {
      return new Promise<void>((resolve) => {
        const wake = () => {
          signal.removeEventListener("abort", wake);
          resolve();
        };
        waiters.push(wake);
        signal.addEventListener("abort", wake, { once: true });
      });
    },
  };
}

export function createHealthService(state: HealthState, serviceNames: readonly string[]): ServiceImpl<typeof Health> {
  const known = new Set(["", ...serviceNames]);
  const status = () => (state.isServing() ? Status.SERVING : Status.NOT_SERVING);
  return {
    check(request) {
      if (!known.has(request.service)) throw new ConnectError(`unknown service "${request.service}"`, Code.NotFound);
      return create(HealthCheckResponseSchema, { status: status() });
    },
    async *watch(request, context) {
      if (!known.has(request.service)) {
        yield create(HealthCheckResponseSchema, { status: Status.SERVICE_UNKNOWN });
        return;
      }
      let last: Status | undefined;
      while (!context.signal.aborted) {
        const current = status();
        if (current !== last) {
          last = current;
          yield create(HealthCheckResponseSchema, { status: current });
        }
        await state.changed(context.signal);
      }
    },
  };
}
