// Re-records the workflow histories the replay test replays (test/replay/histories/*.json). It runs the
// recorder in the integration test project (real PostgreSQL, time-skipping Temporal), which is skipped otherwise.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const vitest = fileURLToPath(new URL("../node_modules/vitest/vitest.mjs", import.meta.url));
const result = spawnSync(process.execPath, [vitest, "run", "--project", "integration", "test/replay/record-histories.test.ts"], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, RECORD_WORKFLOW_HISTORIES: "1" },
});
process.exitCode = result.status ?? 1;
