import { defineEntity, p } from "@mikro-orm/core";

export type DeliveryStatus = "PENDING" | "SUCCEEDED" | "FAILED";

const WebhookDeliverySchema = defineEntity({
  name: "WebhookDelivery",
  tableName: "webhook_delivery",
  uniques: [{ properties: ["subscriptionId", "eventId"] }],
  indexes: [{ properties: ["tenantId", "subscriptionId"] }],
  properties: {
    id: p.uuid().primary(),
    tenantId: p.uuid(),
    subscriptionId: p.uuid(),
    eventId: p.bigint("string"),
    status: p.string().length(16).$type<DeliveryStatus>(),
    attempts: p.integer().default(0),
    lastStatusCode: p.integer().nullable(),
    lastError: p.text().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});

export class WebhookDelivery extends WebhookDeliverySchema.class {}
WebhookDeliverySchema.setClass(WebhookDelivery);
export { WebhookDeliverySchema };
