import { readdir, readFile, readlink } from "node:fs/promises";
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

export class PortInUseError extends Error {
  readonly port: number;
  constructor(port: number, host: string, what: string, hint: string) {
    super(`${what} cannot use port ${port} on ${host}: another process is already listening there. ${hint}`);
    this.name = "PortInUseError";
    this.port = port;
  }
}

// Binds and releases the port to learn whether it is free now. Used before a service is started on a fixed port,
// so that a stranger already listening there is reported instead of being mistaken for the service.
export async function isPortFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE" || error.code === "EACCES") resolve(false);
      else reject(error);
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

// Whether process `pid` holds a listening TCP socket on `port`, from /proc (Linux): the sockets in LISTEN state on
// that port (/proc/net/tcp, tcp6) matched against the process's open file descriptors. undefined where /proc cannot
// tell (other systems, or no permission to read the process's descriptors).
export async function holdsListeningPort(pid: number, port: number): Promise<boolean | undefined> {
  const listening = new Set<string>();
  let readAny = false;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = await readFile(table, "utf8");
      readAny = true;
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (local === undefined || fields[3] !== "0A") continue;
      const localPort = Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16);
      if (localPort === port && fields[9] !== undefined) listening.add(`socket:[${fields[9]}]`);
    }
  }
  if (!readAny) return undefined;
  let descriptors: string[];
  try {
    descriptors = await readdir(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  for (const descriptor of descriptors) {
    const target = await readlink(`/proc/${pid}/fd/${descriptor}`).catch(() => "");
    if (listening.has(target)) return true;
  }
  return false;
}
