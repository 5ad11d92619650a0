// Events and webhooks (EventService, src/engine/delivery/webhook-dispatcher.ts):
// - streak_event.public_id: the event's UUID in the API (Event.id, Kindling-Event-Id); the bigserial id stays
//   the internal stream position (Event.cursor). A default, so every existing writer gets one for free.
// - webhook_subscription.definition_id / description: the subscription's filter and note;
//   webhook_subscription.cursor: the last event id the dispatcher has turned into deliveries for it, so each
//   event becomes one delivery row per subscription (the unique (subscription_id, event_id) key holds it).
// - webhook_delivery.next_attempt_at / last_attempt_at / delivered_at: the retry schedule and the delivery log;
//   the partial index finds due deliveries without scanning finished ones.
import { Migration } from "@mikro-orm/migrations";

export class Migration0003EventsWebhooks extends Migration {
  override name = "0003_events_webhooks";

  override up(): void {
    this.addSql("alter table \"streak_event\" add column \"public_id\" uuid not null default gen_random_uuid();");
    this.addSql("alter table \"streak_event\" add constraint \"streak_event_public_id_unique\" unique (\"public_id\");");
    this.addSql("alter table \"webhook_subscription\" add column \"definition_id\" uuid null, add column \"description\" varchar(256) not null default '', add column \"cursor\" bigint not null default 0;");
    this.addSql("alter table \"webhook_delivery\" add column \"next_attempt_at\" timestamptz null, add column \"last_attempt_at\" timestamptz null, add column \"delivered_at\" timestamptz null;");
    this.addSql("create index \"webhook_delivery_due\" on \"webhook_delivery\" (\"next_attempt_at\") where \"status\" in ('PENDING', 'RETRYING');");
  }
}
