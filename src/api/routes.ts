// Every Kindling service with the roles allowed to call each of its methods, and the interceptor chain.
// Order matters: errors (outermost, so everything is mapped) → logging → auth → rate limit → validation.
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
import { createDefinitionService } from "./services/definition.service.ts";
import { createActivityService } from "./services/activity.service.ts";
import { createMemberStreakService } from "./services/member-streak.service.ts";
import { createDefinitionCatalog, type DefinitionCatalog } from "../engine/definition-catalog.ts";
import { createActivityIngestor } from "../engine/activity-ingestor.ts";
import { createProgressReader } from "../engine/progress-reader.ts";
import { createErrorInterceptor } from "./interceptors/errors.interceptor.ts";
import { createLoggingInterceptor } from "./interceptors/logging.interceptor.ts";
import { createAuthInterceptor, type PermissionMatrix } from "./interceptors/auth.interceptor.ts";
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
    },
  ],
  [
    ActivityService,
    {
      // Gamopanda: streak logs are written by the tenant's backend only; end users have no access.
      RecordActivity: SERVER,
      RecordActivities: SERVER,
      GetActivity: SERVER,
      ListActivities: SERVER,
    },
  ],
  [
    MemberStreakService,
    {
      GetMemberStreak: ["ADMIN", "SERVICE", "END_USER"],
      ListMemberStreaks: ["ADMIN", "SERVICE", "END_USER"],
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

export function createApi(deps: ApiDeps): { services: ServiceRegistration[]; interceptors: Interceptor[]; catalog: DefinitionCatalog } {
  const now = deps.now ?? Date.now;
  const em = () => deps.orm.em.fork();
  const catalog = createDefinitionCatalog(deps.pool, 30_000, now);
  const ingestor = createActivityIngestor({ pool: deps.pool, catalog, now });
  const reader = createProgressReader(deps.pool, catalog);
  const services: ServiceRegistration[] = [
    serviceRegistration(DefinitionService, createDefinitionService({ em, now, onChanged: (row) => catalog.invalidate(row.tenantId) })),
    serviceRegistration(ActivityService, createActivityService({ ingestor, reader, catalog, pool: deps.pool, now })),
    serviceRegistration(MemberStreakService, createMemberStreakService({ reader, catalog, now })),
  ];
  const interceptors = [
    createErrorInterceptor(),
    createLoggingInterceptor(deps.logger),
    createAuthInterceptor(createCredentialStore(em), permissionMatrix(), now),
    createRateLimitInterceptor(deps.rateLimitPerSecond, now),
    createValidationInterceptor(),
  ];
  return { services, interceptors, catalog };
}
