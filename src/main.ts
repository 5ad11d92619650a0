// Entry point: `node src/main.ts all|api|worker|migrate|create-tenant`.
// `all` is the zero-config developer mode: embedded PostgreSQL and Temporal dev server unless DATABASE_URL /
// TEMPORAL_ADDRESS say otherwise, migrations, API and worker in one process. `api` and `worker` are the
// production roles, scaled independently; both are stateless.
import { ConfigError, loadConfig } from "./config/config.ts";
import { createLogger } from "./observability/logger.ts";
import { runKindling } from "./app.ts";
import { runCreateTenant } from "./cli/create-tenant.command.ts";

const usage = "usage: node src/main.ts <all|api|worker|migrate|create-tenant NAME>";

async function main(argv: readonly string[]): Promise<number> {
  const [command = "all", ...rest] = argv;
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  switch (command) {
    case "all":
    case "api":
    case "worker":
    case "migrate":
      return runKindling(config, logger, command);
    case "create-tenant":
      return runCreateTenant(config, logger, rest);
    default:
      process.stderr.write(`${usage}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`kindling failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
