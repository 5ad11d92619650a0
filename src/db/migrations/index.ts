// Every migration, in order. Listed in code (not discovered from files) so start-up needs no globbing or build step.
import type { Migration } from "@mikro-orm/migrations";
import { Migration0001Initial } from "./0001-initial.migration.ts";
import { Migration0002Orchestration } from "./0002-orchestration.migration.ts";
import { Migration0003EventsWebhooks } from "./0003-events-webhooks.migration.ts";
import { Migration0004SweepIndexes } from "./0004-sweep-indexes.migration.ts";
import { Migration0005MemberStreakState } from "./0005-member-streak-state.migration.ts";
import { Migration0006BatchCheck } from "./0006-batch-check.migration.ts";
import { Migration0007ApiKeyLastUse } from "./0007-api-key-last-use.migration.ts";
import { Migration0008BrowserAccess } from "./0008-browser-access.migration.ts";
import { Migration0009Leaderboards } from "./0009-leaderboards.migration.ts";
import { Migration0010StreakWindows } from "./0010-streak-windows.migration.ts";
import { Migration0011DefinitionStats } from "./0011-definition-stats.migration.ts";
import { Migration0012DataRightsImport } from "./0012-data-rights-import.migration.ts";
import { Migration0013SweepKeyset } from "./0013-sweep-keyset.migration.ts";
import { Migration0014TeamStreaks } from "./0014-team-streaks.migration.ts";
import { Migration0015TeamSweeps } from "./0015-team-sweeps.migration.ts";
import { Migration0016RetentionPartitions } from "./0016-retention-partitions.migration.ts";
import { Migration0017AdvancePage } from "./0017-advance-page.migration.ts";
import { Migration0018CitusDistribution } from "./0018-citus-distribution.migration.ts";
import { Migration0019WebhookDeliveryEvent } from "./0019-webhook-delivery-event.migration.ts";
import { Migration0020EventTimeOrderedId } from "./0020-event-time-ordered-id.migration.ts";

type MigrationClass = new (...args: ConstructorParameters<typeof Migration>) => Migration;

export const migrations: { name: string; class: MigrationClass }[] = [
  { name: "0001_initial", class: Migration0001Initial },
  { name: "0002_orchestration", class: Migration0002Orchestration },
  { name: "0003_events_webhooks", class: Migration0003EventsWebhooks },
  { name: "0004_sweep_indexes", class: Migration0004SweepIndexes },
  { name: "0005_member_streak_state", class: Migration0005MemberStreakState },
  { name: "0006_batch_check", class: Migration0006BatchCheck },
  { name: "0007_api_key_last_use", class: Migration0007ApiKeyLastUse },
  { name: "0008_browser_access", class: Migration0008BrowserAccess },
  { name: "0009_leaderboards", class: Migration0009Leaderboards },
  { name: "0010_streak_windows", class: Migration0010StreakWindows },
  { name: "0011_definition_stats", class: Migration0011DefinitionStats },
  { name: "0012_data_rights_import", class: Migration0012DataRightsImport },
  { name: "0013_sweep_keyset", class: Migration0013SweepKeyset },
  { name: "0014_team_streaks", class: Migration0014TeamStreaks },
  { name: "0015_team_sweeps", class: Migration0015TeamSweeps },
  { name: "0016_retention_partitions", class: Migration0016RetentionPartitions },
  { name: "0017_advance_page", class: Migration0017AdvancePage },
  { name: "0018_citus_distribution", class: Migration0018CitusDistribution },
  { name: "0019_webhook_delivery_event", class: Migration0019WebhookDeliveryEvent },
  { name: "0020_event_time_ordered_id", class: Migration0020EventTimeOrderedId },
];
