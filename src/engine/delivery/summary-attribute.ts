// Whether the namespace has the KindlingSummary search attribute, asked of the server rather than assumed.
//
// Kindling's own dev server and docker-compose register it, but an operator's Temporal set up for an older
// Kindling may not have it, and a start that names an unregistered search attribute is refused by the server —
// the outbox row would then fail and retry forever. So the relay asks once (ListSearchAttributes), keeps the
// answer for `recheckMs`, and sets the attribute only where it is registered; a missing one is logged as a
// warning saying how to register it, once each time it is found missing. A failed check counts as missing (the
// workflow still starts, only without its list column) and is asked again after the same interval.
import type { Client } from "@temporalio/client";
import type { Logger } from "../../observability/logger.ts";
import { KINDLING_SUMMARY } from "../../workflows/search-attributes.ts";

export interface SummaryAttributeCheck {
  /** True when starts may set KindlingSummary; asks the server at most once per `recheckMs`. */
  usable(): Promise<boolean>;
  /** The server refused the attribute after all (removed since the last check): stop using it until the next check. */
  refused(error: unknown): void;
}

export interface SummaryAttributeCheckOptions {
  readonly client: Client;
  readonly logger: Logger;
  /** How long an answer is kept (default 5 minutes). */
  readonly recheckMs?: number;
  /** Deadline of one check (default 5 s). */
  readonly timeoutMs?: number;
}

/** What a start refused for an unregistered KindlingSummary fails with (INVALID_ARGUMENT naming the attribute). */
export function isSummaryAttributeRefusal(error: unknown): boolean {
  const message = error instanceof Error ? `${error.message} ${error.cause instanceof Error ? error.cause.message : ""}` : String(error);
  return message.includes(KINDLING_SUMMARY);
}

export function createSummaryAttributeCheck(options: SummaryAttributeCheckOptions): SummaryAttributeCheck {
  const { client, logger } = options;
  const recheckMs = options.recheckMs ?? 5 * 60_000;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const namespace = client.options.namespace;
  const howToRegister = `temporal operator search-attribute create --namespace ${namespace} --name ${KINDLING_SUMMARY} --type Keyword`;
  let known: boolean | undefined;
  let checkedAt = 0;
  let pending: Promise<boolean> | undefined;

  function settle(present: boolean, error?: unknown): boolean {
    if (!present && known !== false) {
      logger.warn(
        { namespace, searchAttribute: KINDLING_SUMMARY, ...(error === undefined ? {} : { err: error }), howToRegister },
        error === undefined
          ? `Temporal namespace ${namespace} has no ${KINDLING_SUMMARY} search attribute: workflows start without it, so the UI's workflow list cannot show their names. Register it with: ${howToRegister}`
          : `could not check whether Temporal namespace ${namespace} has the ${KINDLING_SUMMARY} search attribute; workflows start without it until the next check. If it is missing, register it with: ${howToRegister}`,
      );
    } else if (present && known === false) {
      logger.info({ namespace, searchAttribute: KINDLING_SUMMARY }, `${KINDLING_SUMMARY} is registered now: new workflows carry it`);
    }
    known = present;
    checkedAt = Date.now();
    return present;
  }

  async function check(): Promise<boolean> {
    try {
      const { customAttributes } = await client.connection.withDeadline(Date.now() + timeoutMs, () =>
        client.connection.operatorService.listSearchAttributes({ namespace }),
      );
      return settle(customAttributes?.[KINDLING_SUMMARY] !== undefined);
    } catch (error) {
      return settle(false, error);
    }
  }

  return {
    usable() {
      if (known !== undefined && Date.now() - checkedAt < recheckMs) return Promise.resolve(known);
      pending ??= check().finally(() => {
        pending = undefined;
      });
      return pending;
    },
    refused(error) {
      settle(false);
      logger.debug({ err: error }, `start refused ${KINDLING_SUMMARY}; retried without it`);
    },
  };
}
