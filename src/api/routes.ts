// Every Kindling service with the roles allowed to call each of its methods, and the interceptor chain.
// Order matters: errors (outermost, so everything is mapped) → logging → auth → redaction (needs the caller's
// role, sees every response) → rate limit → validation.
import type { DescService } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import type { Orm } from "../db/orm.ts";
import type { Logger } from "../observability/logger.ts";
import type { Role } from "./context.ts";
import { serviceRegistration, type ServiceRegistration } from "./server.ts";
import type { Pool } from "pg";
import { DefinitionService } from "../gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../gen/kindling/v1/member_streak_service_pb.js";
import { RewardService } from "../gen/kindling/v1/reward_service_pb.js";
import { MemberService } from "../gen/kindling/v1/member_service_pb.js";
import { TenantService } from "../gen/kindling/v1/tenant_service_pb.js";
import { EventService } from "../gen/kindling/v1/event_service_pb.js";
import { LeaderboardService } from "../gen/kindling/v1/leaderboard_service_pb.js";
import { TeamService } from "../gen/kindling/v1/team_service_pb.js";
import { createDefinitionService } from "./services/definition.service.ts";
import { createActivityService } from "./services/activity.service.ts";
import { createMemberStreakService } from "./services/member-streak.service.ts";
import { createRewardService } from "./services/reward.service.ts";
import { createMemberService } from "./services/member.service.ts";
import { createTenantService } from "./services/tenant.service.ts";
import { createEventService } from "./services/event.service.ts";
import { createLeaderboardService } from "./services/leaderboard.service.ts";
import { createTeamService } from "./services/team.service.ts";
import { createTeamStore } from "../engine/teams/team-streaks.ts";
import { createLeaderboardStore } from "../engine/history/leaderboard.ts";
import { readDefinitionStats } from "../engine/history/definition-stats.ts";
import { listStreakWindows } from "../engine/history/streak-history.ts";
import { createWebhookStore } from "../engine/delivery/webhook-store.ts";
import { createRewardStore } from "../engine/rewards/reward-store.ts";
import { createMemberStore } from "../engine/members/member-store.ts";
import { createDefinitionCatalog, type DefinitionCatalog } from "../engine/definitions/definition-catalog.ts";
import { createBrowserAccess, type BrowserAccess } from "../engine/access/browser-access.ts";
import { createKeyRevocations, type KeyRevocations } from "../engine/access/key-revocations.ts";
import { createBatchIngestor, type BatchIngestorOptions } from "../engine/ingest/batch-ingestor.ts";
import { createBatchProgressReader } from "../engine/reads/batch-progress-reader.ts";
import { createErrorInterceptor } from "./interceptors/errors.interceptor.ts";
import { createCitusGuardInterceptor } from "./interceptors/citus-guard.interceptor.ts";
import { createLoggingInterceptor } from "./interceptors/logging.interceptor.ts";
import { createAuthInterceptor, createVerifiedKeyCache, type PermissionMatrix } from "./interceptors/auth.interceptor.ts";
import { createRedactionInterceptor } from "./interceptors/redaction.interceptor.ts";
import { createRateLimitInterceptor } from "./interceptors/rate-limit.interceptor.ts";
import { createValidationInterceptor } from "./interceptors/validation.interceptor.ts";
import { createCredentialStore } from "../db/repositories/credential.repository.ts";

export interface ApiDeps {
  readonly orm: Orm;
  /** Pool for the hot paths (recording, progress reads) that bypass the ORM. */
  readonly pool: Pool;
  readonly logger: Logger;
  readonly rateLimitPerSecond: number;
  readonly now?: () => number;
  /** Group-commit settings of activity recording (batch size, batches in flight); defaults otherwise. */
  readonly ingestBatch?: BatchIngestorOptions;
  /** Prepared statements on the hot paths (default true; false behind a transaction-pooling proxy). */
  readonly preparedStatements?: boolean;
  /** Store window history when recording activity (default true; KINDLING_HISTORY=false is a measuring aid). */
  readonly history?: boolean;
  /** KINDLING_RETENTION_DAYS, as GetDataRetention reports it for tenants without their own (null: forever). */
  readonly retentionDays?: number | null;
  /** The database is a Citus coordinator (src/db/database-kind.ts; default false). */
  readonly citus?: boolean;
}

const ADMIN: readonly Role[] = ["ADMIN"];
const SERVER: readonly Role[] = ["ADMIN", "SERVICE"];
const READERS: readonly Role[] = ["ADMIN", "SERVICE", "END_USER", "GUEST"];

/** The Gamopanda permission table, per RPC. A method missing here is refused at start-up. */
const permissionsByService: ReadonlyArray<[DescService, Record<string, readonly Role[]>]> = [
  [
    DefinitionService,
    {
      CreateDefinition: ADMIN,
      GetDefinition: READERS,
      ListDefinitions: READERS,
      UpdateDefinition: ADMIN,
      PublishDefinition: ADMIN,
      PauseDefinition: ADMIN,
      ResumeDefinition: ADMIN,
      ArchiveDefinition: ADMIN,
      // Program analytics are the tenant's: its backends read them, never end users or guests.
      GetDefinitionStats: SERVER,
    },
  ],
  [
    ActivityService,
    {
      // Gamopanda: streak logs are written by the tenant's backend only; end users have no access.
      RecordActivity: SERVER,
      RecordActivities: SERVER,
      // History from another system recomputes streaks and may grant rewards: the tenant's administrators only.
      ImportActivities: ADMIN,
      GetActivity: SERVER,
      ListActivities: SERVER,
    },
  ],
  [
    MemberStreakService,
    {
      GetMemberStreak: ["ADMIN", "SERVICE", "END_USER"],
      ListMemberStreaks: ["ADMIN", "SERVICE", "END_USER"],
      ListStreakWindows: ["ADMIN", "SERVICE", "END_USER"],
    },
  ],
  [
    RewardService,
    {
      // End users list, read and claim their own rewards only (enforced by the reward store).
      ListRewards: ["ADMIN", "SERVICE", "END_USER"],
      GetReward: ["ADMIN", "SERVICE", "END_USER"],
      ClaimReward: ["ADMIN", "SERVICE", "END_USER"],
      UpdateRewardFulfilment: SERVER,
      RetryReward: SERVER,
    },
  ],
  [
    MemberService,
    {
      UpsertMember: SERVER,
      GetMember: ["ADMIN", "SERVICE", "END_USER"],
      GrantFreezes: SERVER,
      RepairStreak: SERVER,
      // Data rights: the tenant's administrators act on a member's request; a backend key may not read or erase
      // everything about a member.
      ExportMember: ADMIN,
      EraseMember: ADMIN,
    },
  ],
  [
    TenantService,
    {
      GetTenant: SERVER,
      CreateApiKey: ADMIN,
      ListApiKeys: ADMIN,
      RevokeApiKey: ADMIN,
      SetEndUserJwtConfig: ADMIN,
      GetBrowserOrigins: ADMIN,
      SetBrowserOrigins: ADMIN,
      // The tenant's backend mints a session for the member it has signed in, and hands the token to the page.
      CreateMemberSession: SERVER,
      RotateMemberSessionKey: ADMIN,
      GetDataRetention: ADMIN,
      SetDataRetention: ADMIN,
    },
  ],
  [
    EventService,
    {
      // End users list and watch their own member's events only (the member filter is forced to them).
      ListEvents: ["ADMIN", "SERVICE", "END_USER"],
      WatchEvents: ["ADMIN", "SERVICE", "END_USER"],
      CreateWebhookSubscription: ADMIN,
      ListWebhookSubscriptions: ADMIN,
      DeleteWebhookSubscription: ADMIN,
      ListWebhookDeliveries: ADMIN,
    },
  ],
  [
    LeaderboardService,
    {
      // End users read boards (unless the tenant hides them) and set their own preference only.
      GetLeaderboard: ["ADMIN", "SERVICE", "END_USER"],
      GetLeaderboardRank: ["ADMIN", "SERVICE", "END_USER"],
      SetLeaderboardPreference: ["ADMIN", "SERVICE", "END_USER"],
      GetLeaderboardSettings: SERVER,
      SetLeaderboardSettings: ADMIN,
    },
  ],
  [
    TeamService,
    {
      // Teams are made and changed by the tenant's backend (which may relay members inviting each other); members
      // see their team in their own progress view.
      CreateTeam: SERVER,
      AddTeamMember: SERVER,
      RemoveTeamMember: SERVER,
      GetTeam: SERVER,
      // As MemberService's GrantFreezes and RepairStreak for a member.
      GrantTeamFreezes: SERVER,
      RepairTeamStreak: SERVER,
    },
  ],
];

function permissionMatrix(): PermissionMatrix {
  const matrix = new Map<string, readonly Role[]>();
  for (const [service, roles] of permissionsByService) {
    for (const method of service.methods) {
      const allowed = roles[method.name];
      if (!allowed) throw new Error(`no permission entry for ${service.typeName}/${method.name}`);
      matrix.set(`${service.typeName}/${method.name}`, allowed);
    }
  }
  return matrix;
}

export function createApi(deps: ApiDeps): {
  services: ServiceRegistration[];
  interceptors: Interceptor[];
  catalog: DefinitionCatalog;
  browser: BrowserAccess;
  revocations: KeyRevocations;
} {
  const now = deps.now ?? Date.now;
  const em = () => deps.orm.em.fork();
  const catalog = createDefinitionCatalog(deps.pool, 30_000, now);
  // Concurrent RecordActivity calls share transactions (group commit); see src/engine/ingest/batch-ingestor.ts.
  const preparedStatements = deps.preparedStatements ?? true;
  const citus = deps.citus ?? false;
  const ingestor = createBatchIngestor({ pool: deps.pool, catalog, now, options: { ...deps.ingestBatch, preparedStatements, history: deps.history ?? true, citus } });
  // Concurrent single-streak reads share one query; see src/engine/reads/batch-progress-reader.ts.
  const reader = createBatchProgressReader(deps.pool, catalog, { preparedStatements, citus });
  const rewards = createRewardStore({ pool: deps.pool, catalog, now });
  const members = createMemberStore({ pool: deps.pool, catalog, now });
  const verifiedKeys = createVerifiedKeyCache(undefined, now);
  const revocations = createKeyRevocations(deps.pool, {
    revoked: (keyId) => verifiedKeys.forget(keyId),
    deaf: () => verifiedKeys.distrust(),
    listening: () => verifiedKeys.trust(),
  });
  const browser = createBrowserAccess(deps.pool, undefined, now);
  const teams = createTeamStore({ pool: deps.pool, catalog, now });
  const services: ServiceRegistration[] = [
    serviceRegistration(DefinitionService, createDefinitionService({
      em, now, onChanged: (row) => catalog.invalidate(row.tenantId),
      stats: (scope, startDay, endDay) => readDefinitionStats(deps.pool, scope, startDay, endDay),
    })),
    serviceRegistration(ActivityService, createActivityService({ ingestor, reader, catalog, pool: deps.pool, now })),
    serviceRegistration(MemberStreakService, createMemberStreakService({ reader, catalog, now, teams, windows: (query, at, limit, after) => listStreakWindows(deps.pool, query, at, limit, after) })),
    serviceRegistration(RewardService, createRewardService({ rewards, catalog })),
    serviceRegistration(MemberService, createMemberService({ members, reader, pool: deps.pool, now, citus })),
    serviceRegistration(TenantService, createTenantService({
      em, now, onKeyRevoked: (keyId) => revocations.announce(keyId), browser, catalog, pool: deps.pool, retentionDays: deps.retentionDays ?? null,
    })),
    serviceRegistration(EventService, createEventService({ pool: deps.pool, catalog, webhooks: createWebhookStore(deps.pool) })),
    serviceRegistration(LeaderboardService, createLeaderboardService({ leaderboards: createLeaderboardStore(deps.pool, { preparedStatements }), catalog, now })),
    serviceRegistration(TeamService, createTeamService({ teams })),
  ];
  const interceptors = [
    createErrorInterceptor(),
    createLoggingInterceptor(deps.logger),
    createAuthInterceptor(createCredentialStore(em, (tenantId, kid) => browser.sessionKey(tenantId, kid)), permissionMatrix(), now, verifiedKeys),
    createRedactionInterceptor(),
    createRateLimitInterceptor(deps.rateLimitPerSecond, now),
    createValidationInterceptor(),
    // On Citus, features that run on one PostgreSQL only are refused with a typed error before their handlers.
    ...(citus ? [createCitusGuardInterceptor()] : []),
  ];
  return { services, interceptors, catalog, browser, revocations };
}
