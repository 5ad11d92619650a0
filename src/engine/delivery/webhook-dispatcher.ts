// Delivers persisted events to webhook subscriptions: at least once per (subscription, event), recorded once,
// signed, retried with exponential backoff, and safe to run in several worker processes at once.
//
// Two steps per tick:
// 1. Fan-out. Every subscription keeps a cursor (the last event id already turned into deliveries for it). One
//    scan of the event stream from the lowest cursor inserts a webhook_delivery row for each matching event; the
//    unique (subscription_id, event_id) key makes that idempotent, so re-scans and concurrent dispatchers record
//    each delivery once. Cursors only move over settled positions (engine/delivery/event-stream.ts), so an event that
//    commits after a later one was seen is still fanned out.
// 2. Delivery. Due rows are leased with FOR UPDATE SKIP LOCKED (their next_attempt_at moves past the lease), the
//    HTTP POSTs are made outside any transaction, and each outcome is written back: SUCCEEDED on a 2xx answer,
//    otherwise RETRYING with the next attempt after base * 2^(attempts - 1) (capped, with jitter), FAILED after
//    the last attempt. A dispatcher that dies mid-attempt leaves the row to be retried when its lease runs out.
//
// On Citus (migration 0018) webhook_delivery stays a plain table on the coordinator, webhook_subscription is a
// reference table and streak_event is distributed: no statement here joins a delivery with either, so every statement
// on webhook_delivery is plain PostgreSQL on the coordinator, and its unique key and SKIP LOCKED leases keep
// concurrent dispatchers apart as on one PostgreSQL.
//
// Each request carries Kindling-Event-Id (the event's UUID, for receivers to drop redeliveries),
// Kindling-Timestamp (Unix seconds) and Kindling-Signature: "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body)),
// where the body is the Event message in protobuf JSON form (event.proto, WebhookSubscription).
import { createHmac, randomUUID } from "node:crypto";
import type { Pool } from "pg";
import { toJsonString } from "@bufbuild/protobuf";
import type { Logger } from "../../observability/logger.ts";
import type { StreakEventType } from "../../db/entities/index.ts";
import { EventSchema } from "../../gen/kindling/v1/event_pb.js";
import { eventMessages } from "./event-messages.ts";
import { createDefinitionCatalog, type DefinitionCatalog } from "../definitions/definition-catalog.ts";
import { createStreamFloor, listEvents, pause, readSlice } from "./event-stream.ts";

export interface WebhookDispatcherOptions {
  readonly pool: Pool;
  readonly logger: Logger;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  /** Pause between ticks when there was nothing to do. Default 500 ms. */
  readonly pollIntervalMs?: number;
  /** Attempts before a delivery is FAILED. Default 10. */
  readonly maxAttempts?: number;
  /** Delay before the first retry; doubles per attempt. Default 5 s. */
  readonly baseBackoffMs?: number;
  /** Longest delay between attempts. Default 1 h. */
  readonly maxBackoffMs?: number;
  /** Time limit of one HTTP attempt. Default 10 s. */
  readonly attemptTimeoutMs?: number;
  /** Deliveries leased per tick. Default 50. */
  readonly batchSize?: number;
  /** How long a gap in event ids may stay open before it is taken as settled. Default 10 s. */
  readonly gapTimeoutMs?: number;
  readonly catalog?: DefinitionCatalog;
}

export interface WebhookDispatcher {
  start(): void;
  /** Stops polling, aborts attempts in flight (their leases expire and they are retried) and waits for the loop. */
  stop(): Promise<void>;
}

export function signWebhook(secret: string, timestampSeconds: number, body: string): string {
  return `v1=${createHmac("sha256", secret).update(`${timestampSeconds}.${body}`).digest("hex")}`;
}

interface Subscription { id: string; tenant_id: string; event_types: StreakEventType[]; definition_id: string | null; cursor: string }
interface Leased { id: string; tenant_id: string; subscription_id: string; event_id: string; attempts: number; url: string | null; secret: string | null }

const SLICE = 1000;
const MAX_FANOUT_ROUNDS = 10;

export function createWebhookDispatcher(options: WebhookDispatcherOptions): WebhookDispatcher {
  const { pool, logger } = options;
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const pollMs = options.pollIntervalMs ?? 500;
  const maxAttempts = options.maxAttempts ?? 10;
  const baseBackoffMs = options.baseBackoffMs ?? 5_000;
  const maxBackoffMs = options.maxBackoffMs ?? 3_600_000;
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 10_000;
  const batchSize = options.batchSize ?? 50;
  const leaseMs = attemptTimeoutMs + 30_000;
  const catalog = options.catalog ?? createDefinitionCatalog(pool);
  const floors = createStreamFloor(options.gapTimeoutMs ?? 10_000);
  const stopping = new AbortController();
  let loop: Promise<void> | undefined;

  /** One fan-out round; true when it should run again at once (a full slice was consumed). */
  async function fanOut(): Promise<boolean> {
    const { rows: subs } = await pool.query<Subscription>("select id, tenant_id, event_types, definition_id, cursor::text from webhook_subscription where deleted_at is null");
    if (subs.length === 0) return false;
    const from = subs.reduce((min, s) => (BigInt(s.cursor) < min ? BigInt(s.cursor) : min), BigInt(subs[0]!.cursor));
    const slice = await readSlice(pool, from, SLICE);
    const values: unknown[] = [new Date(now())];
    const tuples: string[] = [];
    for (const e of slice.entries) {
      for (const s of subs) {
        if (e.seq <= BigInt(s.cursor) || e.tenantId !== s.tenant_id) continue;
        if (s.event_types.length > 0 && !s.event_types.includes(e.type)) continue;
        if (s.definition_id !== null && e.definitionId !== s.definition_id) continue;
        const b = values.length;
        values.push(randomUUID(), s.tenant_id, s.id, e.seq.toString());
        tuples.push(`($${b + 1}::uuid, $${b + 2}::uuid, $${b + 3}::uuid, $${b + 4}::bigint, 'PENDING', 0, $1, now(), now())`);
      }
    }
    if (tuples.length > 0) {
      await pool.query(
        `insert into webhook_delivery (id, tenant_id, subscription_id, event_id, status, attempts, next_attempt_at, created_at, updated_at)
         values ${tuples.join(", ")} on conflict (subscription_id, event_id) do nothing`,
        values,
      );
    }
    const floor = floors.advance(from, slice);
    if (floor > from) {
      await pool.query("update webhook_subscription set cursor = $1::bigint where deleted_at is null and cursor < $1::bigint", [floor.toString()]);
    }
    return slice.entries.length === SLICE && floor > from;
  }

  /**
   * Leases due deliveries, then reads their subscriptions' URL and secret: two statements, so neither joins
   * webhook_delivery (a coordinator table on Citus) with webhook_subscription (a reference table there), a join
   * Citus refuses ("relation webhook_delivery is not distributed"). A subscription deleted in between answers no URL,
   * as one deleted after the lease does.
   */
  async function lease(): Promise<Leased[]> {
    const { rows } = await pool.query<Omit<Leased, "url" | "secret">>(
      `with due as (
         select id from webhook_delivery
          where status in ('PENDING', 'RETRYING') and next_attempt_at <= $1
          order by next_attempt_at limit $2 for update skip locked
       )
       update webhook_delivery d set next_attempt_at = $3, updated_at = now() from due where d.id = due.id
       returning d.id, d.tenant_id, d.subscription_id, d.event_id::text, d.attempts`,
      [new Date(now()), batchSize, new Date(now() + leaseMs)],
    );
    if (rows.length === 0) return [];
    const subs = await pool.query<{ id: string; url: string; secret: string }>(
      "select id, url, secret from webhook_subscription where id = any($1::uuid[]) and deleted_at is null",
      [[...new Set(rows.map((r) => r.subscription_id))]],
    );
    const byId = new Map(subs.rows.map((s) => [s.id, s]));
    return rows.map((r) => ({ ...r, url: byId.get(r.subscription_id)?.url ?? null, secret: byId.get(r.subscription_id)?.secret ?? null }));
  }

  function backoff(attempt: number): number {
    const exact = Math.min(maxBackoffMs, baseBackoffMs * 2 ** Math.max(0, attempt - 1));
    return Math.round(exact * (0.8 + Math.random() * 0.4));
  }

  async function attempt(d: Leased, body: string, eventId: string): Promise<void> {
    if (d.url === null || d.secret === null) {
      // The subscription was deleted after the lease: its pending deliveries are dropped.
      await pool.query("delete from webhook_delivery where id = $1 and status in ('PENDING', 'RETRYING')", [d.id]);
      return;
    }
    const timestamp = Math.floor(now() / 1000);
    let status = 0;
    let error: string | null = null;
    try {
      const res = await doFetch(d.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "Kindling-Webhooks/1",
          "kindling-event-id": eventId,
          "kindling-timestamp": String(timestamp),
          "kindling-signature": signWebhook(d.secret, timestamp, body),
        },
        body,
        redirect: "manual",
        signal: AbortSignal.any([AbortSignal.timeout(attemptTimeoutMs), stopping.signal]),
      });
      status = res.status;
      if (status < 200 || status >= 300) error = (await res.text().catch(() => "")).slice(0, 500) || `HTTP ${status}`;
      else await res.body?.cancel();
    } catch (e) {
      if (stopping.signal.aborted) return;
      error = e instanceof Error && e.name === "TimeoutError" ? `timed out after ${attemptTimeoutMs} ms` : describe(e);
    }
    const attempts = d.attempts + 1;
    const at = new Date(now());
    if (error === null) {
      await pool.query(
        `update webhook_delivery set status = 'SUCCEEDED', attempts = $2, last_status_code = $3, last_error = null, last_attempt_at = $4,
           delivered_at = $4, next_attempt_at = null, updated_at = now() where id = $1 and status in ('PENDING', 'RETRYING')`,
        [d.id, attempts, status, at],
      );
      return;
    }
    const final = attempts >= maxAttempts;
    await pool.query(
      `update webhook_delivery set status = $2, attempts = $3, last_status_code = $4, last_error = $5, last_attempt_at = $6,
         next_attempt_at = $7, updated_at = now() where id = $1 and status in ('PENDING', 'RETRYING')`,
      [d.id, final ? "FAILED" : "RETRYING", attempts, status || null, error, at, final ? null : new Date(now() + backoff(attempts))],
    );
    logger.warn({ delivery: d.id, subscription: d.subscription_id, status, attempts, final, error }, "webhook delivery failed");
  }

  async function deliver(): Promise<number> {
    const leased = await lease();
    if (leased.length === 0) return 0;
    const byTenant = new Map<string, Leased[]>();
    for (const d of leased) byTenant.set(d.tenant_id, [...(byTenant.get(d.tenant_id) ?? []), d]);
    const jobs: Promise<void>[] = [];
    for (const [tenantId, deliveries] of byTenant) {
      const seqs = [...new Set(deliveries.map((d) => BigInt(d.event_id)))];
      const events = await listEvents(pool, { tenantId, onlySeqs: seqs, limit: seqs.length });
      const messages = await eventMessages(pool, catalog, tenantId, events);
      const bySeq = new Map(events.map((e, i) => [e.seq.toString(), { body: toJsonString(EventSchema, messages[i]!), id: e.publicId }]));
      for (const d of deliveries) {
        const event = bySeq.get(d.event_id);
        if (event) jobs.push(attempt(d, event.body, event.id));
      }
    }
    await Promise.all(jobs);
    return leased.length;
  }

  async function tick(): Promise<boolean> {
    let again = false;
    for (let round = 0; round < MAX_FANOUT_ROUNDS && !stopping.signal.aborted; round++) {
      again = await fanOut();
      if (!again) break;
    }
    const delivered = stopping.signal.aborted ? 0 : await deliver();
    return again || delivered === batchSize;
  }

  return {
    start() {
      if (loop) return;
      loop = (async () => {
        while (!stopping.signal.aborted) {
          let busy = false;
          try {
            busy = await tick();
          } catch (error) {
            if (!stopping.signal.aborted) logger.error({ err: error }, "webhook dispatcher tick failed");
          }
          if (!busy) await pause(pollMs, stopping.signal);
        }
      })();
      logger.info({ pollMs }, "webhook dispatcher started");
    },
    async stop() {
      stopping.abort();
      await loop;
      loop = undefined;
      logger.info("webhook dispatcher stopped");
    },
  };
}

/** fetch wraps connection errors ("ECONNREFUSED") in a TypeError's cause; the cause says what happened. */
function describe(error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause instanceof Error) return cause.message;
  return error instanceof Error ? error.message : "request failed";
}
