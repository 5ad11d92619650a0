// Issue 17, item 1: PostgreSQL SIGKILLed (the postmaster and every backend) and restarted while 32 clients record
// activities and retry on retryable codes. Every acknowledged activity is stored exactly once, none that was
// refused is stored, and every member's streak equals the domain's recompute from the stored history.
// Sizes: RELIABILITY_PG_ACTIVITIES (reduced 1,600; full 20,000), RELIABILITY_PG_KILLS (1; 3).
import { randomUUID } from "node:crypto";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { clientFor, createTenant, dailyDefinition, streaksAgainstRecompute, transportFor, type Tenant } from "./shared.ts";
import { codeOf, RETRYABLE, size, sleep, startKindlingChild, startOwnPostgres, summarise, writeFigures, type KindlingChild, type OwnPostgres } from "./support.ts";

const ACTIVITIES = size("RELIABILITY_PG_ACTIVITIES", 1_600, 20_000);
const KILLS = size("RELIABILITY_PG_KILLS", 1, 3);
const CLIENTS = 32;
const DAY = 86_400_000;

let postgres: OwnPostgres;
let api: KindlingChild;
let tenant: Tenant;

beforeAll(async () => {
  postgres = await startOwnPostgres();
  api = await startKindlingChild("api", { databaseUrl: postgres.current.databaseUrl, env: { DATABASE_POOL_SIZE: "20" } });
  tenant = await createTenant(postgres.current.databaseUrl);
});
afterAll(async () => {
  await api?.kill();
  await postgres?.stop();
});

interface Planned {
  uniqueIdentifier: string;
  member: string;
  occurMs: number;
  // Refused by design: addressed to a definition that does not exist (NOT_FOUND), never retried.
  bogus: boolean;
}

describe("reliability: PostgreSQL killed while recording", () => {
  it("reliability/postgres_sigkill_loses_no_acknowledged_activity_and_stores_no_refused_one", async () => {
    const transport = transportFor(api.url!, tenant, "grpc", 10_000);
    const definitionId = await dailyDefinition(transport, "Crash daily");
    const activities = clientFor(ActivityService, transport);

    // Each member belongs to one client and gets its activities in event-time order over the last days, so
    // streaks grow and the recompute has something to check; every 40th is addressed to a missing definition.
    const now = Date.now();
    const perMember = 8;
    const members = Math.ceil(ACTIVITIES / perMember);
    const queues: Planned[][] = Array.from({ length: CLIENTS }, () => []);
    for (let m = 0; m < members; m++) {
      for (let i = 0; i < perMember && m * perMember + i < ACTIVITIES; i++) {
        const n = m * perMember + i;
        // Days 6..0 ago, later ones in the same day; the last ones land today, before `now`.
        const occurMs = now - Math.max(0, 6 - i) * DAY - (perMember - i) * 1_000;
        queues[m % CLIENTS]!.push({ uniqueIdentifier: `pg-${m}-${i}`, member: `member-${m}`, occurMs, bogus: n % 40 === 39 });
      }
    }

    const acknowledged = new Set<string>();
    const refused = new Map<string, Code>();
    const errorsByCode: Record<string, number> = {};
    let retries = 0;
    let done = 0;
    const latencies: number[] = [];
    const missing = randomUUID();

    const client = async (queue: Planned[]) => {
      for (const item of queue) {
        for (let attempt = 0; ; attempt++) {
          const started = performance.now();
          try {
            await activities.recordActivity({
              activity: {
                memberRef: { case: "memberExternalId", value: item.member },
                target: { case: "definitionId", value: item.bogus ? missing : definitionId },
                occurTime: timestampFromMs(item.occurMs),
                uniqueIdentifier: item.uniqueIdentifier,
              },
            });
            latencies.push(performance.now() - started);
            acknowledged.add(item.uniqueIdentifier);
            break;
          } catch (error) {
            const code = codeOf(error);
            errorsByCode[Code[code]] = (errorsByCode[Code[code]] ?? 0) + 1;
            if (!RETRYABLE.has(code)) {
              refused.set(item.uniqueIdentifier, code);
              break;
            }
            retries++;
            await sleep(Math.min(1_000, 50 * 2 ** Math.min(attempt, 5)));
          }
        }
        done++;
      }
    };

    const outages: Array<{ killedAtDone: number; downMs: number; restartMs: number }> = [];
    const chaos = async () => {
      for (let k = 1; k <= KILLS; k++) {
        const at = Math.floor((ACTIVITIES * k) / (KILLS + 1));
        while (done < at) await sleep(10);
        const killedAt = Date.now();
        const killedAtDone = done;
        await postgres.kill();
        await sleep(1_000);
        const restartAt = Date.now();
        await postgres.restart();
        outages.push({ killedAtDone, downMs: Date.now() - killedAt, restartMs: Date.now() - restartAt });
      }
    };

    const started = Date.now();
    const watch = setInterval(() => {
      if (process.env.RELIABILITY_DEBUG) process.stderr.write(`done ${done}/${ACTIVITIES} retries ${retries} ${JSON.stringify(errorsByCode)} api exit ${api.child.exitCode} ${api.child.signalCode}\n\n`);
      if (process.env.RELIABILITY_DEBUG) void import("node:fs").then((fs) => fs.writeFileSync("/tmp/api-out.log", api.output.join("")));
    }, 2_000);
    try {
      await Promise.all([...queues.map(client), chaos()]);
    } finally {
      clearInterval(watch);
    }
    const seconds = (Date.now() - started) / 1000;

    const pool = new pg.Pool({ connectionString: postgres.current.databaseUrl, max: 4 });
    try {
      const { rows } = await pool.query<{ unique_identifier: string; n: number }>(
        "select unique_identifier, count(*)::int as n from activity where tenant_id = $1 group by 1",
        [tenant.tenantId],
      );
      const stored = new Map(rows.map((r) => [r.unique_identifier, r.n]));
      const lost = [...acknowledged].filter((id) => stored.get(id) !== 1);
      const storedRefused = [...refused.keys()].filter((id) => stored.has(id));
      const unexpectedRefusals = [...refused.entries()].filter(([id, code]) => !(id.length > 0 && code === Code.NotFound && isBogus(id)));
      const streaks = await streaksAgainstRecompute(pool, tenant.tenantId, definitionId, Date.now());

      await writeFigures("1-postgres-kill", {
        activities: ACTIVITIES,
        clients: CLIENTS,
        members,
        kills: outages,
        acknowledged: acknowledged.size,
        refused: refused.size,
        retries,
        errorsByCode,
        seconds,
        latency: summarise(latencies),
        storedActivities: rows.length,
        lostAcknowledged: lost.length,
        storedRefused: storedRefused.length,
        streaksChecked: streaks.checked,
        streakMismatches: streaks.mismatches.length,
      });

      expect(outages).toHaveLength(KILLS);
      expect(retries).toBeGreaterThan(0);
      expect(unexpectedRefusals).toEqual([]);
      expect(lost).toEqual([]);
      expect(storedRefused).toEqual([]);
      expect(acknowledged.size + refused.size).toBe(ACTIVITIES);
      expect(streaks.checked).toBe(members);
      expect(streaks.mismatches).toEqual([]);
    } finally {
      await pool.end();
    }

    function isBogus(id: string): boolean {
      const [, m, i] = id.split("-").map(Number);
      return (m! * perMember + i!) % 40 === 39;
    }
  });
});
