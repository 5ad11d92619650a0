import { createServer } from "node:net";

// Asks the kernel for an unused TCP port by binding port 0 and releasing it. Another process can take the port
// before the caller binds it; callers that can detect "address in use" retry with a fresh port.
export async function findFreePort(host = "127.0.0.1"): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("could not determine a free port"));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}
