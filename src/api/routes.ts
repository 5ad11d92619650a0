// Every Kindling service with the roles allowed to call each of its methods, and the interceptor chain.
// Order matters: errors (outermost, so everything is mapped) → logging → auth → rate limit → validation.
import type { DescService } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import type { Orm } from "../db/orm.ts";
import type { Logger } from "../observability/logger.ts";
import type { Role } from "./context.ts";
import { serviceRegistration, type ServiceRegistration } from "./server.ts";
import { DefinitionService } from "../gen/kindling/v1/definition_service_pb.js";
import { createDefinitionService } from "./services/definition.service.ts";
import { createErrorInterceptor } from "./interceptors/errors.interceptor.ts";
import { createLoggingInterceptor } from "./interceptors/logging.interceptor.ts";
import { createAuthInterceptor, type PermissionMatrix } from "./interceptors/auth.interceptor.ts";
import { createRateLimitInterceptor } from "./interceptors/rate-limit.interceptor.ts";
import { createValidationInterceptor } from "./interceptors/validation.interceptor.ts";
import { createCredentialStore } from "../db/repositories/credential.repository.ts";

export interface ApiDeps {
  readonly orm: Orm;
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
  // Keep the matrix honest: SERVER is used once more services land.
  void SERVER;
  return matrix;
}

export function createApi(deps: ApiDeps): { services: ServiceRegistration[]; interceptors: Interceptor[] } {
  const now = deps.now ?? Date.now;
  const em = () => deps.orm.em.fork();
  const services: ServiceRegistration[] = [
    serviceRegistration(DefinitionService, createDefinitionService({ em, now, onChanged: async () => {} })),
  ];
  const interceptors = [
    createErrorInterceptor(),
    createLoggingInterceptor(deps.logger),
    createAuthInterceptor(createCredentialStore(em), permissionMatrix(), now),
    createRateLimitInterceptor(deps.rateLimitPerSecond, now),
    createValidationInterceptor(),
  ];
  return { services, interceptors };
}
