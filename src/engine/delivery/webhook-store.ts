// Webhook subscriptions and their delivery log, always within one tenant. Deliveries themselves are made by
// webhook-dispatcher.ts.
import { randomBytes, randomUUID } from "node:crypto";
import type { Pool } from "pg";
import type { DeliveryStatus, StreakEventType } from "../../db/entities/index.ts";
import { notFoundError } from "../engine-error.ts";
import { latestSeq } from "./event-stream.ts";
import { inTransaction } from "../transaction.ts";

export interface StoredSubscription {
  readonly id: string;
  readonly url: string;
  readonly eventTypes: readonly StreakEventType[];
  readonly definitionId: string | null;
  readonly description: string;
  readonly createdAt: number;
}

export interface StoredDelivery {
  readonly id: string;
  readonly subscriptionId: string;
  readonly eventId: string;
  readonly eventType: StreakEventType;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly lastStatusCode: number | null;
  readonly lastError: string | null;
  readonly createdAt: number;
  readonly lastAttemptAt: number | null;
  readonly nextAttemptAt: number | null;
  readonly deliveredAt: number | null;
}

type Keyset = readonly [number, string];

export interface WebhookStore {
  /** Creates a subscription for events persisted from now on; returns it with its signing secret (shown once). */
  create(tenantId: string, input: { url: string; eventTypes: readonly StreakEventType[]; definitionId: string | null; description: string }): Promise<{ subscription: StoredSubscription; secret: string }>;
  list(tenantId: string, q: { limit: number; after?: Keyset | undefined }): Promise<StoredSubscription[]>;
  /** Deletes the subscription and drops its pending deliveries. */
  delete(tenantId: string, id: string): Promise<void>;
  deliveries(
    tenantId: string,
    q: { subscriptionId?: string | undefined; eventId?: string | undefined; statuses: readonly DeliveryStatus[]; limit: number; after?: Keyset | undefined },
  ): Promise<StoredDelivery[]>;
}

interface SubscriptionRow { id: string; url: string; event_types: StreakEventType[]; definition_id: string | null; description: string; created_at: Date }
const subscription = (r: SubscriptionRow): StoredSubscription => ({
  id: r.id, url: r.url, eventTypes: r.event_types, definitionId: r.definition_id, description: r.description, createdAt: r.created_at.getTime(),
});

interface DeliveryRow {
  id: string; subscription_id: string; public_id: string; type: StreakEventType; status: DeliveryStatus; attempts: number; last_status_code: number | null;
  last_error: string | null; created_at: Date; last_attempt_at: Date | null; next_attempt_at: Date | null; delivered_at: Date | null;
}
const ms = (d: Date | null) => (d === null ? null : d.getTime());
const delivery = (r: DeliveryRow): StoredDelivery => ({
  id: r.id, subscriptionId: r.subscription_id, eventId: r.public_id, eventType: r.type, status: r.status, attempts: r.attempts,
  lastStatusCode: r.last_status_code, lastError: r.last_error, createdAt: r.created_at.getTime(), lastAttemptAt: ms(r.last_attempt_at),
  nextAttemptAt: ms(r.next_attempt_at), deliveredAt: ms(r.delivered_at),
});

export function createWebhookStore(pool: Pool): WebhookStore {
  return {
    async create(tenantId, input) {
      const secret = `whsec_${randomBytes(32).toString("base64url")}`;
      // Starts after the newest event: a new subscription receives what happens from now on, not the history.
      const cursor = await latestSeq(pool);
      const { rows } = await pool.query<SubscriptionRow>(
        `insert into webhook_subscription (id, tenant_id, url, event_types, definition_id, description, secret, cursor, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, now()) returning id, url, event_types, definition_id, description, created_at`,
        [randomUUID(), tenantId, input.url, input.eventTypes, input.definitionId, input.description, secret, cursor.toString()],
      );
      return { subscription: subscription(rows[0]!), secret };
    },

    async list(tenantId, q) {
      const params: unknown[] = [tenantId, q.limit];
      let keyset = "";
      if (q.after) {
        params.push(new Date(q.after[0]), q.after[1]);
        keyset = "and (created_at, id) < ($3, $4::uuid)";
      }
      const { rows } = await pool.query<SubscriptionRow>(
        `select id, url, event_types, definition_id, description, created_at from webhook_subscription
          where tenant_id = $1 and deleted_at is null ${keyset} order by created_at desc, id desc limit $2`,
        params,
      );
      return rows.map(subscription);
    },

    async delete(tenantId, id) {
      await inTransaction(pool, async (client) => {
        const { rowCount } = await client.query("update webhook_subscription set deleted_at = now() where tenant_id = $1 and id = $2 and deleted_at is null", [tenantId, id]);
        if (rowCount === 0) throw notFoundError("webhook subscription", { subscription_id: id });
        await client.query("delete from webhook_delivery where tenant_id = $1 and subscription_id = $2 and status in ('PENDING', 'RETRYING')", [tenantId, id]);
      });
    },

    async deliveries(tenantId, q) {
      const where = ["d.tenant_id = $1"];
      const params: unknown[] = [tenantId];
      const add = (sql: string, ...values: unknown[]) => {
        where.push(values.reduce<string>((s, v) => {
          params.push(v);
          return s.replace("?", `$${params.length}`);
        }, sql));
      };
      if (q.subscriptionId) add("d.subscription_id = ?::uuid", q.subscriptionId);
      if (q.eventId) add("e.public_id = ?::uuid", q.eventId);
      if (q.statuses.length > 0) add("d.status = any(?::text[])", q.statuses);
      if (q.after) add("(d.created_at, d.id) < (?, ?::uuid)", new Date(q.after[0]), q.after[1]);
      params.push(q.limit);
      const { rows } = await pool.query<DeliveryRow>(
        `select d.id, d.subscription_id, e.public_id, e.type, d.status, d.attempts, d.last_status_code, d.last_error, d.created_at,
                d.last_attempt_at, d.next_attempt_at, d.delivered_at
           from webhook_delivery d join streak_event e on e.id = d.event_id and e.tenant_id = d.tenant_id
          where ${where.join(" and ")} order by d.created_at desc, d.id desc limit $${params.length}`,
        params,
      );
      return rows.map(delivery);
    },
  };
}
