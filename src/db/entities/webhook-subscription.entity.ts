import { defineEntity, p } from "@mikro-orm/core";

const WebhookSubscriptionSchema = defineEntity({
  name: "WebhookSubscription",
  tableName: "webhook_subscription",
  indexes: [{ properties: ["tenantId"] }],
  properties: {
    id: p.uuid().primary(),
    tenantId: p.uuid(),
    url: p.string().length(2048),
    eventTypes: p.array().default([]),
    /** Only events of this definition; null for every definition. */
    definitionId: p.uuid().nullable(),
    description: p.string().length(256).default(""),
    /** Last event id already turned into deliveries for this subscription (the dispatcher's fan-out position). */
    cursor: p.bigint("string").defaultRaw("0"),
    /** HMAC-SHA256 signing secret; returned once at creation. */
    secret: p.string().length(128),
    createdAt: p.datetime().onCreate(() => new Date()),
    deletedAt: p.datetime().nullable(),
  },
});

export class WebhookSubscription extends WebhookSubscriptionSchema.class {}
WebhookSubscriptionSchema.setClass(WebhookSubscription);
export { WebhookSubscriptionSchema };
