// Webhook deliveries found by their event: retention deletes a page's deliveries by (tenant, event ids) and erasure
// a member's by the member's event ids (src/engine/retention/retention.ts, src/engine/data-rights/coverage.ts). The
// table's keys lead with the tenant's subscription, so each such delete read every delivery of the tenant — every
// page of a retention run over a webhook tenant read the tenant's whole delivery history. A plain CREATE INDEX: it
// holds off new deliveries while it builds (webhook_delivery is a coordinator table on Citus too).
import { Migration } from "@mikro-orm/migrations";

export const WEBHOOK_DELIVERY_EVENT_INDEX = `create index "webhook_delivery_event" on "webhook_delivery" ("tenant_id", "event_id")`;

export class Migration0019WebhookDeliveryEvent extends Migration {
  override name = "0019_webhook_delivery_event";

  override up(): void {
    this.addSql(`${WEBHOOK_DELIVERY_EVENT_INDEX};`);
  }
}
