// `npm run bench:widget`: the streak widget against its targets (issue 12, PRODUCT §7), in Chromium on this
// machine, against a local Kindling API (embedded PostgreSQL in a temporary directory, API role only).
//
//   1. Size: web/dist/kindling-streak.js raw, gzip -9 and brotli (target ≤ 50 KB gzipped).
//   2. First render: a page on another origin imports the module, then mounts <kindling-streak> with a minted
//      member session; we time from the import's completion to the element's first `kindling-update` (its first
//      paint of the progress). Baseline, in the same run, the same origin pair and a fresh browser context each
//      time: a bare fetch() of the very same read (the same GET URL and Authorization header) from the page,
//      body read. Both pay one CORS preflight (a fresh context has no preflight cache). Median of LOADS loads
//      each, alternating; reported side by side and as a ratio (target: first render ≤ 300 ms).
//   3. Requests per read: the page reads READS times (element.refresh()) through a counting proxy in front of
//      the API; we count the preflights (OPTIONS) and the GETs it saw. Target: one request per read and one
//      cached preflight for them all.
// Results: bench/results/widget.json. Knobs: LOADS (default 15), READS (default 10).
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";

import { join } from "node:path";
import { brotliCompressSync, constants as zlib, gzipSync } from "node:zlib";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { randomUUID } from "node:crypto";
import { loadConfig } from "../src/config/config.ts";
import { createLogger } from "../src/observability/logger.ts";
import { startKindling } from "../src/app.ts";
import { createOrm } from "../src/db/orm.ts";
import { createTenantWithAdminKey } from "../src/db/repositories/tenant.repository.ts";
import { DefinitionService } from "../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../src/gen/kindling/v1/activity_service_pb.js";
import { TenantService } from "../src/gen/kindling/v1/tenant_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../src/gen/kindling/v1/definition_pb.js";
import { launchChromium, servePages } from "../test/support/browser.ts";
import { createTemporaryDataRoot } from "../src/infra/embedded-postgres.ts";
import { median } from "./stats.ts";

const LOADS = Number(process.env.LOADS ?? 15);
const READS = Number(process.env.READS ?? 10);
const root = join(import.meta.dirname, "..");
const log = (message: string) => process.stdout.write(`[widget] ${message}\n`);

// 1. Size.
const bundle = readFileSync(join(root, "web", "dist", "kindling-streak.js"));
const size = {
  rawBytes: bundle.length,
  gzipBytes: gzipSync(bundle, { level: 9 }).length,
  brotliBytes: brotliCompressSync(bundle, { params: { [zlib.BROTLI_PARAM_QUALITY]: 11 } }).length,
};
log(`bundle ${size.rawBytes} B raw, ${size.gzipBytes} B gzip -9 (${(size.gzipBytes / 1024).toFixed(1)} KiB), ${size.brotliBytes} B brotli`);

const dataDir = await createTemporaryDataRoot("kindling-bench-widget-");
const config = loadConfig({ KINDLING_DATA_DIR: dataDir, EMBEDDED_POSTGRES_PORT: "0", PORT: "0", LOG_LEVEL: "silent", RATE_LIMIT_PER_SECOND: "0" });
const started = await startKindling(config, createLogger("silent"), "api");
const chromium = await launchChromium();
const cleanups: (() => Promise<unknown>)[] = [() => started.stop(), () => chromium.close()];
try {
  const api = started.apiUrl!;
  const orm = await createOrm(started.databaseUrl, 2);
  const admin = await createTenantWithAdminKey(orm.em.fork(), { id: randomUUID(), name: "bench" });
  await orm.close();
  const headers: Interceptor = (next) => (req) => {
    req.header.set("apikey", admin.keyId);
    req.header.set("secretkey", admin.secret);
    return next(req);
  };
  const transport = createConnectTransport({ baseUrl: api, httpVersion: "1.1", interceptors: [headers] });
  const defs = createClient(DefinitionService, transport);
  const { definition } = await defs.createDefinition({
    definition: {
      name: "Daily visit",
      window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
      condition: { type: ConditionType.COUNT, min: 2 },
      milestones: [
        { threshold: 1, reward: { kind: RewardKind.POINTS, points: 10, fulfilmentMode: FulfilmentMode.CLAIM } },
        { threshold: 3, reward: { kind: RewardKind.BADGE, fulfilmentMode: FulfilmentMode.PROVIDER, badge: { name: "Three" } } },
      ],
    },
  });
  const definitionId = definition!.id;
  await defs.publishDefinition({ definitionId });
  await createClient(ActivityService, transport).recordActivity({
    activity: { memberRef: { case: "memberExternalId", value: "ana" }, target: { case: "definitionId", value: definitionId }, occurTime: timestampFromMs(Date.now()), uniqueIdentifier: "bench-1" },
  });
  const tenants = createClient(TenantService, transport);
  const { token } = await tenants.createMemberSession({ memberExternalId: "ana", definitionId });

  // The widget's one read (a GET): the member's streaks, from which it takes its definition's.
  const READ_PATH = "/kindling.v1.MemberStreakService/ListMemberStreaks";

  // A counting proxy in front of the API: what the browser really sends, preflights included.
  const seen = { options: 0, reads: 0, other: 0 };
  const apiUrl = new URL(api);
  const proxy = http.createServer((req, res) => {
    if (req.method === "OPTIONS") seen.options += 1;
    else if (req.method === "GET" && req.url?.startsWith(READ_PATH)) seen.reads += 1;
    else seen.other += 1;
    const upstream = http.request({ host: apiUrl.hostname, port: apiUrl.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const proxied = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  cleanups.push(() => new Promise((resolve) => proxy.close(resolve)));

  const pages: Record<string, string> = {};
  const site = await servePages(pages);
  cleanups.push(() => site.close());
  await tenants.setBrowserOrigins({ origins: [site.origin] });

  // The widget's own read, as a URL: the page reads it back from a first mount (the same GET the element sends).
  pages["/"] = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bench</title></head><body><div id="slot"></div></body></html>`;
  const widgetUrl = `${api}/widget/kindling-streak.js`;
  const attrs = { api, definition: definitionId, token, lang: "en", live: "off" };

  async function widgetLoad(): Promise<{ total: number; network: number; sent: number }> {
    const context = await chromium.browser.newContext();
    const page = await context.newPage();
    await page.goto(`${site.origin}/`);
    // Browser code as text: this file is type-checked without the DOM library.
    const ms = await page.evaluate<{ total: number; network: number; sent: number }>(`(async () => {
      await import(${JSON.stringify(widgetUrl)});
      const loaded = performance.now();
      const el = document.createElement("kindling-streak");
      for (const [k, v] of Object.entries(${JSON.stringify(attrs)})) el.setAttribute(k, v);
      const rendered = new Promise((resolve) => el.addEventListener("kindling-update", () => requestAnimationFrame(() => resolve(performance.now())), { once: true }));
      document.getElementById("slot").append(el);
      const done = await rendered;
      const read = performance.getEntriesByType("resource").find((e) => e.name.includes(${JSON.stringify(READ_PATH)}));
      return { total: done - loaded, network: (read ? read.responseEnd : done) - loaded, sent: (read ? read.startTime : done) - loaded };
    })()`);
    await context.close();
    return ms;
  }

  // Find the exact GET the widget sends, to replay it bare.
  const probe = await chromium.browser.newContext();
  const probePage = await probe.newPage();
  await probePage.goto(`${site.origin}/`);
  const readRequest = probePage.waitForRequest((r) => r.url().includes(READ_PATH));
  await probePage.evaluate(`(async () => {
    await import(${JSON.stringify(widgetUrl)});
    const el = document.createElement("kindling-streak");
    for (const [k, v] of Object.entries(${JSON.stringify(attrs)})) el.setAttribute(k, v);
    document.getElementById("slot").append(el);
  })()`);
  const readUrl = (await readRequest).url();
  await probe.close();

  async function bareFetch(): Promise<number> {
    const context = await chromium.browser.newContext();
    const page = await context.newPage();
    await page.goto(`${site.origin}/`);
    const ms = await page.evaluate(
      async ({ readUrl, token }) => {
        const t0 = performance.now();
        const res = await fetch(readUrl, { headers: { authorization: `Bearer ${token}`, "connect-protocol-version": "1" } });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`read failed: ${res.status}`);
        return performance.now() - t0;
      },
      { readUrl, token },
    );
    await context.close();
    return ms;
  }

  // Warm up both paths once (server caches, JIT), then alternate.
  await widgetLoad();
  await bareFetch();
  const widgetMs: number[] = [];
  const networkMs: number[] = [];
  const sentMs: number[] = [];
  const fetchMs: number[] = [];
  for (let i = 0; i < LOADS; i++) {
    const load = await widgetLoad();
    widgetMs.push(load.total);
    networkMs.push(load.network);
    sentMs.push(load.sent);
    fetchMs.push(await bareFetch());
  }
  const firstRender = {
    loads: LOADS,
    widgetMedianMs: Number(median(widgetMs).toFixed(1)),
    bareFetchMedianMs: Number(median(fetchMs).toFixed(1)),
    ratio: Number((median(widgetMs) / median(fetchMs)).toFixed(2)),
    /** Of the widget's time, until its read's response had arrived (preflight + GET, resource timing). */
    widgetNetworkMedianMs: Number(median(networkMs).toFixed(1)),
    /** When the widget's read left (its preflight first), from the module's load: the element's own start-up. */
    widgetReadSentMedianMs: Number(median(sentMs).toFixed(1)),
    widgetMs: widgetMs.map((v) => Number(v.toFixed(1))),
    bareFetchMs: fetchMs.map((v) => Number(v.toFixed(1))),
  };
  log(`first render after module load: widget ${firstRender.widgetMedianMs} ms vs bare fetch of the same read ${firstRender.bareFetchMedianMs} ms (median of ${LOADS}; ratio ${firstRender.ratio}); the widget's read left at ${firstRender.widgetReadSentMedianMs} ms and had arrived at ${firstRender.widgetNetworkMedianMs} ms`);

  // 3. Requests per read, through the counting proxy.
  const context = await chromium.browser.newContext();
  const page = await context.newPage();
  await page.goto(`${site.origin}/`);
  seen.options = seen.reads = seen.other = 0;
  await page.evaluate(`(async () => {
    await import(${JSON.stringify(widgetUrl)});
    const el = document.createElement("kindling-streak");
    for (const [k, v] of Object.entries(${JSON.stringify({ ...attrs, api: proxied })})) el.setAttribute(k, v);
    const first = new Promise((resolve) => el.addEventListener("kindling-update", resolve, { once: true }));
    document.getElementById("slot").append(el);
    await first;
    for (let i = 1; i < ${READS}; i++) await el.refresh();
  })()`);
  await context.close();
  const requests = { reads: READS, preflights: seen.options, getRequests: seen.reads, otherRequests: seen.other };
  log(`${READS} reads: ${seen.reads} GET requests, ${seen.options} preflight(s), ${seen.other} other requests`);

  const result = { when: new Date().toISOString(), chromium: chromium.browser.version(), size, firstRender, requests };
  writeFileSync(join(root, "bench", "results", "widget.json"), `${JSON.stringify(result, null, 2)}\n`);
  log("written to bench/results/widget.json");
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
}
