// A database of its own for each test file, on the run's shared PostgreSQL (see global-setup.ts), so files run
// in parallel without seeing each other's rows, and without paying for a cluster each.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";

export interface TestDatabase {
  name: string;
  url: string;
  // Drops the database, closing any connection the test left open.
  drop(): Promise<void>;
}

export interface CreateTestDatabaseOptions {
  // Readable part of the name, e.g. the test file's subject; the rest is random.
  label?: string;
  // Copy this database instead of an empty one (e.g. a template with migrations already applied).
  template?: string;
}

export async function createTestDatabase(options: CreateTestDatabaseOptions = {}): Promise<TestDatabase> {
  const adminUrl = inject("databaseUrl");
  const label = (options.label ?? "test").toLowerCase().replaceAll(/[^a-z0-9]+/g, "_").slice(0, 30);
  const name = `kindling_${label}_${randomBytes(5).toString("hex")}`;
  await withAdmin(adminUrl, async (client) => {
    const template = options.template === undefined ? "" : ` TEMPLATE ${client.escapeIdentifier(options.template)}`;
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}${template}`);
  });
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () =>
      withAdmin(adminUrl, async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
      }),
  };
}

async function withAdmin(adminUrl: string, use: (client: pg.Client) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await use(client);
  } finally {
    await client.end();
  }
}
