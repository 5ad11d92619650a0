// On a Citus cluster (issue 18, docs/scaling.md "Beyond one PostgreSQL: Citus") some features still run on one
// PostgreSQL only: their statements join member rows across shards, or lock and delete them in statements Citus
// does not route to one shard. Rather than fail with a raw SQL error (INTERNAL) part-way, their calls are refused
// before a handler runs: FAILED_PRECONDITION with reason CITUS_UNSUPPORTED, a message naming Citus, and nothing
// written. Installed only when the API runs against a Citus coordinator; on one PostgreSQL it is not there at all.
import type { Interceptor } from "@connectrpc/connect";
import { failedPrecondition } from "../errors.ts";
import { ActivityService } from "../../gen/kindling/v1/activity_service_pb.js";
import { DefinitionService, type CreateDefinitionRequest } from "../../gen/kindling/v1/definition_service_pb.js";
import { TeamService } from "../../gen/kindling/v1/team_service_pb.js";

export const CITUS_UNSUPPORTED = "CITUS_UNSUPPORTED";

/** Why `method` of `service` with `message` cannot run on Citus, or undefined when it can. */
function unsupported(service: string, method: string, message: unknown): string | undefined {
  if (service === ActivityService.typeName && method === ActivityService.method.importActivities.name) return "ImportActivities";
  if (service === TeamService.typeName) return "team streaks (TeamService)";
  if (service === DefinitionService.typeName && method === DefinitionService.method.createDefinition.name) {
    // UpdateDefinition cannot set `team` (not in its update_mask paths), so creation is the only way to one.
    return (message as CreateDefinitionRequest).definition?.team !== undefined ? "team definitions" : undefined;
  }
  return undefined;
}

export function createCitusGuardInterceptor(): Interceptor {
  // Not an async function (see rate-limit.interceptor.ts): a refusal is a rejected promise.
  return (next) => (req) => {
    const feature = req.stream ? undefined : unsupported(req.service.typeName, req.method.name, req.message);
    if (feature !== undefined) {
      return Promise.reject(failedPrecondition(CITUS_UNSUPPORTED, `${feature} cannot run on a Citus cluster yet: it needs one PostgreSQL (docs/scaling.md, "Beyond one PostgreSQL: Citus")`, { feature }));
    }
    return next(req);
  };
}
