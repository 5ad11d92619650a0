// Determinism guard: every saved history (test/replay/histories, recorded by scripts/record-workflow-histories.ts)
// must replay against the current workflow code without a nondeterminism error. A change that breaks this
// needs patched() — or, if no such workflow can be running anywhere, newly recorded histories.
import { readdir, readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { Worker } from "@temporalio/worker";
import { WORKFLOWS_PATH } from "../../workers/worker.ts";
import { historyFromFixture } from "./history-json.ts";

const dir = new URL("./histories/", import.meta.url);

describe("workflow replay", () => {
  it("replay/every_saved_history_replays_deterministically", { timeout: 120_000 }, async () => {
    const files = (await readdir(dir)).filter((f) => f.endsWith(".json")).sort();
    expect(files.some((f) => f.startsWith("definition-sweeper."))).toBe(true);
    expect(files.some((f) => f.startsWith("reward-lifecycle."))).toBe(true);
    const histories = await Promise.all(
      files.map(async (file) => ({ workflowId: file, history: historyFromFixture(await readFile(new URL(file, dir), "utf8")) })),
    );
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowsPath: WORKFLOWS_PATH }, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${String(result.error)}`);
    }
    expect(failures).toEqual([]);
    expect(histories.length).toBe(files.length);
  });
});
