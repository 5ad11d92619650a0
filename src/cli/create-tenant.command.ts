// `npm run create-tenant -- "Acme"`: creates a tenant with an ADMIN API key and prints the credentials once.
import { randomUUID } from "node:crypto";
import type { KindlingConfig } from "../config/config.ts";
import type { Logger } from "../observability/logger.ts";
import { startKindling } from "../app.ts";
import { createOrm } from "../db/orm.ts";
import { createTenantWithAdminKey } from "../db/repositories/tenant.repository.ts";

export async function runCreateTenant(config: KindlingConfig, logger: Logger, args: readonly string[]): Promise<number> {
  const name = args.join(" ").trim();
  if (name.length === 0 || name.length > 256) {
    process.stderr.write("usage: npm run create-tenant -- <tenant name (1-256 characters)>\n");
    return 2;
  }
  // Reuse the normal start-up so the embedded database (if any) is started and migrated exactly as `npm start` does.
  const started = await startKindling(config, logger, "migrate-keep");
  try {
    const orm = await createOrm(started.databaseUrl, 2);
    try {
      const created = await createTenantWithAdminKey(orm.em.fork(), { id: randomUUID(), name });
      process.stdout.write(
        [
          `tenant:    ${created.tenantId} (${name})`,
          `apikey:    ${created.keyId}`,
          `secretkey: ${created.secret}`,
          `bearer:    ${created.keyId}.${created.secret}`,
          "The secret is shown only now; store it safely.",
          "",
        ].join("\n"),
      );
    } finally {
      await orm.close();
    }
  } finally {
    await started.stop();
  }
  return 0;
}
