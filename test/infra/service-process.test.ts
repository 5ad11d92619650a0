// Services Kindling starts (PostgreSQL, the Temporal dev server) run in process groups of their own, so a terminal
// Ctrl-C does not reach them before Kindling has drained. The other side of that: nothing but Kindling stops them,
// so a Kindling killed outright must not leave them behind. These tests kill a real parent with SIGKILL.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { isProcessAlive, spawnServiceProcess } from "../../src/infra/service-process.ts";

const SERVICE_PROCESS = fileURLToPath(new URL("../../src/infra/service-process.ts", import.meta.url));

// A parent that starts `sleep` as a service (stopped by SIGTERM), prints the service's pid, and waits.
const PARENT_SCRIPT = `
import { spawnServiceProcess } from ${JSON.stringify(SERVICE_PROCESS)};
const logger = { info() {}, warn() {}, error() {} };
const service = spawnServiceProcess({ name: "sleeper", command: "sleep", args: ["300"], logger, stopSignal: "SIGTERM" });
process.stdout.write(String(service.pid) + "\\n");
setInterval(() => undefined, 1000);
`;

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return await check();
}

async function commandOf(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0").join(" ").trim();
}

describe("spawnServiceProcess", () => {
  it("service-process/stops_the_service_when_its_parent_is_killed_with_sigkill", async () => {
    const parent = spawn(process.execPath, ["--input-type=module", "-e", PARENT_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
    const servicePid = await new Promise<number>((resolve, reject) => {
      parent.stdout.once("data", (chunk: Buffer) => resolve(Number.parseInt(chunk.toString("utf8"), 10)));
      parent.once("exit", (code) => reject(new Error(`parent exited early (${code})`)));
    });
    try {
      // The pid Kindling holds is the service itself (the launcher execs it), not a shell around it.
      expect(await waitFor(async () => (await commandOf(servicePid)) === "sleep 300", 5_000)).toBe(true);
      parent.kill("SIGKILL");
      expect(await waitFor(() => !isProcessAlive(servicePid), 5_000)).toBe(true);
    } finally {
      parent.kill("SIGKILL");
      try {
        process.kill(-servicePid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  });

  it("service-process/output_tail_keeps_the_first_error_line_a_long_stack_trace_pushed_out", async () => {
    // As the Temporal CLI dies when its port was taken after it was picked: the message, then a long Go stack. The
    // dev server's start-up recognises a port race by that message (src/infra/temporal-dev-server.ts) and picks
    // ports again; with only the last 40 lines kept it saw the stack and gave up.
    const logger = { info() {}, warn() {}, error() {} };
    const script = 'echo starting; echo "panic: listen tcp 127.0.0.1:7233: bind: address already in use"; i=0; while [ $i -lt 60 ]; do echo "frame $i"; i=$((i+1)); done; exit 2';
    const service = spawnServiceProcess({ name: "crasher", command: "/bin/sh", args: ["-c", script], logger, stopSignal: "SIGTERM" });
    await service.exited;
    const deadline = Date.now() + 5_000;
    while (!service.outputTail().includes("frame 59") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const tail = service.outputTail().split("\n");
    expect(tail[0]).toBe("panic: listen tcp 127.0.0.1:7233: bind: address already in use");
    expect(tail.at(-1)).toBe("frame 59");
    expect(tail).not.toContain("starting");
    expect(tail.filter((line) => line.startsWith("frame"))).toHaveLength(40);
    await service.stop();
  });
});
