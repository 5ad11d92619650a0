// Vitest globalSetup of the `reliability` project: the integration project's PostgreSQL and Temporal dev server
// (tests that kill PostgreSQL or Temporal start their own beside them), plus a directory where each test file
// leaves its figures. When RELIABILITY_RESULTS names a file, the teardown merges the figures into it
// (`npm run test:reliability` writes bench/results/reliability.json); a plain `npm test` writes nothing.
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import integrationSetup from "../support/global-setup.ts";

declare module "vitest" {
  export interface ProvidedContext {
    // Where each reliability test file writes `<item>.json` with its figures.
    reliabilityFigures: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const figures = await mkdtemp(join(tmpdir(), "kindling-reliability-"));
  project.provide("reliabilityFigures", figures);
  const startedAt = new Date().toISOString();
  const loadAtStart = loadavg()[0];
  const teardownIntegration = await integrationSetup(project);
  return async () => {
    try {
      const target = process.env.RELIABILITY_RESULTS;
      if (target) {
        const items: Record<string, unknown> = {};
        for (const file of (await readdir(figures)).sort()) {
          if (file.endsWith(".json")) items[file.slice(0, -5)] = JSON.parse(await readFile(join(figures, file), "utf8"));
        }
        const previous = await readFile(target, "utf8").then((text) => JSON.parse(text) as { items?: Record<string, unknown> }, () => ({ items: {} }));
        const report = {
          startedAt,
          finishedAt: new Date().toISOString(),
          machine: {
            cpus: cpus().length,
            cpuModel: cpus()[0]?.model,
            loadAverage1mAtStart: loadAtStart,
            loadAverage1mAtEnd: loadavg()[0],
            note: process.env.RELIABILITY_MACHINE_NOTE ?? "",
          },
          // Items not run this time keep their last figures (a run of one file does not erase the others).
          items: { ...(previous.items ?? {}), ...items },
        };
        await writeFile(target, `${JSON.stringify(report, null, 2)}\n`);
      }
    } finally {
      await rm(figures, { recursive: true, force: true });
      await teardownIntegration();
    }
  };
}
