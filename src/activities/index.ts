// Every activity the Kindling worker registers, built from its dependencies (STYLE.md: createActivities(deps)).
// Workflows import only the type of this object.
import type { Pool } from "pg";
import { createDefinitionCatalog } from "../engine/definitions/definition-catalog.ts";
import { createRewardEngine, type RewardEngineDeps } from "../engine/rewards/reward-fulfilment.ts";
import { createSweepActivities } from "./sweep.activities.ts";
import { createRewardActivities } from "./reward.activities.ts";
import { createRetentionActivities } from "./retention.activities.ts";
import type { RetentionPolicy } from "../engine/retention/retention.ts";

export interface ActivityDeps {
  readonly pool: Pool;
  /** Rows per set-based sweep statement (default 50,000). */
  readonly breakPageSize?: number;
  readonly fetch?: typeof fetch;
  /** Fault injection for crash tests (see RewardEngineDeps). */
  readonly afterIssueCommitted?: RewardEngineDeps["afterIssueCommitted"];
  /** The global retention (KINDLING_RETENTION_DAYS); absent keeps everything of tenants without their own. */
  readonly retention?: RetentionPolicy;
  /** The database is a Citus coordinator (src/db/database-kind.ts; default false). */
  readonly citus?: boolean;
}

export function createActivities(deps: ActivityDeps) {
  // No cache: a sweep or a fulfilment must see the definition's current state and pauses, and it reads them
  // once per activity — far less often than the API, whose cache this would otherwise share.
  const catalog = createDefinitionCatalog(deps.pool, 0);
  const engine = createRewardEngine({ pool: deps.pool, catalog, fetch: deps.fetch, afterIssueCommitted: deps.afterIssueCommitted });
  return {
    ...createSweepActivities({ pool: deps.pool, catalog, breakPageSize: deps.breakPageSize, citus: deps.citus ?? false }),
    ...createRewardActivities(engine),
    ...createRetentionActivities({ pool: deps.pool, retention: deps.retention }),
  };
}

export type KindlingActivities = ReturnType<typeof createActivities>;
