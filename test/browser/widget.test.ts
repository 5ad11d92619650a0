// The streak widget in a real browser (issue 12): Debian's chromium opens a brand's page served from another
// origin than the API; the page embeds /widget/kindling-streak.js with member sessions minted by the test the way
// a brand's backend would. The widget must show the member's state, follow activity recorded over gRPC (grpc-js,
// as an internal service sends it) without a reload, tick its countdown, claim a reward and show a refusal, pass
// axe-core, and a page on an origin the tenant did not allow must read nothing.
// Screenshots of every state go to test-artifacts/widget/ (docs/screenshots/ keeps copies of them).
import { createRequire } from "node:module";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { Page } from "playwright-core";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { startTestApi, type TestApi } from "../support/api.ts";
import { activityOnDay, createLiveDefinition, today, DAY } from "../support/fixtures.ts";
import { artifactsDir, launchChromium, servePages, type LaunchedBrowser, type PageServer } from "../support/browser.ts";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";

const shots = artifactsDir("widget");
const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

let api: TestApi;
let clockOffset = 0;
let chromium: LaunchedBrowser;
let brand: PageServer;
let stranger: PageServer;
let daily: string;
let spend: string;
let sprint: string;
let anaToken: string;
const brandPages: Record<string, string> = {};
const strangerPages: Record<string, string> = {};

/** A member session as the brand's backend mints it (TenantService.CreateMemberSession with a SERVICE key). */
async function memberToken(member: string): Promise<string> {
  const { token } = await api.client(TenantService).createMemberSession({ memberExternalId: member });
  return token;
}

function widget(attrs: Record<string, string>): string {
  const list = Object.entries(attrs)
    .map(([k, v]) => `${k}="${v}"`)
    .join(" ");
  return `<kindling-streak ${list}></kindling-streak>`;
}

function hostPage(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script type="module" src="${api.url}/widget/kindling-streak.js"></script>
<style>body{font:15px system-ui,sans-serif;margin:1.5rem;background:#f6f8fa;color:#1f2328}main{display:grid;grid-template-columns:repeat(auto-fill,minmax(22rem,1fr));gap:1rem;align-items:start}
h1{font-size:1.3rem}h2{font-size:.95rem;margin:0 0 .4rem;color:#57606a;font-weight:600}</style></head>
<body><h1>${title}</h1><main>${body}</main></body></html>`;
}

/** Records one activity over plain gRPC with @grpc/grpc-js, from the .proto files, as an internal service would. */
async function recordOverGrpcJs(member: string, definitionId: string, key: string): Promise<void> {
  const root = join(import.meta.dirname, "..", "..", "proto");
  const pkgDef = protoLoader.loadSync(["kindling/v1/activity_service.proto"], { includeDirs: [root, join(root, "vendor")], keepCase: false, longs: String, enums: String, defaults: true, oneofs: true });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- proto-loader yields untyped constructors
  const pkg = grpc.loadPackageDefinition(pkgDef) as any;
  const client = new pkg.kindling.v1.ActivityService(new URL(api.url).host, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set("apikey", api.admin.keyId);
  metadata.set("secretkey", api.admin.secret);
  try {
    await new Promise<void>((resolve, reject) => {
      client.recordActivity(
        { activity: { memberExternalId: member, definitionId, occurTime: { seconds: String(Math.floor(Date.now() / 1000)), nanos: 0 }, uniqueIdentifier: key } },
        metadata,
        (error: grpc.ServiceError | null) => (error ? reject(error) : resolve()),
      );
    });
  } finally {
    client.close();
  }
}

/** The widget's host element (its data-status and data-live attributes). */
const card = (page: Page, id: string) => page.locator(`#${id}`);
/** The text the member sees: the card inside the widget's shadow root. */
const seen = async (page: Page, id: string) => (await page.locator(`#${id} .card`).innerText()).replace(/\s+/g, " ");
const text = (page: Page, id: string, part: string) => page.locator(`#${id} [part="${part}"]`);

async function shot(page: Page, id: string, name: string): Promise<void> {
  await page.locator(`#${id}`).screenshot({ path: join(shots, `widget-${name}.png`), animations: "disabled" });
}

beforeAll(async () => {
  api = await startTestApi({ label: "widget", now: () => Date.now() + clockOffset });
  const defs = api.client(DefinitionService);
  const activities = api.client(ActivityService);
  daily = (
    await createLiveDefinition(defs, {
      name: "Daily visit",
      startTime: timestampFromMs(today() - 10 * DAY),
      milestones: [
        { threshold: 1, reward: { kind: RewardKind.BADGE, fulfilmentMode: FulfilmentMode.PROVIDER, badge: { name: "First spark" } } },
        { threshold: 2, name: "Two in a row", reward: { kind: RewardKind.POINTS, points: 20, fulfilmentMode: FulfilmentMode.CLAIM } },
        { threshold: 5, reward: { kind: RewardKind.BADGE, fulfilmentMode: FulfilmentMode.PROVIDER, badge: { name: "Five alive" } } },
      ],
      freezePolicy: { maxHeld: 3, initialGrant: 1 },
      display: {
        localizations: [
          { language: "en", title: "Daily visit" },
          { language: "fr", title: "Visite quotidienne", inProgressLabel: "En cours", brokenLabel: "Rompue" },
        ],
      },
    })
  ).id;
  spend = (await createLiveDefinition(defs, { name: "Spend $50 a day", condition: { type: ConditionType.SUM, min: 50 } })).id;
  sprint = (await createLiveDefinition(defs, { name: "One-day sprint", completionTarget: 1 })).id;

  // ana: yesterday done, today not yet — at risk until midnight UTC. bo: last seen five days ago — broken.
  // Past days are recorded while the server's clock says it is that day (late of it), then the clock runs true.
  clockOffset = today() - 4 * DAY - 3_600_000 - Date.now();
  await activityOnDay(activities, "bo", daily, -5);
  clockOffset = today() - 3_600_000 - Date.now();
  await activityOnDay(activities, "ana", daily, -1);
  clockOffset = 0;
  await activities.recordActivity({
    activity: { memberRef: { case: "memberExternalId", value: "ana" }, target: { case: "definitionId", value: spend }, occurTime: timestampFromMs(Math.min(Date.now(), today() + 3_600_000)), value: 20.5, uniqueIdentifier: "ana-spend-1" },
  });
  await activityOnDay(activities, "ana", sprint, 0);

  chromium = await launchChromium();
  const ana = await memberToken("ana");
  anaToken = ana;
  const bo = await memberToken("bo");
  brand = await servePages(brandPages);
  stranger = await servePages(strangerPages);
  await api.client(TenantService).setBrowserOrigins({ origins: [brand.origin] });
  const base = { api: api.url, lang: "en" };
  Object.assign(brandPages, {
    "/": hostPage(
      "A brand's page",
      [
        `<section><h2>Live</h2>${widget({ id: "main", ...base, definition: daily, token: ana })}</section>`,
        `<section><h2>Same member, another tab (not live)</h2>${widget({ id: "stale", ...base, definition: daily, token: ana, live: "off" })}</section>`,
        `<section><h2>Spend, in dollars</h2>${widget({ id: "sum", ...base, definition: spend, token: ana, currency: "USD" })}</section>`,
        `<section><h2>Completed</h2>${widget({ id: "completed", ...base, definition: sprint, token: ana })}</section>`,
        `<section><h2>Broken, in French</h2>${widget({ id: "broken", ...base, lang: "fr", definition: daily, token: bo })}</section>`,
        `<section style="grid-column: 1 / -1"><h2>All of ana's streaks</h2><kindling-streaks id="list" api="${api.url}" token="${ana}" lang="en" currency="USD"></kindling-streaks></section>`,
      ].join(""),
    ),
  });
  Object.assign(strangerPages, { "/": hostPage("Another site", `<section><h2>Not allowed</h2>${widget({ id: "main", ...base, definition: daily, token: ana })}</section>`) });
});

afterAll(async () => {
  await chromium?.close();
  await brand?.close();
  await stranger?.close();
  await api?.close();
});

describe("the widget on a brand's page (another origin)", () => {
  let page: Page;

  beforeAll(async () => {
    page = await chromium.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${brand.origin}/`);
    await page.evaluate("window.loadedOnce = true");
  });

  it("widget/first_render_shows_the_members_state", async () => {
    await expect.poll(() => card(page, "main").getAttribute("data-status"), { timeout: 10_000 }).toBe("at-risk");
    await expect.poll(() => text(page, "main", "count").textContent()).toMatch(/^1\s*day$/);
    const main = await seen(page, "main");
    expect(main).toContain("Daily visit");
    expect(main).toContain("Longest: 1");
    expect(main).toContain("0 of 1 this period");
    expect(main).toContain("Next milestone: Two in a row 1 period to go");
    expect(main).toContain("Freezes held 1");
    expect(await page.locator("#main li.earned").allInnerTexts()).toEqual([expect.stringContaining("First spark")]);
    expect(await page.locator("#main li.locked").allInnerTexts()).toEqual([expect.stringContaining("Five alive")]);
    expect(await page.locator("#main button").count()).toBe(0);

    await expect.poll(() => card(page, "sum").getAttribute("data-status"), { timeout: 10_000 }).toBe("not-started");
    expect(await seen(page, "sum")).toContain("$20.50 of $50.00");
    await expect.poll(() => card(page, "completed").getAttribute("data-status"), { timeout: 10_000 }).toBe("completed");
    await expect.poll(() => card(page, "broken").getAttribute("data-status"), { timeout: 10_000 }).toBe("broken");
    expect(await text(page, "broken", "status").textContent()).toBe("Rompue");
    expect(await text(page, "broken", "title").textContent()).toBe("Visite quotidienne");

    // The list: one card per LIVE definition, each in its state.
    await expect.poll(() => page.locator("#list kindling-streak").count(), { timeout: 10_000 }).toBe(3);
    const listed = await page.locator("#list kindling-streak").evaluateAll((cards) => cards.map((c) => [c.getAttribute("definition"), c.getAttribute("data-status")]));
    expect(Object.fromEntries(listed)).toEqual({ [daily]: "at-risk", [spend]: "not-started", [sprint]: "completed" });

    await shot(page, "main", "at-risk");
    await shot(page, "sum", "not-started-sum");
    await shot(page, "completed", "completed");
    await shot(page, "broken", "broken");
  });

  it("widget/countdown_ticks_down_to_the_window_close", async () => {
    const countdown = text(page, "main", "countdown");
    const seconds = async () => {
      const parts = (await countdown.textContent())!.replace(/^\d+d /, "").split(":").map(Number);
      return parts.reduce((acc, v) => acc * 60 + v, 0);
    };
    const first = await seconds();
    const untilMidnight = (today() + DAY - Date.now()) / 1000;
    expect(Math.abs(first - untilMidnight)).toBeLessThan(60);
    await page.waitForTimeout(2_100);
    const second = await seconds();
    expect(first - second).toBeGreaterThanOrEqual(1);
    expect(first - second).toBeLessThanOrEqual(4);
    expect(await countdown.getAttribute("role")).toBe("timer");

    // A card in the <kindling-streaks> list ticks too (the list moves its cards when it redraws them).
    const listed = page.locator(`#list kindling-streak[definition="${daily}"] [part="countdown"]`);
    const listedSeconds = async () => (await listed.textContent())!.replace(/^\d+d /, "").split(":").map(Number).reduce((acc, v) => acc * 60 + v, 0);
    const before = await listedSeconds();
    await page.waitForTimeout(1_200);
    const after = await listedSeconds();
    expect(before - after).toBeGreaterThanOrEqual(1);
    expect(before - after).toBeLessThanOrEqual(3);
  });

  it("widget/activity_recorded_over_grpc_appears_within_2s_without_reload", async () => {
    await expect.poll(() => card(page, "main").getAttribute("data-live"), { timeout: 10_000 }).toBe("");
    await recordOverGrpcJs("ana", daily, "ana-today-grpc-js");
    await page.waitForFunction(`document.querySelector("#main").shadowRoot.querySelector('[part="count"]')?.textContent.startsWith("2")`, undefined, { timeout: 2_000 });
    expect(await card(page, "main").getAttribute("data-status")).toBe("in-progress");
    expect(await page.evaluate("window.loadedOnce")).toBe(true);
    await expect.poll(() => page.locator("#main button").count()).toBe(1);
    expect(await seen(page, "main")).toContain("1 of 1 this period");
    await shot(page, "main", "in-progress-reward");
    // The list follows the member's events too.
    await expect.poll(() => page.locator(`#list kindling-streak[definition="${daily}"]`).getAttribute("data-status"), { timeout: 2_000 }).toBe("in-progress");
    await shot(page, "list", "list");
  });

  it("widget/claim_works_and_a_second_claim_shows_the_refusal", async () => {
    // The second, not-live widget reads once while the reward is still unclaimed, like a tab left open.
    await page.evaluate(`document.querySelector("#stale").refresh()`);
    await expect.poll(() => page.locator("#stale button").count()).toBe(1);

    await page.locator("#main button").press("Enter");
    await expect.poll(() => text(page, "main", "note").textContent()).toBe("Claimed: +20 points.");
    await expect.poll(() => page.locator("#main button").count()).toBe(0);
    await shot(page, "main", "claimed");

    await page.locator("#stale button").click();
    await expect.poll(() => text(page, "stale", "note").textContent()).toBe("Already claimed.");
    // The refusal re-reads: the stale reward is gone, the refusal stays on screen.
    await expect.poll(() => page.locator("#stale button").count()).toBe(0);
    expect(await text(page, "stale", "note").textContent()).toBe("Already claimed.");
    await shot(page, "stale", "claim-refused");
  });

  it("widget/axe_core_finds_no_serious_or_critical_violations", async () => {
    await page.addScriptTag({ path: axePath });
    const violations = await page.evaluate<{ id: string; impact: string | null; nodes: number }[]>(`axe.run(document).then((result) =>
      result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length })))`);
    expect(violations.filter((v) => v.impact === "serious" || v.impact === "critical")).toEqual([]);
    await page.screenshot({ path: join(shots, "widget-page.png"), fullPage: true, animations: "disabled" });
  });

  it("widget/follows_reduced_motion", async () => {
    const animation = () => page.evaluate<string>(`getComputedStyle(document.querySelector("#main").shadowRoot.querySelector(".flame")).animationName`);
    expect(await animation()).toBe("flicker");
    await page.emulateMedia({ reducedMotion: "reduce" });
    expect(await animation()).toBe("none");
  });
});

describe("a member with no activity yet", () => {
  it("widget/not_started_reads_cost_one_get_each_and_one_preflight", async () => {
    // A counting proxy in front of the API sees what the browser sends: every GET and every CORS preflight.
    const seenRequests: string[] = [];
    const upstream = new URL(api.url);
    const proxy = http.createServer((req, res) => {
      seenRequests.push(`${req.method} ${new URL(req.url ?? "/", "http://x").pathname}`);
      const forward = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: { ...req.headers, host: upstream.host } }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on("error", () => res.writeHead(502).end());
      req.pipe(forward);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    brandPages["/new-member"] = hostPage("A new member", widget({ id: "fresh", api: proxyUrl, lang: "en", definition: daily, token: await memberToken("cy"), live: "off" }));
    const page = await chromium.browser.newPage({ viewport: { width: 640, height: 520 } });
    try {
      await page.goto(`${brand.origin}/new-member`);
      await expect.poll(() => card(page, "fresh").getAttribute("data-status"), { timeout: 10_000 }).toBe("not-started");
      expect(await text(page, "fresh", "title").textContent()).toBe("Daily visit");
      for (let i = 0; i < 3; i++) await page.evaluate(`document.querySelector("#fresh").refresh()`);
      const reads = seenRequests.filter((r) => r.startsWith("GET ") && r.includes("MemberStreakService"));
      expect(reads).toEqual(Array.from({ length: 4 }, () => "GET /kindling.v1.MemberStreakService/ListMemberStreaks"));
      expect(seenRequests.filter((r) => r.startsWith("OPTIONS "))).toHaveLength(1);
      expect(seenRequests.filter((r) => !r.startsWith("GET ") && !r.startsWith("OPTIONS "))).toEqual([]);
      await shot(page, "fresh", "not-started-new-member");
    } finally {
      await page.close();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});

describe("a page on an origin the tenant did not allow", () => {
  it("widget/origin_not_allowed_reads_nothing", async () => {
    const page = await chromium.browser.newPage({ viewport: { width: 640, height: 420 } });
    await page.goto(`${stranger.origin}/`);
    await expect.poll(() => page.locator("#main .error-box").count(), { timeout: 10_000 }).toBe(1);
    expect(await page.locator("#main [part=count]").count()).toBe(0);
    expect(await page.locator("#main .error-box").textContent()).toMatch(/Could not reach Kindling from this page/);
    // Nor can the page's own script read the progress with the member's token.
    const read = await page.evaluate(async ({ url, definitionId, token }) => {
      const message = encodeURIComponent(JSON.stringify({ memberExternalId: "ana", definitionId }));
      try {
        const res = await fetch(`${url}/kindling.v1.MemberStreakService/GetMemberStreak?connect=v1&encoding=json&message=${message}`, { headers: { authorization: `Bearer ${token}` } });
        return `read ${res.status}: ${await res.text()}`;
      } catch (error) {
        return `refused: ${String(error)}`;
      }
    }, { url: api.url, definitionId: daily, token: anaToken });
    expect(read).toMatch(/^refused: TypeError/);
    await shot(page, "main", "origin-not-allowed");
    await page.close();
  });
});

describe("/demo rebuilt on the widget", () => {
  it("demo/define_record_and_see_the_widget_change_without_a_secret", async () => {
    const demo = await startTestApi({ label: "widget_demo", env: { KINDLING_DEMO: "true" } });
    const page = await chromium.browser.newPage({ viewport: { width: 1200, height: 820 } });
    const sentSecrets: string[] = [];
    page.on("request", (req) => {
      // An API key goes as apikey/secretkey headers or as a two-part bearer; a member session is a three-part JWT.
      const { apikey, secretkey, authorization } = req.headers();
      if (apikey !== undefined || secretkey !== undefined || (authorization !== undefined && !/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/.test(authorization))) sentSecrets.push(req.url());
    });
    try {
      await page.goto(`${demo.url}/demo`);
      await page.getByLabel("Name").fill("Morning coffee");
      await page.getByRole("button", { name: "Create & publish" }).click();
      const widget = page.locator("#slot kindling-streak");
      await expect.poll(() => widget.getAttribute("data-status"), { timeout: 10_000 }).toBe("not-started");
      await expect.poll(() => widget.getAttribute("data-live"), { timeout: 10_000 }).toBe("");
      await page.getByRole("button", { name: "Record activity now" }).click();
      await expect.poll(() => widget.getAttribute("data-status"), { timeout: 5_000 }).toBe("in-progress");
      expect(await page.locator('#slot kindling-streak [part="count"]').textContent()).toMatch(/^1\s*day$/);
      await page.locator("#slot kindling-streak").screenshot({ path: join(shots, "widget-demo-member.png"), animations: "disabled" });
      await page.screenshot({ path: join(shots, "widget-demo.png"), fullPage: true, animations: "disabled" });
      // The panel's calls carry no key at all; the widget's carry only the member session (a JWT: three parts).
      expect(sentSecrets).toEqual([]);
      const html = await (await fetch(`${demo.url}/demo`)).text();
      expect(html).not.toMatch(/secretkey|apikey/i);
    } finally {
      await page.close();
      await demo.close();
    }
  });
});
