import { defineEntity, p } from "@mikro-orm/core";
import { WEBHOOK_DELIVERY_EVENT_INDEX } from "../migrations/0019-webhook-delivery-event.migration.ts";

export type DeliveryStatus = "PENDING" | "RETRYING" | "SUCCEEDED" | "FAILED";

const WebhookDeliverySchema = defineEntity({
  name: "WebhookDelivery",
  tableName: "webhook_delivery",
  uniques: [{ properties: ["subscriptionId", "eventId"] }],
  indexes: [
    { properties: ["tenantId", "subscriptionId"] },
    { name: "webhook_delivery_due", expression: `create index "webhook_delivery_due" on "webhook_delivery" ("next_attempt_at") where "status" in ('PENDING', 'RETRYING')` },
    { name: "webhook_delivery_event", expression: WEBHOOK_DELIVERY_EVENT_INDEX },
  ],
  properties: {
    id: p.uuid().primary(),
    tenantId: p.uuid(),
    subscriptionId: p.uuid(),
    eventId: p.bigint("string"),
    status: p.string().length(16).$type<DeliveryStatus>(),
    attempts: p.integer().default(0),
    lastStatusCode: p.integer().nullable(),
    lastError: p.text().nullable(),
    /** When the next attempt is due (PENDING / RETRYING); also the lease while an attempt is in flight. */
    nextAttemptAt: p.datetime().nullable(),
    lastAttemptAt: p.datetime().nullable(),
    deliveredAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});

export class WebhookDelivery extends WebhookDeliverySchema.class {}
WebhookDeliverySchema.setClass(WebhookDelivery);
export { WebhookDeliverySchema };
