// Issue 17, item 5: a soak at about 80 % of the measured maximum, 70 % reads (GetMemberStreak) and 30 % writes
// (RecordActivity) over many members and definitions, against an API process and a worker process. Reported per
// interval: p50/p99 and errors, and the RSS of each process, with the RSS slope over the run (no timed
// assertions: the figures go to bench/results/reliability.json). Asserted: no call fails.
// Sizes: RELIABILITY_SOAK_S (reduced 40; full 600), intervals of RELIABILITY_SOAK_INTERVAL_S (10; 60).
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActivityService } from "../../src/gen/kindling/v1/activity_service_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";
import { connectToSharedTemporal, type SharedTemporal } from "../support/temporal.ts";
import { clientFor, createTenant, dailyDefinition, transportFor, type Tenant } from "./shared.ts";
import { rssBytes, size, sleep, slope, startKindlingChild, summarise, writeFigures, type KindlingChild } from "./support.ts";

const SOAK_S = size("RELIABILITY_SOAK_S", 40, 600);
const INTERVAL_S = size("RELIABILITY_SOAK_INTERVAL_S", 10, 60);
const MEMBERS = 2_000;
const DEFINITIONS = 10;

let database: TestDatabase;
let temporal: SharedTemporal;
let api: KindlingChild;
let worker: KindlingChild;
let tenant: Tenant;

beforeAll(async () => {
  [database, temporal] = await Promise.all([createTestDatabase({ label: "soak" }), connectToSharedTemporal("soak")]);
  api = await startKindlingChild("api", { databaseUrl: database.url });
  worker = await startKindlingChild("worker", { databaseUrl: database.url, temporalAddress: temporal.address, temporalNamespace: temporal.namespace, taskQueue: temporal.taskQueue });
  tenant = await createTenant(database.url);
});
afterAll(async () => {
  await worker?.stop();
  await api?.stop();
  await temporal?.close();
  await database?.drop();
});

describe("reliability: soak", () => {
  it("reliability/soak_at_80_percent_of_max_answers_every_call_and_reports_rss_per_interval", async () => {
    const transport = transportFor(api.url!, tenant, "grpc", 30_000);
    const definitions: string[] = [];
    for (let d = 0; d < DEFINITIONS; d++) definitions.push(await dailyDefinition(transport, `Soak ${d}`));
    const activities = clientFor(ActivityService, transport);
    const streaks = clientFor(MemberStreakService, transport);
    let sequence = 0;
    const call = async (read: boolean) => {
      const member = `soak-${Math.floor(Math.random() * MEMBERS)}`;
      const definitionId = definitions[Math.floor(Math.random() * DEFINITIONS)]!;
      if (read) {
        await streaks.getMemberStreak({ memberExternalId: member, definitionId }).catch((e: unknown) => {
          if ((e as { code?: number }).code !== 5) throw e; // NOT_FOUND: no activity yet
        });
      } else {
        await activities.recordActivity({ activity: { memberRef: { case: "memberExternalId", value: member }, target: { case: "definitionId", value: definitionId }, uniqueIdentifier: `${sequence++}-${randomUUID()}` } });
      }
    };
    // Warm up, then the maximum: 32 closed-loop clients for 10 s.
    for (let i = 0; i < 200; i++) await call(i % 10 < 7);
    let maxCalls = 0;
    const maxUntil = Date.now() + 10_000;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (Date.now() < maxUntil) {
        await call(Math.random() < 0.7);
        maxCalls++;
      }
    }));
    const maxRate = maxCalls / 10;
    const rate = Math.max(1, Math.floor(maxRate * 0.8));

    // The soak: open loop at `rate`, at most 256 in flight.
    interface Bucket { read: number[]; write: number[]; errors: number }
    const buckets: Bucket[] = [];
    const rss: Array<{ atS: number; api: number | undefined; worker: number | undefined }> = [];
    let inFlight = 0;
    let errors = 0;
    let skipped = 0;
    const started = Date.now();
    const sampler = (async () => {
      while (Date.now() - started < SOAK_S * 1000) {
        rss.push({ atS: (Date.now() - started) / 1000, api: await rssBytes(api.child.pid!), worker: await rssBytes(worker.child.pid!) });
        await sleep(5_000);
      }
    })();
    const pending = new Set<Promise<void>>();
    let issued = 0;
    while (Date.now() - started < SOAK_S * 1000) {
      const due = Math.floor(((Date.now() - started) / 1000) * rate);
      while (issued < due) {
        issued++;
        if (inFlight >= 256) {
          skipped++;
          continue;
        }
        const read = Math.random() < 0.7;
        const at = performance.now();
        const index = Math.floor((Date.now() - started) / (INTERVAL_S * 1000));
        const bucket = (buckets[index] ??= { read: [], write: [], errors: 0 });
        inFlight++;
        const p: Promise<void> = call(read).then(
          () => void (read ? bucket.read : bucket.write).push(performance.now() - at),
          () => {
            bucket.errors++;
            errors++;
          },
        ).finally(() => {
          inFlight--;
          pending.delete(p);
        });
        pending.add(p);
      }
      await sleep(5);
    }
    await Promise.all(pending);
    await sampler;

    const mb = (b: number | undefined) => (b === undefined ? null : Math.round((b / 1048576) * 10) / 10);
    const slopeOf = (pick: (s: (typeof rss)[number]) => number | undefined) =>
      Math.round(slope(rss.filter((s) => pick(s) !== undefined).map((s) => [s.atS / 60, pick(s)! / 1048576] as const)) * 100) / 100;
    await writeFigures("5-soak", {
      seconds: SOAK_S,
      intervalSeconds: INTERVAL_S,
      members: MEMBERS,
      definitions: DEFINITIONS,
      measuredMaxCallsPerSecond: maxRate,
      targetCallsPerSecond: rate,
      callsIssued: issued,
      skippedOverInFlightCap: skipped,
      errors,
      intervals: buckets.map((b, i) => ({ fromS: i * INTERVAL_S, read: summarise(b.read), write: summarise(b.write), errors: b.errors })),
      rssMb: rss.map((s) => ({ atS: Math.round(s.atS), api: mb(s.api), worker: mb(s.worker) })),
      rssSlopeMbPerMinute: { api: slopeOf((s) => s.api), worker: slopeOf((s) => s.worker) },
    });
    expect(errors).toBe(0);
    expect(buckets.length).toBeGreaterThan(0);
  });
});
