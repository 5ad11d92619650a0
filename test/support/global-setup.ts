// Vitest globalSetup of the `integration` project: one PostgreSQL and one Temporal dev server for the whole run,
// shared by every test file. Files isolate themselves inside them (a database per file, a task queue per file;
// see database.ts and temporal.ts), so they can run in parallel.
//
// DATABASE_URL / TEMPORAL_ADDRESS, when set, are used instead of starting anything (CI with service containers,
// `docker compose up`). DATABASE_URL must be allowed to CREATE and DROP databases.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import {
  createTemporaryDataRoot,
  EPHEMERAL_POSTGRES_SETTINGS,
  startEmbeddedPostgres,
} from "../../src/infra/embedded-postgres.ts";
import { resolveTemporalCli, resolveTemporalTestServer } from "../../src/infra/temporal-binaries.ts";
import { startTemporalDevServer } from "../../src/infra/temporal-dev-server.ts";

declare module "vitest" {
  export interface ProvidedContext {
    // Maintenance URL of the shared cluster: use it to create databases, not to hold test data.
    databaseUrl: string;
    temporalAddress: string;
    temporalNamespace: string;
    // For TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: "existing-path", path } } }).
    temporalTestServerPath: string;
  }
}

const TEST_NAMESPACE = "kindling-test";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cleanups: Array<() => Promise<void>> = [];
  // Last started, first stopped, one at a time: the data directory goes only after PostgreSQL has stopped.
  const teardown = async (): Promise<void> => {
    const failures: unknown[] = [];
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((error: unknown) => failures.push(error));
    }
    if (failures.length > 0) throw new AggregateError(failures, "integration test teardown failed");
  };

  try {
    const [databaseUrl, temporal, testServer] = await Promise.all([
      provideDatabase(cleanups),
      provideTemporal(cleanups),
      resolveTemporalTestServer(),
    ]);
    project.provide("databaseUrl", databaseUrl);
    project.provide("temporalAddress", temporal.address);
    project.provide("temporalNamespace", temporal.namespace);
    project.provide("temporalTestServerPath", testServer.path);
  } catch (error) {
    await teardown();
    throw error;
  }
  return teardown;
}

async function provideDatabase(cleanups: Array<() => Promise<void>>): Promise<string> {
  const existing = process.env.DATABASE_URL;
  if (existing) return existing;
  // A fresh cluster per run: no state leaks between runs, and a crashed run leaves nothing a later one trips on.
  const root = await createTemporaryDataRoot("kindling-test-pg-");
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const postgres = await startEmbeddedPostgres({
    dataDir: join(root, "postgres"),
    settings: EPHEMERAL_POSTGRES_SETTINGS,
  });
  cleanups.push(() => postgres.stop());
  return postgres.adminUrl;
}

async function provideTemporal(
  cleanups: Array<() => Promise<void>>,
): Promise<{ address: string; namespace: string }> {
  const existing = process.env.TEMPORAL_ADDRESS;
  if (existing) return { address: existing, namespace: process.env.TEMPORAL_NAMESPACE || "default" };
  const cli = await resolveTemporalCli();
  // In memory and headless: a test run needs neither history across runs nor the UI.
  const server = await startTemporalDevServer({ executablePath: cli.path, namespace: TEST_NAMESPACE, ui: false });
  cleanups.push(() => server.stop());
  return { address: server.address, namespace: server.namespace };
}
