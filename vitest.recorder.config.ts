import { defineConfig } from "vitest/config";

// Only for scripts/record-workflow-histories.ts: runs the history recorder with the integration setup.
export default defineConfig({
  test: {
    include: ["test/replay/record-histories.recorder.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 300_000,
    hookTimeout: 180_000,
  },
});
