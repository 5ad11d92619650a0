// `npm run create-tenant -- "Acme"`: creates a tenant with an ADMIN API key, prints the credentials once, and what
// to do next: the README's first call, filled in with the new key and the API's URL.
//
// With `npm start` running on the embedded database, it connects to that database (the running Kindling owns
// it); otherwise it starts the embedded database (if DATABASE_URL is unset) and migrates it exactly as
// `npm start` does, and stops it again.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { KindlingConfig } from "../config/config.ts";
import type { Logger } from "../observability/logger.ts";
import { startKindling } from "../app.ts";
import { createOrm, migrate } from "../db/orm.ts";
import { createTenantWithAdminKey } from "../db/repositories/tenant.repository.ts";
import { runningEmbeddedPostgres } from "../infra/embedded-postgres.ts";
import { clientUrl } from "../api/server.ts";

export async function runCreateTenant(config: KindlingConfig, logger: Logger, args: readonly string[]): Promise<number> {
  const name = args.join(" ").trim();
  if (name.length === 0 || name.length > 256) {
    process.stderr.write("usage: npm run create-tenant -- <tenant name (1-256 characters)>\n");
    return 2;
  }
  const running =
    config.databaseUrl === undefined ? await runningEmbeddedPostgres({ dataDir: join(config.dataDir, "postgres") }) : undefined;
  let databaseUrl: string;
  let stop = async (): Promise<void> => {};
  if (running !== undefined) {
    logger.info({ port: running.port, ownerPid: running.ownerPid }, "using the embedded PostgreSQL of the running Kindling");
    databaseUrl = running.databaseUrl;
  } else {
    const started = await startKindling(config, logger, "migrate-keep");
    databaseUrl = started.databaseUrl;
    stop = () => started.stop();
  }
  try {
    const orm = await createOrm(databaseUrl, 2);
    try {
      // A no-op when the running Kindling has migrated already; needed when it runs an older checkout.
      if (running !== undefined) await migrate(orm);
      const created = await createTenantWithAdminKey(orm.em.fork(), { id: randomUUID(), name });
      process.stdout.write(
        [
          `tenant:    ${created.tenantId} (${name})`,
          `apikey:    ${created.keyId}`,
          `secretkey: ${created.secret}`,
          `bearer:    ${created.keyId}.${created.secret}`,
          "The secret is shown only now; store it safely.",
          "",
          running !== undefined
            ? "Next, create a streak definition on the running Kindling (more calls: README, 'Calling it'):"
            : "Next, with Kindling running (`npm start`), create a streak definition (more calls: README, 'Calling it'):",
          firstCall(apiUrl(config), created.keyId, created.secret),
          "",
        ].join("\n"),
      );
    } finally {
      await orm.close();
    }
  } finally {
    await stop();
  }
  return 0;
}

// Where a client on this machine reaches the API that `npm start` serves with this configuration.
const apiUrl = (config: Pick<KindlingConfig, "host" | "port">): string => clientUrl(config.host, config.port);

// The README's first curl line, with the credentials in place of $KEY and $SECRET.
function firstCall(baseUrl: string, key: string, secret: string): string {
  return [
    `curl -s ${baseUrl}/kindling.v1.DefinitionService/CreateDefinition \\`,
    `  -H 'content-type: application/json' -H 'apikey: ${key}' -H 'secretkey: ${secret}' \\`,
    `  -d '{"definition":{"name":"Daily Login","eventTypes":["user.login"],`,
    `       "window":{"calendar":{"period":"CALENDAR_PERIOD_DAILY","timeZone":"UTC","resetTime":"00:00"}},`,
    `       "condition":{"type":"CONDITION_TYPE_COUNT","min":1},`,
    `       "milestones":[{"threshold":7,"reward":{"kind":"REWARD_KIND_POINTS","points":100,"fulfilmentMode":"FULFILMENT_MODE_CLAIM"}}]}}'`,
  ].join("\n");
}
