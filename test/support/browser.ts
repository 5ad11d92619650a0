// A real browser for tests: Debian's chromium driven by playwright-core, and small local HTTP servers that play
// a brand's own web site on another origin than the API. No browser is downloaded: a machine without
// /usr/bin/chromium (or CHROMIUM_PATH) fails the tests with a message saying how to install it (.ci/run does).
import { existsSync, mkdirSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Flags for a quiet headless chromium in a container: no sandbox (no user namespaces), no network of its own. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface LaunchedBrowser {
  readonly browser: Browser;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<LaunchedBrowser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`chromium not found at ${CHROMIUM_PATH}: the browser tests need it. Install it with \`apt-get update && apt-get install -y chromium\` (.ci/run does), or set CHROMIUM_PATH.`);
  }
  // playwright gives every launch a fresh temporary profile of its own (and removes it on close).
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  return { browser, close: () => browser.close() };
}

export interface PageServer {
  /** The origin pages are served from, e.g. http://127.0.0.1:41234. */
  readonly origin: string;
  close(): Promise<void>;
}

/** Serves `pages` (path → HTML, or JavaScript for paths ending in .js) on a free port of 127.0.0.1: one origin of
 * its own. The map is read on every request, so pages can be added after the origin is known. */
export async function servePages(pages: Record<string, string>): Promise<PageServer> {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const body = pages[path];
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    const type = path.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/html; charset=utf-8";
    res.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Where screenshots go: test-artifacts/ (ignored by git); docs/screenshots/ keeps copies of the final ones. */
export function artifactsDir(name: string): string {
  const dir = join(import.meta.dirname, "..", "..", "test-artifacts", name);
  mkdirSync(dir, { recursive: true });
  return dir;
}
