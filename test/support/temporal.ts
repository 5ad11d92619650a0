// Temporal for integration tests.
//
// Two kinds, on purpose: the run's shared dev server (global-setup.ts) for tests that exercise real server
// behaviour (visibility, search attributes, persistence), each file on a task queue of its own so parallel files
// never steal each other's tasks; and a time-skipping test server per file for tests whose workflows wait on
// timers (days pass in milliseconds, and skipping time is server-wide, so it cannot be shared).
import { randomBytes } from "node:crypto";
import { Client, Connection } from "@temporalio/client";
import { TestWorkflowEnvironment } from "@temporalio/testing";
import { NativeConnection } from "@temporalio/worker";
import { inject } from "vitest";

export async function createTimeSkippingEnvironment(): Promise<TestWorkflowEnvironment> {
  return await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: "existing-path", path: inject("temporalTestServerPath") } },
  });
}

export interface SharedTemporal {
  address: string;
  namespace: string;
  // Unique to this call: give it to the Worker and to every workflow start.
  taskQueue: string;
  client: Client;
  // For Worker.create({ connection }).
  nativeConnection: NativeConnection;
  close(): Promise<void>;
}

export async function connectToSharedTemporal(label = "test"): Promise<SharedTemporal> {
  const address = inject("temporalAddress");
  const namespace = inject("temporalNamespace");
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  return {
    address,
    namespace,
    taskQueue: uniqueTaskQueue(label),
    client: new Client({ connection, namespace }),
    nativeConnection,
    close: async () => {
      await Promise.all([connection.close(), nativeConnection.close()]);
    },
  };
}

export function uniqueTaskQueue(label: string): string {
  return `${label}-${randomBytes(5).toString("hex")}`;
}
