// `npm run bench:storage`: what Kindling stores per member, measured, for docs/scaling.md's capacity model.
//
// Embedded PostgreSQL; the API records, through its real path (RecordActivities, 500 a call), one purchase a day for
// STORAGE_DAYS days (default 30) for STORAGE_MEMBERS members (default 2,000) on a daily SUM definition with a
// milestone every 7 days (points, claimable), each day's activities arriving on that day (the server's clock moves,
// so every activity is applied and every event and reward is what a real month produces). Then VACUUM ANALYZE, and
// per table: rows, bytes with indexes and TOAST, bytes per row; and per member and day of activity. Written to
// bench/results/storage.json.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { createClient } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createTemporaryDataRoot, startEmbeddedPostgres } from "../src/infra/embedded-postgres.ts";
import { loadConfig } from "../src/config/config.ts";
import { createLogger } from "../src/observability/logger.ts";
import { startKindling } from "../src/app.ts";
import { createOrm } from "../src/db/orm.ts";
import { createTenantWithAdminKey } from "../src/db/repositories/tenant.repository.ts";
import { DefinitionService } from "../src/gen/kindling/v1/definition_service_pb.js";
import { ActivityService } from "../src/gen/kindling/v1/activity_service_pb.js";
import { CalendarPeriod, ConditionType, FulfilmentMode, RewardKind } from "../src/gen/kindling/v1/definition_pb.js";
import { apiKeyTransport } from "./pgbench.ts";

const members = Number(process.env.STORAGE_MEMBERS ?? 2000);
const days = Number(process.env.STORAGE_DAYS ?? 30);
const DAY = 86_400_000;
const TABLES = ["member", "member_streak", "member_streak_state", "activity", "streak_event", "reward", "outbox_message"];

async function main() {
  const root = await createTemporaryDataRoot("kindling-storage-");
  const postgres = await startEmbeddedPostgres({ dataDir: join(root, "postgres"), port: 0 });
  const start = Math.floor(Date.now() / DAY) * DAY - days * DAY;
  let clock = start;
  const kindling = await startKindling(
    loadConfig({ DATABASE_URL: postgres.databaseUrl, PORT: "0", LOG_LEVEL: "warn", RATE_LIMIT_PER_SECOND: "0" }),
    createLogger("warn"),
    "api",
    { now: () => clock },
  );
  const orm = await createOrm(postgres.databaseUrl, 2);
  const db = new pg.Pool({ connectionString: postgres.databaseUrl, max: 2 });
  try {
    const tenant = await createTenantWithAdminKey(orm.em.fork(), { id: randomUUID(), name: "storage" });
    const transport = apiKeyTransport(kindling.apiUrl!, tenant);
    const defs = createClient(DefinitionService, transport);
    const { definition } = await defs.createDefinition({
      definition: {
        name: "Daily purchase", eventTypes: ["purchase"],
        window: { kind: { case: "calendar", value: { period: CalendarPeriod.DAILY, timeZone: "UTC", resetTime: "00:00" } } },
        condition: { type: ConditionType.SUM, min: 50 },
        milestones: [{ threshold: 7, repeatable: true, reward: { kind: RewardKind.POINTS, points: 100, fulfilmentMode: FulfilmentMode.CLAIM } }],
      },
    });
    await defs.publishDefinition({ definitionId: definition!.id });
    const activities = createClient(ActivityService, transport);
    const started = performance.now();
    for (let day = 0; day < days; day++) {
      clock = start + day * DAY + 12 * 3_600_000;
      for (let base = 0; base < members; base += 500) {
        await activities.recordActivities({
          omitProgress: true,
          activities: Array.from({ length: Math.min(500, members - base) }, (_, k) => ({
            memberRef: { case: "memberExternalId" as const, value: `member-${base + k}` },
            target: { case: "eventType" as const, value: "purchase" },
            occurTime: timestampFromMs(clock),
            value: 64.5,
            uniqueIdentifier: `order-${day}-${base + k}-${randomUUID()}`,
            metadata: { channel: "web" },
          })),
        });
      }
    }
    console.log(`recorded ${members * days} activities in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    await db.query(`vacuum analyze ${TABLES.join(", ")}`);
    const tables: Record<string, { rows: number; bytes: number; bytesPerRow: number }> = {};
    for (const table of TABLES) {
      const { rows } = await db.query<{ n: number; bytes: string }>(`select count(*)::int as n, pg_total_relation_size('${table}') as bytes from ${table}`);
      const n = rows[0]!.n;
      const bytes = Number(rows[0]!.bytes);
      tables[table] = { rows: n, bytes, bytesPerRow: n > 0 ? Math.round(bytes / n) : 0 };
    }
    const total = Object.values(tables).reduce((s, t) => s + t.bytes, 0);
    const perMemberDay = Math.round(total / (members * days));
    const result = {
      date: new Date().toISOString(),
      settings: { members, days, note: "one applied activity a day per member, daily SUM definition, repeatable 7-day milestone (claimable points)" },
      tables,
      totalBytes: total,
      bytesPerMemberPerDayOfActivity: perMemberDay,
      // The same member active every day of a year, nothing deleted (Kindling has no retention yet).
      bytesPerMemberPerYearWithoutRetention: perMemberDay * 365,
    };
    console.log(JSON.stringify(result, null, 2));
    mkdirSync(join(import.meta.dirname, "results"), { recursive: true });
    writeFileSync(join(import.meta.dirname, "results", "storage.json"), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await db.end();
    await orm.close();
    await kindling.stop();
    await postgres.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
