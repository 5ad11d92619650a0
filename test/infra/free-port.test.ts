// The port checks behind "never attach to a stranger" (src/infra/temporal-dev-server.ts): whether a port is free,
// and whether a given process is the one listening on it.
import { spawn } from "node:child_process";
import { createServer, type AddressInfo, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { holdsListeningPort, isPortFree } from "../../src/infra/free-port.ts";

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

async function listen(): Promise<number> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  return (server.address() as AddressInfo).port;
}

describe("port checks", () => {
  it("free-port/tells_a_taken_port_from_a_free_one", async () => {
    const port = await listen();
    expect(await isPortFree(port)).toBe(false);
    await new Promise((resolve) => servers.pop()?.close(resolve));
    expect(await isPortFree(port)).toBe(true);
  });

  it("free-port/names_the_process_that_listens_on_a_port_and_no_other", async () => {
    const ours = await listen();
    expect(await holdsListeningPort(process.pid, ours)).toBe(true);
    // Another process listening: it holds its port, we do not.
    const stranger = spawn(
      process.execPath,
      ["-e", "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => console.log(s.address().port))"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const theirs = await new Promise<number>((resolve) =>
        stranger.stdout.once("data", (chunk: Buffer) => resolve(Number.parseInt(chunk.toString(), 10))),
      );
      expect(await holdsListeningPort(process.pid, theirs)).toBe(false);
      expect(await holdsListeningPort(stranger.pid ?? 0, theirs)).toBe(true);
      expect(await holdsListeningPort(stranger.pid ?? 0, ours)).toBe(false);
    } finally {
      stranger.kill("SIGKILL");
    }
  });
});
