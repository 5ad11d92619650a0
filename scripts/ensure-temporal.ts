// Resolves both Temporal binaries the way `npm start` and `npm test` will, so a CI job can fetch or build them
// once (into the cache, see src/infra/temporal-binaries.ts) before the tests run, and log where each came from.
//
//   node scripts/ensure-temporal.ts
//
// Exits non-zero, with the resolver's list of ways out, when a binary cannot be found or obtained.
import { execFileSync } from "node:child_process";
import {
  describeResolution,
  resolveTemporalCli,
  resolveTemporalTestServer,
  temporalCacheDir,
  type ResolvedTemporalBinary,
} from "../src/infra/temporal-binaries.ts";
import type { ServiceLogger } from "../src/infra/service-logger.ts";

const progress: ServiceLogger = {
  info: (_fields, message) => console.error(`ensure-temporal: ${message ?? ""}`),
  warn: (_fields, message) => console.error(`ensure-temporal: warning: ${message ?? ""}`),
  error: (_fields, message) => console.error(`ensure-temporal: error: ${message ?? ""}`),
};

try {
  console.log(`cache: ${temporalCacheDir()}`);
  // One after the other: in parallel they would compete for the same two cores and the same network.
  const cli = await resolveTemporalCli({ logger: progress });
  report(cli, cliVersion(cli.path));
  report(await resolveTemporalTestServer({ logger: progress }));
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
}

function report(binary: ResolvedTemporalBinary, detail?: string): void {
  console.log(`${describeResolution(binary)}${detail === undefined ? "" : ` [${detail}]`}`);
}

function cliVersion(path: string): string | undefined {
  try {
    return execFileSync(path, ["--version"], { encoding: "utf8", timeout: 10_000 }).trim();
  } catch {
    return undefined;
  }
}
