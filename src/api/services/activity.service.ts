// ActivityService handlers: request -> ingestor input, result -> self-contained response.
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Pool } from "pg";
import { ActivityService, RecordActivitiesResultSchema, type RecordActivityResponse } from "../../gen/kindling/v1/activity_service_pb.js";
import type { ActivityInput } from "../../gen/kindling/v1/activity_pb.js";
import { DefinitionState } from "../../gen/kindling/v1/definition_pb.js";
import type { ActivityIngestor, RecordActivityInput, RecordActivityResult } from "../../engine/ingest/activity-ingestor.ts";
import type { ProgressReader } from "../../engine/reads/progress-reader.ts";
import type { BatchIngestor } from "../../engine/ingest/batch-ingestor.ts";
import type { DefinitionCatalog } from "../../engine/definitions/definition-catalog.ts";
import { activityMessage, streakResultMessage } from "../mappers/activity.mapper.ts";
import { keysetPage } from "../pagination.ts";
import { notFound, toConnectError } from "../errors.ts";
import { principalOf } from "../context.ts";
import { listActivities, findActivity } from "../../db/repositories/activity.repository.ts";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { ImportMilestonePolicy } from "../../gen/kindling/v1/activity_service_pb.js";
import { importActivities, type MilestonePolicy } from "../../engine/import/activity-import.ts";
import { EngineError } from "../../engine/engine-error.ts";
import { Code } from "@connectrpc/connect";

export interface ActivityServiceDeps {
  readonly ingestor: ActivityIngestor & Partial<Pick<BatchIngestor, "recordMany">>;
  readonly reader: ProgressReader;
  readonly catalog: DefinitionCatalog;
  readonly pool: Pool;
  readonly now: () => number;
}

export function toIngestInput(tenantId: string, a: ActivityInput, now: number): RecordActivityInput {
  const member = a.memberRef;
  const target = a.target;
  return {
    tenantId,
    memberExternalId: member.case === "member" ? member.value.externalId : (member.value ?? ""),
    profile:
      member.case === "member"
        ? {
            firstName: member.value.firstName, lastName: member.value.lastName, email: member.value.email,
            phone: member.value.phoneNumber, timeZone: member.value.timeZone, locale: member.value.locale,
          }
        : undefined,
    target: target.case === "eventType" ? { eventType: target.value } : { definitionId: target.value ?? "" },
    occurredAt: a.occurTime ? timestampMs(a.occurTime) : now,
    value: a.value,
    distinctKey: a.distinctKey || undefined,
    uniqueIdentifier: a.uniqueIdentifier,
    metadata: a.metadata,
    platform: a.platform || undefined,
  };
}

export function createActivityService(deps: ActivityServiceDeps): ServiceImpl<typeof ActivityService> {
  async function respond(tenantId: string, result: RecordActivityResult, language: string, includeDefinition: boolean, now: number): Promise<RecordActivityResponse> {
    // The batched ingestor read them for the whole batch already; otherwise one query here.
    const facts = result.rewardFacts ?? (await deps.reader.rewardFacts(tenantId, result.member.id, result.streaks.map((s) => s.definition.id)));
    return {
      $typeName: "kindling.v1.RecordActivityResponse",
      activity: activityMessage(result.activity),
      duplicate: result.duplicate,
      results: result.streaks.map((s) =>
        streakResultMessage(s, result.member.externalId, facts(s.definition.id), now, language || undefined, includeDefinition, () => ({
          ...s.definition.message,
          state: s.definition.state === "LIVE" ? DefinitionState.LIVE : DefinitionState.PAUSED,
        })),
      ),
    };
  }

  const policies: Partial<Record<ImportMilestonePolicy, MilestonePolicy>> = {
    [ImportMilestonePolicy.NONE]: "NONE",
    [ImportMilestonePolicy.RECORD]: "RECORD",
    [ImportMilestonePolicy.GRANT]: "GRANT",
  };

  return {
    async importActivities(req, context) {
      const principal = principalOf(context);
      const now = deps.now();
      // History has a time of its own: "when Kindling receives it" would put every imported activity today.
      const missing = req.activities.findIndex((a) => a.occurTime === undefined);
      if (missing >= 0) {
        const field = `activities[${missing}].occur_time`;
        throw new EngineError("INVALID_ARGUMENT", "OCCUR_TIME_REQUIRED", "an imported activity needs its occur_time", { field }, field);
      }
      const result = await importActivities(
        { pool: deps.pool, catalog: deps.catalog, now: deps.now },
        {
          tenantId: principal.tenantId,
          activities: req.activities.map((a) => toIngestInput(principal.tenantId, a, now)),
          milestonePolicy: policies[req.milestonePolicy]!,
          emitEvents: req.emitEvents,
        },
      );
      return {
        importedCount: result.imported,
        duplicateCount: result.duplicates,
        notAppliedCount: result.notApplied,
        streaks: result.streaks.map((s) => ({
          memberExternalId: s.memberExternalId,
          definitionId: s.definitionId,
          currentCount: s.state.current,
          longestCount: s.state.longest,
          milestonesReachedCount: s.milestonesReached,
        })),
      };
    },

    async recordActivity(req, context) {
      const principal = principalOf(context);
      const now = deps.now();
      const result = await deps.ingestor.record(toIngestInput(principal.tenantId, req.activity!, now));
      return respond(principal.tenantId, result, req.language, req.includeDefinition, now);
    },

    async recordActivities(req, context) {
      const principal = principalOf(context);
      const results = [];
      // One bad item (unknown definition) never undoes the others: a batching ingestor records the items in order in
      // shared transactions and still answers each on its own; otherwise each item is its own transaction.
      const now0 = deps.now();
      const settled = deps.ingestor.recordMany
        ? await deps.ingestor.recordMany(req.activities.map((item) => toIngestInput(principal.tenantId, item, now0)))
        : undefined;
      for (const [index, item] of req.activities.entries()) {
        const now = settled ? now0 : deps.now();
        try {
          const done = settled?.[index];
          if (done && !done.ok) throw done.error;
          const result = done?.ok ? done.value : await deps.ingestor.record(toIngestInput(principal.tenantId, item, now));
          if (req.omitProgress) {
            results.push(create(RecordActivitiesResultSchema, { activity: activityMessage(result.activity), duplicate: result.duplicate }));
          } else {
            const response = await respond(principal.tenantId, result, req.language, false, now);
            results.push(create(RecordActivitiesResultSchema, { activity: response.activity, duplicate: response.duplicate, results: response.results }));
          }
        } catch (error) {
          const mapped = toConnectError(error);
          if (mapped.code === Code.Internal) throw error;
          const reason = mapped.findDetails(ErrorInfoSchema)[0]?.reason ?? "";
          results.push(create(RecordActivitiesResultSchema, { error: { code: Code[mapped.code], reason, message: mapped.rawMessage } }));
        }
      }
      return { results };
    },

    async getActivity(req, context) {
      const principal = principalOf(context);
      const row = await findActivity(deps.pool, principal.tenantId, req.activityId);
      if (!row) throw notFound("activity", { activity_id: req.activityId });
      return { activity: activityMessage(row) };
    },

    async listActivities(req, context) {
      const principal = principalOf(context);
      const { rows, nextPageToken } = await keysetPage(
        req,
        (limit, after) =>
          listActivities(deps.pool, {
            tenantId: principal.tenantId,
            memberExternalId: req.memberExternalId || undefined,
            definitionId: req.definitionId || undefined,
            eventType: req.eventType || undefined,
            from: req.startTime ? timestampMs(req.startTime) : undefined,
            to: req.endTime ? timestampMs(req.endTime) : undefined,
            limit,
            after,
          }),
        (a) => [a.occurredAt, a.id],
      );
      return { activities: rows.map(activityMessage), nextPageToken };
    },
  };
}
