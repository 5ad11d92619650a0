// Re-records the workflow histories the replay test replays (test/replay/histories/*.json). It runs the
// recorder with vitest.recorder.config.ts (the integration project's global setup: real PostgreSQL, time-skipping
// Temporal); `npm test` never picks it up.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const vitest = fileURLToPath(new URL("../node_modules/vitest/vitest.mjs", import.meta.url));
const result = spawnSync(process.execPath, [vitest, "run", "--config", "vitest.recorder.config.ts"], {
  cwd: root,
  stdio: "inherit",
  env: process.env,
});
process.exitCode = result.status ?? 1;
