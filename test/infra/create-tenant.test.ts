// The README's flow: `npm start`, then in another terminal `npm run create-tenant -- "Acme"`, then the curl line it
// prints. create-tenant must work while Kindling runs (on the database that Kindling runs) and when it does not.
import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTemporaryDataRoot } from "../../src/infra/embedded-postgres.ts";
import { kindlingEnv, killLeftovers, outputOf, startKindlingProcess, waitForLine, type Run } from "../support/kindling-process.ts";

const execFileAsync = promisify(execFile);

let dataRoot: string;
let run: Run | undefined;
beforeEach(async () => {
  dataRoot = await createTemporaryDataRoot("kindling-create-tenant-");
});
afterEach(async () => {
  await killLeftovers(run, dataRoot);
  run = undefined;
  await rm(dataRoot, { recursive: true, force: true });
});

async function createTenant(env: NodeJS.ProcessEnv, name: string): Promise<{ code: number; text: string }> {
  const tenant = startKindlingProcess(env, ["create-tenant", name]);
  const { code } = await tenant.exited;
  return { code: code ?? -1, text: outputOf(tenant) };
}

// The command create-tenant prints for the next step: from `curl` to the blank line after it.
function printedCurl(text: string): string {
  const lines = text.split("\n");
  const first = lines.findIndex((line) => line.startsWith("curl "));
  expect(first, text).toBeGreaterThanOrEqual(0);
  const end = lines.findIndex((line, index) => index > first && line.trim() === "");
  return lines.slice(first, end === -1 ? undefined : end).join("\n");
}

describe("npm run create-tenant", () => {
  it("create-tenant/works_while_npm_start_runs_and_its_printed_curl_line_succeeds", async () => {
    const env = await kindlingEnv(dataRoot);
    run = startKindlingProcess(env);
    await waitForLine(run, /Kindling is running\./);

    const created = await createTenant(env, "Acme");
    expect(created.code, created.text).toBe(0);
    const key = /^apikey: +(\S+)$/m.exec(created.text)?.[1];
    expect(key, created.text).toBeDefined();
    const curl = printedCurl(created.text);
    expect(curl).toContain(`http://127.0.0.1:${env.PORT}/kindling.v1.DefinitionService/CreateDefinition`);
    expect(curl).toContain(`'apikey: ${key}'`);

    // Exactly what a user pastes into a shell.
    const { stdout } = await execFileAsync("/bin/sh", ["-c", curl]);
    const answer = JSON.parse(stdout) as { definition?: { name?: string; id?: string } };
    expect(answer.definition?.name, stdout).toBe("Daily Login");

    // And after Kindling has stopped: it starts the embedded database itself, and says to start Kindling.
    process.kill(-(run.child.pid ?? 0), "SIGINT");
    await run.exited;
    const offline = await createTenant(env, "Globex");
    expect(offline.code, offline.text).toBe(0);
    expect(offline.text).toContain("with Kindling running (`npm start`)");
    expect(printedCurl(offline.text)).toMatch(/'apikey: \S+'/);
  });
});
