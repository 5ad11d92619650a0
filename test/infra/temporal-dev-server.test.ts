import { mkdtemp, open, rm, stat } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Connection, Client, WorkflowNotFoundError } from "@temporalio/client";
import { defineSearchAttributeKey, SearchAttributeType } from "@temporalio/common";
import { Worker } from "@temporalio/worker";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PortInUseError } from "../../src/infra/free-port.ts";
import { resolveTemporalCli } from "../../src/infra/temporal-binaries.ts";
import { startTemporalDevServer } from "../../src/infra/temporal-dev-server.ts";
import { KINDLING_SEARCH_ATTRIBUTES, KINDLING_SUMMARY, KINDLING_TENANT_ID } from "../../src/workflows/search-attributes.ts";
import { connectToSharedTemporal, type SharedTemporal } from "../support/temporal.ts";
import * as activities from "./fixtures/ping.activities.ts";
import { pingWorkflow } from "./fixtures/ping.workflow.ts";
import { eventually as waitFor } from "../support/eventually.ts";
import { servicePids } from "../support/kindling-process.ts";

const workflowsPath = fileURLToPath(new URL("./fixtures/ping.workflow.ts", import.meta.url));
const tenantKey = defineSearchAttributeKey(KINDLING_TENANT_ID, SearchAttributeType.KEYWORD);

describe("shared Temporal dev server", () => {
  let temporal: SharedTemporal;
  beforeAll(async () => {
    temporal = await connectToSharedTemporal("infra-ping");
  });
  afterAll(async () => {
    await temporal?.close();
  });

  it("runs a workflow and its activity on a worker bundled from TypeScript", async () => {
    const worker = await Worker.create({
      connection: temporal.nativeConnection,
      namespace: temporal.namespace,
      taskQueue: temporal.taskQueue,
      workflowsPath,
      activities,
    });
    const tenantId = `tenant-${temporal.taskQueue}`;
    const result = await worker.runUntil(
      temporal.client.workflow.execute(pingWorkflow, {
        taskQueue: temporal.taskQueue,
        workflowId: `ping-${temporal.taskQueue}`,
        args: ["kindling"],
        typedSearchAttributes: [{ key: tenantKey, value: tenantId }],
      }),
    );
    expect(result).toBe("pong kindling");

    // Kindling's search attributes are registered: the UI's (and our) visibility query finds the run by tenant.
    const found = await eventually(async () => {
      const ids: string[] = [];
      for await (const execution of temporal.client.workflow.list({ query: `${KINDLING_TENANT_ID} = '${tenantId}'` })) {
        ids.push(execution.workflowId);
      }
      return ids.length > 0 ? ids : undefined;
    });
    expect(found).toEqual([`ping-${temporal.taskQueue}`]);
  });
});

describe("startTemporalDevServer", () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "kindling-temporal-test-"));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("serves its UI, registers the search attributes and keeps workflows across a restart", async () => {
    const cli = await resolveTemporalCli();
    const namespace = "kindling-persistence";
    const workflowId = "survives-restart";

    const firstStartedAt = performance.now();
    const first = await startTemporalDevServer({ executablePath: cli.path, dataDir, namespace });
    const firstStartMs = performance.now() - firstStartedAt;
    try {
      expect(first.uiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const page = await fetch(first.uiUrl ?? "");
      expect(page.status).toBe(200);
      await page.body?.cancel();
      expect((await stat(first.dbFilename ?? "")).isFile()).toBe(true);

      await withClient(first.address, namespace, async (client, connection) => {
        const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
        for (const { name } of KINDLING_SEARCH_ATTRIBUTES) expect(customAttributes?.[name]).toBeDefined();
        // No worker polls this queue: the run just waits, which is all persistence needs.
        await client.workflow.start(pingWorkflow, { taskQueue: "nobody-polls", workflowId, args: ["later"] });
      });
    } finally {
      await first.stop();
    }

    const secondStartedAt = performance.now();
    const second = await startTemporalDevServer({ executablePath: cli.path, dataDir, namespace });
    const secondStartMs = performance.now() - secondStartedAt;
    try {
      await withClient(second.address, namespace, async (client) => {
        const description = await client.workflow.getHandle(workflowId).describe();
        expect(description.status.name).toBe("RUNNING");
        await client.workflow.getHandle(workflowId).terminate("test done");
        await expect(client.workflow.getHandle("never-started").describe()).rejects.toBeInstanceOf(
          WorkflowNotFoundError,
        );
      });
    } finally {
      await second.stop();
    }
    console.info(
      `[measure] Temporal dev server start: first ${Math.round(firstStartMs)} ms, second ${Math.round(secondStartMs)} ms ` +
        `(CLI from ${cli.source}${cli.origin === undefined ? "" : `, originally ${cli.origin}`})`,
    );
  });
});

describe("Temporal dev server with a SQLite file from an older Kindling", () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "kindling-temporal-upgrade-"));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("infra/kept_sqlite_file_gets_search_attributes_added_since", async () => {
    // `start-dev --search-attribute` registers only into a new file: one kept from before KindlingSummary existed
    // (made here by removing it) must still start, with the attribute added, not time out waiting for it.
    const cli = await resolveTemporalCli();
    const namespace = "kindling-upgrade";
    const first = await startTemporalDevServer({ executablePath: cli.path, dataDir, namespace, ui: false });
    try {
      await withClient(first.address, namespace, async (_client, connection) => {
        await connection.operatorService.removeSearchAttributes({ namespace, searchAttributes: [KINDLING_SUMMARY] });
        const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
        expect(customAttributes?.[KINDLING_SUMMARY]).toBeUndefined();
      });
    } finally {
      await first.stop();
    }

    const second = await startTemporalDevServer({ executablePath: cli.path, dataDir, namespace, ui: false, startTimeoutMs: 30_000 });
    try {
      await withClient(second.address, namespace, async (_client, connection) => {
        const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
        for (const { name } of KINDLING_SEARCH_ATTRIBUTES) expect(customAttributes?.[name]).toBeDefined();
      });
    } finally {
      await second.stop();
    }
  });
});

describe("Temporal dev server's SQLite file", () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "kindling-temporal-wal-"));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("temporal-dev-server/persists_with_write_ahead_logging_and_keeps_what_it_acknowledged_through_a_sigkill", async () => {
    // The rollback journal held the dev server to a few workflows a second on a busy machine (issue 17, item 2).
    const cli = await resolveTemporalCli();
    const namespace = "kindling-wal";
    const first = await startTemporalDevServer({ executablePath: cli.path, dataDir, namespace, ui: false });
    const workflowIds = Array.from({ length: 20 }, (_, i) => `acknowledged-${i}`);
    try {
      await withClient(first.address, namespace, async (client) => {
        await Promise.all(workflowIds.map((workflowId) => client.workflow.start(pingWorkflow, { taskQueue: "nobody-polls", workflowId, args: ["later"] })));
      });
      // SQLite's header: bytes 18 and 19 (file format write and read versions) are 2 in WAL mode, 1 with a journal.
      const header = Buffer.alloc(20);
      const file = await open(first.dbFilename!, "r");
      await file.read(header, 0, 20, 0);
      await file.close();
      expect([header[18], header[19]]).toEqual([2, 2]);
    } finally {
      // Killed outright, as a crash would: no checkpoint of the log into the file.
      for (const pid of await servicePids(dataDir)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Gone already.
        }
      }
      await waitFor(async () => ((await servicePids(dataDir)).length === 0 ? true : undefined));
      await first.stop();
    }
    const second = await startTemporalDevServer({ executablePath: cli.path, dataDir, namespace, ui: false });
    try {
      await withClient(second.address, namespace, async (client) => {
        for (const workflowId of workflowIds) expect((await client.workflow.getHandle(workflowId).describe()).status.name).toBe("RUNNING");
      });
    } finally {
      await second.stop();
    }
  });
});

async function withClient(
  address: string,
  namespace: string,
  use: (client: Client, connection: Connection) => Promise<void>,
): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    await use(new Client({ connection, namespace }), connection);
  } finally {
    await connection.close();
  }
}

// Visibility is eventually consistent, even on the dev server.
const eventually = <T>(probe: () => Promise<T | undefined>, timeoutMs = 10_000) => waitFor(probe, timeoutMs);

// A port Kindling's own dev server could not bind must fail start-up naming the port, never leave Kindling talking to
// whatever else answers there (an orphaned dev server from an earlier run, or any other program).
describe("startTemporalDevServer on a port that is taken", () => {
  it("temporal-dev-server/refuses_a_frontend_port_held_by_a_plain_listener_naming_it", async () => {
    const cli = await resolveTemporalCli();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen({ host: "127.0.0.1", port: 0 }, resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      const error = await startTemporalDevServer({ executablePath: cli.path, port, ui: false }).then(
        (server) => server.stop().then(() => undefined),
        (rejected: unknown) => rejected,
      );
      expect(error).toBeInstanceOf(PortInUseError);
      expect((error as PortInUseError).message).toContain(`port ${port}`);
      expect((error as PortInUseError).message).toContain("EMBEDDED_TEMPORAL_PORT");
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it("temporal-dev-server/refuses_a_frontend_port_where_another_temporal_answers", async () => {
    const cli = await resolveTemporalCli();
    // The shared dev server of this run plays the orphan: it answers every readiness check a new one would make.
    const port = Number(inject("temporalAddress").split(":").at(-1));
    const outcome = await startTemporalDevServer({
      executablePath: cli.path,
      port,
      ui: false,
      namespace: inject("temporalNamespace"),
    }).then(
      async (server) => {
        await server.stop();
        return `reported ready at ${server.address}`;
      },
      (rejected: unknown) => rejected,
    );
    expect(outcome).toBeInstanceOf(PortInUseError);
    expect((outcome as PortInUseError).port).toBe(port);
  });
});
