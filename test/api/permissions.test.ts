// Who may call what: the permission table of every RPC of every Kindling service, checked by real calls (Connect
// JSON over HTTP) against a real server. The RPCs are enumerated from the generated service descriptors in
// src/gen, so an RPC added to a .proto file without a row here fails `permissions/every_rpc_has_a_row`.
//
// The callers (columns):
//   admin          the tenant's ADMIN API key
//   service        the tenant's SERVICE API key
//   member         an end user, alice, with the tenant's own JWT (HS256, see EndUserJwtConfig)
//   session        the same end user with a member session Kindling minted (CreateMemberSession)
//   other-member   another end user of the tenant, bob, asking about alice
//   guest          no credentials but `x-kindling-tenant: <tenant id>`
//   other-tenant   another tenant's ADMIN API key, asking about this tenant's resources
//   nobody         no credentials at all
//
// The answers (cells):
//   ok       the call got past authentication and authorisation: any answer but the two below (NOT_FOUND for
//            another tenant's resource, ALREADY_CLAIMED, INVALID_ARGUMENT for a made-up etag... all count)
//   denied   PERMISSION_DENIED: the caller's role may not call this RPC, or (MEMBER_MISMATCH) an end user named
//            another member
//   unauth   UNAUTHENTICATED
//
// Requests name alice, her reward and this tenant's definitions wherever the RPC takes such ids, so the
// other-member column shows the member checks, not only the role checks. Another tenant's admin passes the role
// check and then finds nothing of this tenant's (tenant isolation is proven resource by resource in
// tenant-auth.test.ts, `isolation/...`).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { DefinitionService } from "../../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService, ImportMilestonePolicy } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { TenantService } from "../../src/gen/kindling/v1/tenant_service_pb.js";
import { LeaderboardMetric } from "../../src/gen/kindling/v1/leaderboard_service_pb.js";
import { ApiKeyRole, JwtAlgorithm } from "../../src/gen/kindling/v1/tenant_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../../src/gen/kindling/v1/definition_pb.js";
import { startTestApi, type TestApi } from "../support/api.ts";
import { activityOnDay, createLiveDefinition } from "../support/fixtures.ts";

const CALLERS = ["admin", "service", "member", "session", "other-member", "guest", "other-tenant", "nobody"] as const;
type Caller = (typeof CALLERS)[number];
type Answer = "ok" | "denied" | "unauth";

const TABLE = `
                                                      admin  service  member  session  other-member  guest   other-tenant  nobody
  kindling.v1.DefinitionService/CreateDefinition      ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.DefinitionService/GetDefinition         ok     ok       ok      ok       ok            ok      ok            unauth
  kindling.v1.DefinitionService/ListDefinitions       ok     ok       ok      ok       ok            ok      ok            unauth
  kindling.v1.DefinitionService/UpdateDefinition      ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.DefinitionService/PublishDefinition     ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.DefinitionService/PauseDefinition       ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.DefinitionService/ResumeDefinition      ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.DefinitionService/ArchiveDefinition     ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.DefinitionService/GetDefinitionStats    ok     ok       denied  denied   denied        denied  ok            unauth

  kindling.v1.ActivityService/RecordActivity          ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.ActivityService/RecordActivities        ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.ActivityService/ImportActivities        ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.ActivityService/GetActivity             ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.ActivityService/ListActivities          ok     ok       denied  denied   denied        denied  ok            unauth

  kindling.v1.MemberStreakService/GetMemberStreak     ok     ok       ok      ok       denied        denied  ok            unauth
  kindling.v1.MemberStreakService/ListMemberStreaks   ok     ok       ok      ok       denied        denied  ok            unauth
  kindling.v1.MemberStreakService/ListStreakWindows   ok     ok       ok      ok       denied        denied  ok            unauth

  kindling.v1.RewardService/ListRewards               ok     ok       ok      ok       denied        denied  ok            unauth
  kindling.v1.RewardService/GetReward                 ok     ok       ok      ok       denied        denied  ok            unauth
  kindling.v1.RewardService/ClaimReward               ok     ok       ok      ok       denied        denied  ok            unauth
  kindling.v1.RewardService/UpdateRewardFulfilment    ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.RewardService/RetryReward               ok     ok       denied  denied   denied        denied  ok            unauth

  kindling.v1.MemberService/UpsertMember              ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.MemberService/GetMember                 ok     ok       ok      ok       denied        denied  ok            unauth
  kindling.v1.MemberService/GrantFreezes              ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.MemberService/RepairStreak              ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.MemberService/ExportMember              ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.MemberService/EraseMember               ok     denied   denied  denied   denied        denied  ok            unauth

  kindling.v1.TenantService/GetTenant                 ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.TenantService/CreateApiKey              ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.TenantService/ListApiKeys               ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.TenantService/RevokeApiKey              ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.TenantService/SetEndUserJwtConfig       ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.TenantService/GetBrowserOrigins         ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.TenantService/SetBrowserOrigins         ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.TenantService/CreateMemberSession       ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.TenantService/RotateMemberSessionKey    ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.TenantService/GetDataRetention          ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.TenantService/SetDataRetention          ok     denied   denied  denied   denied        denied  ok            unauth

  kindling.v1.EventService/ListEvents                 ok     ok       ok      ok       denied        denied  ok            unauth
  kindling.v1.EventService/WatchEvents                ok     ok       ok      ok       denied        denied  ok            unauth
  kindling.v1.EventService/CreateWebhookSubscription  ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.EventService/ListWebhookSubscriptions   ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.EventService/DeleteWebhookSubscription  ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.EventService/ListWebhookDeliveries      ok     denied   denied  denied   denied        denied  ok            unauth
  kindling.v1.LeaderboardService/GetLeaderboard           ok     ok       ok      ok       ok            denied  ok            unauth
  kindling.v1.LeaderboardService/GetLeaderboardRank       ok     ok       ok      ok       denied        denied  ok            unauth
  kindling.v1.LeaderboardService/SetLeaderboardPreference ok     ok       ok      ok       denied        denied  ok            unauth
  kindling.v1.LeaderboardService/GetLeaderboardSettings   ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.LeaderboardService/SetLeaderboardSettings   ok     denied   denied  denied   denied        denied  ok            unauth

  kindling.v1.TeamService/CreateTeam                  ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.TeamService/AddTeamMember               ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.TeamService/RemoveTeamMember            ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.TeamService/GetTeam                     ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.TeamService/GrantTeamFreezes            ok     ok       denied  denied   denied        denied  ok            unauth
  kindling.v1.TeamService/RepairTeamStreak            ok     ok       denied  denied   denied        denied  ok            unauth
`;
// ListEvents and WatchEvents: an end user naming no member gets their own events (the member filter is forced to
// the caller); naming another member is MEMBER_MISMATCH, as everywhere else. A leaderboard is the definition's,
// not a member's: any end user of the tenant reads it (with display names, see leaderboard_service.proto), but a
// rank or a preference is asked or set only for oneself. Exporting or erasing everything about a member is for
// the tenant's administrators only (they act on the member's request); not even the member may.

function parseTable(text: string): Map<string, Record<Caller, Answer>> {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
  const header = lines.shift()!.split(/\s+/);
  expect(header).toEqual([...CALLERS]);
  const rows = new Map<string, Record<Caller, Answer>>();
  for (const line of lines) {
    const [rpc, ...cells] = line.split(/\s+/);
    expect(cells, rpc).toHaveLength(CALLERS.length);
    for (const cell of cells) expect(["ok", "denied", "unauth"], `${rpc}: ${cell}`).toContain(cell);
    expect(rows.has(rpc!), `${rpc} twice`).toBe(false);
    rows.set(rpc!, Object.fromEntries(CALLERS.map((c, i) => [c, cells[i]])) as Record<Caller, Answer>);
  }
  return rows;
}
const table = parseTable(TABLE);

/** Every service generated from proto/kindling/v1 (not a hand-kept list). */
async function generatedServices(): Promise<DescService[]> {
  const dir = fileURLToPath(new URL("../../src/gen/kindling/v1/", import.meta.url));
  const services: DescService[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith("_pb.js")).sort()) {
    const module = (await import(`${dir}${file}`)) as Record<string, unknown>;
    for (const value of Object.values(module)) if ((value as { kind?: string } | null)?.kind === "service") services.push(value as DescService);
  }
  return services;
}

const JWT_SECRET = "permissions-table-hs256-secret-0123456789";
const MADE_UP = "00000000-0000-4000-8000-000000000000";

let api: TestApi;
let services: DescService[];
let liveDef: string;
let scratchDef: string;
let aliceReward: string;
let aliceActivity: string;
let serviceToken: string;
const headersOf = {} as Record<Caller, () => Promise<Record<string, string>>>;

beforeAll(async () => {
  services = await generatedServices();
  api = await startTestApi({ label: "permissions" });
  const tenants = api.client(TenantService);
  await tenants.setEndUserJwtConfig({ algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: JWT_SECRET } });
  serviceToken = (await tenants.createApiKey({ name: "permissions-service", role: ApiKeyRole.SERVICE })).bearerToken;
  const other = await api.newTenant("another tenant");
  const defs = api.client(DefinitionService);
  liveDef = (await createLiveDefinition(defs, { name: "Daily", milestones: [{ threshold: 1, reward: { kind: RewardKind.POINTS, points: 5, fulfilmentMode: FulfilmentMode.CLAIM } }] })).id;
  scratchDef = (await createLiveDefinition(defs, { name: "Scratch, for lifecycle calls" })).id;
  const recorded = await activityOnDay(api.client(ActivityService), "alice", liveDef, 0);
  aliceActivity = recorded.activity!.id;
  aliceReward = recorded.results[0]!.rewards[0]!.id;

  const jwt = async (sub: string) =>
    `Bearer ${await new SignJWT({ tenant_id: api.admin.tenantId }).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setIssuedAt().setExpirationTime("10m").sign(new TextEncoder().encode(JWT_SECRET))}`;
  headersOf.admin = async () => ({ apikey: api.admin.keyId, secretkey: api.admin.secret });
  headersOf.service = async () => ({ authorization: `Bearer ${serviceToken}` });
  headersOf.member = async () => ({ authorization: await jwt("alice") });
  // Minted per call: RotateMemberSessionKey (by the admin, in the table) ends every session minted before.
  headersOf.session = async () => ({ authorization: `Bearer ${(await api.client(TenantService, { authorization: `Bearer ${serviceToken}` }).createMemberSession({ memberExternalId: "alice" })).token}` });
  headersOf["other-member"] = async () => ({ authorization: await jwt("bob") });
  headersOf.guest = async () => ({ "x-kindling-tenant": api.admin.tenantId });
  headersOf["other-tenant"] = async () => ({ apikey: other.keyId, secretkey: other.secret });
  headersOf.nobody = async () => ({});
});
afterAll(async () => {
  await api?.close();
});

/** A request per RPC, naming this tenant's resources and alice wherever the RPC takes them. */
function requestFor(rpc: string): Record<string, unknown> {
  const activity = { memberRef: { case: "memberExternalId", value: "alice" }, target: { case: "definitionId", value: liveDef }, uniqueIdentifier: `perm-${Math.random()}` };
  const requests: Record<string, Record<string, unknown>> = {
    "DefinitionService/CreateDefinition": {
      definition: {
        name: "Made by the table",
        window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
        condition: { type: ConditionType.COUNT, min: 1 },
      },
    },
    "DefinitionService/GetDefinition": { definitionId: liveDef },
    "DefinitionService/ListDefinitions": {},
    "DefinitionService/UpdateDefinition": { definitionId: scratchDef, definition: { description: "touched" }, updateMask: { paths: ["description"] } },
    "DefinitionService/PublishDefinition": { definitionId: scratchDef },
    "DefinitionService/PauseDefinition": { definitionId: scratchDef },
    "DefinitionService/ResumeDefinition": { definitionId: scratchDef },
    "DefinitionService/ArchiveDefinition": { definitionId: scratchDef },
    "DefinitionService/GetDefinitionStats": { definitionId: liveDef, startDay: "2025-01-01", endDay: "2025-01-31" },
    "ActivityService/RecordActivity": { activity },
    "ActivityService/RecordActivities": { activities: [activity] },
    "ActivityService/ImportActivities": { activities: [{ ...activity, occurTime: timestampFromMs(Date.now() - 86_400_000) }], milestonePolicy: ImportMilestonePolicy.NONE },
    "ActivityService/GetActivity": { activityId: aliceActivity },
    "ActivityService/ListActivities": { memberExternalId: "alice" },
    "MemberStreakService/GetMemberStreak": { memberExternalId: "alice", definitionId: liveDef },
    "MemberStreakService/ListMemberStreaks": { memberExternalId: "alice" },
    "MemberStreakService/ListStreakWindows": { memberExternalId: "alice", definitionId: liveDef },
    "RewardService/ListRewards": { memberExternalId: "alice" },
    "RewardService/GetReward": { rewardId: aliceReward },
    "RewardService/ClaimReward": { target: { case: "rewardId", value: aliceReward } },
    "RewardService/UpdateRewardFulfilment": { rewardId: MADE_UP, couponCode: "CODE-1", updateMask: { paths: ["coupon_code"] } },
    "RewardService/RetryReward": { rewardId: MADE_UP },
    "MemberService/UpsertMember": { member: { externalId: "alice" } },
    "MemberService/GetMember": { memberExternalId: "alice" },
    "MemberService/GrantFreezes": { memberExternalId: "alice", definitionId: liveDef, count: 1 },
    "MemberService/RepairStreak": { memberExternalId: "alice", definitionId: liveDef },
    "MemberService/ExportMember": { memberExternalId: "alice" },
    // A member of its own: erasing alice would change what later rows read.
    "MemberService/EraseMember": { memberExternalId: "erased-by-the-table" },
    "TenantService/GetTenant": {},
    "TenantService/CreateApiKey": { name: "made-by-the-table", role: ApiKeyRole.SERVICE },
    "TenantService/ListApiKeys": {},
    "TenantService/RevokeApiKey": { apiKeyId: "kk_made_up" },
    // The same configuration again, so the member column keeps working.
    "TenantService/SetEndUserJwtConfig": { algorithm: JwtAlgorithm.HS256, key: { case: "hmacSecret", value: JWT_SECRET } },
    "TenantService/GetBrowserOrigins": {},
    "TenantService/SetBrowserOrigins": { origins: ["https://shop.example.com"] },
    "TenantService/CreateMemberSession": { memberExternalId: "alice" },
    "TenantService/RotateMemberSessionKey": {},
    // 0: the server's default, so no tenant's retention changes.
    "TenantService/GetDataRetention": {},
    "TenantService/SetDataRetention": { retentionDays: 0 },
    "EventService/ListEvents": { memberExternalId: "alice" },
    "EventService/WatchEvents": { memberExternalId: "alice" },
    "EventService/CreateWebhookSubscription": { url: "https://hooks.example.com/kindling" },
    "EventService/ListWebhookSubscriptions": {},
    "EventService/DeleteWebhookSubscription": { subscriptionId: MADE_UP },
    "EventService/ListWebhookDeliveries": { subscriptionId: MADE_UP },
    "LeaderboardService/GetLeaderboard": { definitionId: liveDef, metric: LeaderboardMetric.CURRENT_COUNT, limit: 10 },
    "LeaderboardService/GetLeaderboardRank": { definitionId: liveDef, metric: LeaderboardMetric.CURRENT_COUNT, memberExternalId: "alice", neighbours: 1 },
    // A display name only: opting alice out would change what later rows read.
    "LeaderboardService/SetLeaderboardPreference": { memberExternalId: "alice", displayName: "Alice" },
    "LeaderboardService/GetLeaderboardSettings": {},
    // Boards stay visible, so the end-user columns of the rows above keep reading them.
    "LeaderboardService/SetLeaderboardSettings": { hiddenFromEndUsers: false },
    "TeamService/CreateTeam": { definitionId: liveDef, name: "Pair", memberExternalIds: ["alice", "bob"] },
    "TeamService/AddTeamMember": { teamId: MADE_UP, memberExternalId: "alice" },
    "TeamService/RemoveTeamMember": { teamId: MADE_UP, memberExternalId: "alice" },
    "TeamService/GetTeam": { teamId: MADE_UP },
    "TeamService/GrantTeamFreezes": { teamId: MADE_UP, count: 1 },
    "TeamService/RepairTeamStreak": { teamId: MADE_UP },
  };
  const request = requests[rpc.replace(/^kindling\.v1\./, "")];
  if (!request) throw new Error(`no request for ${rpc}: add one beside its row`);
  return request;
}

function classify(error: unknown): Answer | string {
  if (error === undefined) return "ok";
  const ce = ConnectError.from(error);
  if (ce.code === Code.PermissionDenied) return "denied";
  if (ce.code === Code.Unauthenticated) return "unauth";
  // Any other refusal is the handler's own answer (the caller got through); INTERNAL would be a bug worth seeing.
  return ce.code === Code.Internal || ce.code === Code.Unknown ? `${Code[ce.code]}: ${ce.rawMessage}` : "ok";
}

async function call(service: DescService, methodName: string, caller: Caller): Promise<Answer | string> {
  const method = service.methods.find((m) => m.name === methodName)!;
  const headers = await headersOf[caller]();
  const withHeaders: Interceptor = (next) => (req) => {
    for (const [k, v] of Object.entries(headers)) req.header.set(k, v);
    return next(req);
  };
  const client = createClient(service, createConnectTransport({ baseUrl: api.url, httpVersion: "1.1", interceptors: [withHeaders] })) as unknown as Record<
    string,
    (req: unknown, options?: { signal?: AbortSignal }) => unknown
  >;
  const request = requestFor(`${service.typeName}/${methodName}`);
  if (method.methodKind === "server_streaming") {
    // A refused stream ends at once with its error; an accepted one stays open waiting for events, so it counts
    // as ok once its first message arrives or it has stayed open for a while without a refusal.
    const stop = new AbortController();
    const stream = client[method.localName]!(request, { signal: stop.signal }) as AsyncIterable<unknown>;
    const first = stream[Symbol.asyncIterator]().next();
    const open = new Promise<"open">((resolve) => setTimeout(() => resolve("open"), 1_500));
    const outcome = await Promise.race([first.then(() => undefined, (e: unknown) => e ?? new Error("stream failed")), open]);
    stop.abort();
    await first.catch(() => undefined);
    return outcome === "open" ? "ok" : classify(outcome);
  }
  const promise = client[method.localName]!(request) as Promise<unknown>;
  return classify(await promise.then(() => undefined, (e: unknown) => e));
}

describe("permission table", () => {
  it("permissions/every_rpc_has_a_row_and_every_row_an_rpc", () => {
    const rpcs = services.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`));
    expect(services.map((s) => s.typeName)).toContain("kindling.v1.DefinitionService");
    const missing = rpcs.filter((rpc) => !table.has(rpc));
    expect(missing, "RPCs without a row in TABLE: decide who may call them and add one").toEqual([]);
    expect([...table.keys()].filter((rpc) => !rpcs.includes(rpc)), "rows for RPCs that no longer exist").toEqual([]);
  });

  it("permissions/every_rpc_answers_every_caller_as_the_table_says", async () => {
    const mismatches: string[] = [];
    let calls = 0;
    for (const service of services) {
      for (const method of service.methods) {
        const rpc = `${service.typeName}/${method.name}`;
        const expected = table.get(rpc);
        if (!expected) continue; // reported by the test above
        // The callers that are refused first, so a successful change (a claim, an archive) comes last.
        for (const caller of [...CALLERS].reverse()) {
          const answer = await call(service, method.name, caller);
          calls++;
          if (answer !== expected[caller]) mismatches.push(`${rpc} as ${caller}: expected ${expected[caller]}, got ${answer}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
    expect(calls).toBe(table.size * CALLERS.length);
  });
});
