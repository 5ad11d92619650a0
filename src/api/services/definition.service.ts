// DefinitionService handlers: translate requests into repository calls and rows back into messages.
// The lifecycle rules (which transitions and which edits each state allows) live in definition-lifecycle.ts.
import { randomUUID } from "node:crypto";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import type { EntityManager } from "@mikro-orm/postgresql";
import { DefinitionService } from "../../gen/kindling/v1/definition_service_pb.js";
import { DefinitionState, StreakDefinitionSchema, type StreakDefinition as StreakDefinitionMessage } from "../../gen/kindling/v1/definition_pb.js";
import { create } from "@bufbuild/protobuf";
import { StreakDefinition, type DefinitionState as StoredState } from "../../db/entities/index.ts";
import { findDefinition, listDefinitions, withPauseChange } from "../../db/repositories/definition.repository.ts";
import { enqueueDefinitionChanged } from "../../db/repositories/outbox.repository.ts";
import { validateRules } from "../../domain/rules.ts";
import { validateTeamRule } from "../../domain/team-streak.ts";
import { teamRuleFromMessage } from "../../engine/teams/team-streaks.ts";
import { ruleViolation } from "../mappers/rule-violation.mapper.ts";
import { ApiError, failedPrecondition, notFound } from "../errors.ts";
import { principalOf, type Principal } from "../context.ts";
import { keysetPage } from "../pagination.ts";
import { definitionStateFromProto, etagOf, messageFromRow, msOf, rulesFromMessage, specFromMessage } from "../mappers/definition.mapper.ts";
import { lockedFieldsFor, nextState, type LifecycleAction } from "./definition-lifecycle.ts";
import { keepStoredProviderSecrets } from "../mappers/redaction.mapper.ts";
import { assertDefinitionInScope, scopedDefinition } from "./member-streak.service.ts";
import { COUNT_BUCKETS, type DefinitionDayStats, type StatsScope } from "../../engine/history/definition-stats.ts";
import type { DefinitionDayStatsSchema } from "../../gen/kindling/v1/definition_service_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";

export interface DefinitionServiceDeps {
  readonly em: () => EntityManager;
  /** Told after every committed change, so caches drop the definition and orchestration can follow its state. */
  readonly onChanged: (row: StreakDefinition) => Promise<void>;
  readonly now: () => number;
  /** The definition's stored daily stats in a day range (src/engine/history/definition-stats.ts). */
  readonly stats: (scope: StatsScope, startDay: string, endDay: string) => Promise<DefinitionDayStats[]>;
}

const seesOnlyLive = (p: Principal) => p.role === "END_USER" || p.role === "GUEST";

/** Refuses a definition whose rules the domain cannot run, naming the first broken rule by its API field. */
function assertValidDefinition(definition: StreakDefinitionMessage): void {
  const rules = rulesFromMessage(definition);
  const [first] = validateRules(rules);
  if (first !== undefined) throw ruleViolation(first, definition);
  const team = teamRuleFromMessage(definition);
  const [teamProblem] = team === null ? [] : validateTeamRule(rules, team);
  if (teamProblem !== undefined) throw ruleViolation(teamProblem, definition);
}

function dayStatsMessage(d: DefinitionDayStats): MessageInitShape<typeof DefinitionDayStatsSchema> {
  return {
    day: d.day,
    closed: d.closed,
    computeTime: timestampFromMs(d.computedAt),
    hasState: d.hasState,
    activeStreaks: d.active,
    atRiskStreaks: d.atRisk,
    brokenStreaks: d.broken,
    frozenStreaks: d.frozen,
    startedStreaks: d.started,
    milestones: d.milestones.map((m) => ({ threshold: m.threshold, reached: m.reached })),
    rewardsIssued: d.rewardsIssued,
    rewardsClaimed: d.rewardsClaimed,
    rewardsExpired: d.rewardsExpired,
    countDistribution: d.hasState ? COUNT_BUCKETS.map(([min, max], i) => ({ minCount: min, maxCount: max ?? 0, streaks: d.histogram[i] ?? 0 })) : [],
  };
}

export function createDefinitionService(deps: DefinitionServiceDeps): ServiceImpl<typeof DefinitionService> {
  async function load(em: EntityManager, principal: Principal, id: string): Promise<StreakDefinition> {
    const row = await findDefinition(em, principal.tenantId, id);
    if (!row || (seesOnlyLive(principal) && row.state !== "LIVE")) throw notFound("definition", { definition_id: id });
    return row;
  }

  function checkEtag(row: StreakDefinition, etag: string): void {
    if (etag !== "" && etag !== etagOf(row)) {
      throw new ApiError(Code.Aborted, "ETAG_MISMATCH", "the definition changed since it was read", { metadata: { current_etag: etagOf(row) } });
    }
  }

  async function transition(principal: Principal, id: string, etag: string, action: LifecycleAction) {
    const em = deps.em();
    const row = await em.transactional(async (tx) => {
      const current = await findDefinition(tx, principal.tenantId, id);
      if (!current) throw notFound("definition", { definition_id: id });
      checkEtag(current, etag);
      const to = nextState(current.state, action);
      if (to === undefined) {
        throw failedPrecondition("INVALID_STATE_TRANSITION", `cannot ${action.toLowerCase()} a ${current.state} definition`, { from: current.state, action });
      }
      if (action === "PUBLISH") assertValidDefinition(messageFromRow(current));
      const at = deps.now();
      if (action === "PAUSE" || (action === "RESUME" && current.state === "PAUSED")) current.pauses = withPauseChange(current.pauses, at, action === "PAUSE");
      if (action === "ARCHIVE" && current.state === "PAUSED") current.pauses = withPauseChange(current.pauses, at, false);
      current.state = to;
      current.version += 1;
      enqueueDefinitionChanged(tx, current);
      return current;
    });
    await deps.onChanged(row);
    return { definition: messageFromRow(row) };
  }

  return {
    async createDefinition(req, context) {
      const principal = principalOf(context);
      const message = req.definition ?? create(StreakDefinitionSchema);
      assertValidDefinition(message);
      const em = deps.em();
      const row = em.create(StreakDefinition, {
        id: randomUUID(),
        tenantId: principal.tenantId,
        name: message.name,
        description: message.description,
        state: "DRAFT",
        eventTypes: [...message.eventTypes],
        spec: specFromMessage(message),
        startAt: dateOrNull(msOf(message.startTime)),
        endAt: dateOrNull(msOf(message.endTime)),
        pauses: [],
        version: 1,
      });
      await em.flush();
      await deps.onChanged(row);
      return { definition: messageFromRow(row) };
    },

    async getDefinition(req, context) {
      const principal = principalOf(context);
      assertDefinitionInScope(principal, req.definitionId);
      const row = await load(deps.em(), principal, req.definitionId);
      return { definition: messageFromRow(row) };
    },

    async getDefinitionStats(req, context) {
      const principal = principalOf(context);
      await load(deps.em(), principal, req.definitionId);
      const days = await deps.stats({ tenantId: principal.tenantId, definitionId: req.definitionId }, req.startDay, req.endDay);
      return { days: days.map(dayStatsMessage) };
    },

    async listDefinitions(req, context) {
      const principal = principalOf(context);
      const states = seesOnlyLive(principal) ? (["LIVE"] as StoredState[]) : req.states.map(definitionStateFromProto);
      const { rows, nextPageToken } = await keysetPage(
        req,
        (limit, after) => listDefinitions(deps.em(), { tenantId: principal.tenantId, states, eventType: req.eventType || undefined, limit, after }),
        (row) => [row.createdAt.getTime(), row.id],
      );
      const scope = scopedDefinition(principal);
      return { definitions: rows.filter((row) => scope === undefined || row.id === scope).map(messageFromRow), nextPageToken };
    },

    async updateDefinition(req, context) {
      const principal = principalOf(context);
      const paths = req.updateMask?.paths ?? [];
      const patch = req.definition ?? create(StreakDefinitionSchema);
      const em = deps.em();
      const row = await em.transactional(async (tx) => {
        const current = await findDefinition(tx, principal.tenantId, req.definitionId);
        if (!current) throw notFound("definition", { definition_id: req.definitionId });
        checkEtag(current, req.etag);
        if (current.state === "ARCHIVED") throw failedPrecondition("DEFINITION_ARCHIVED", "an archived definition cannot change");
        const locked = lockedFieldsFor(current.state).filter((f) => paths.includes(f));
        if (locked.length > 0) {
          throw failedPrecondition("DEFINITION_FIELD_LOCKED", `${locked.join(", ")} cannot change while the definition is ${current.state}`, { fields: locked.join(",") });
        }
        const merged = messageFromRow(current);
        for (const path of paths) {
          const key = snakeToCamel(path) as keyof typeof merged;
          (merged as Record<string, unknown>)[key] = patch[key];
        }
        keepStoredProviderSecrets(messageFromRow(current), merged);
        assertValidDefinition(merged);
        current.name = merged.name;
        current.description = merged.description;
        current.eventTypes = [...merged.eventTypes];
        current.spec = specFromMessage(merged);
        current.startAt = dateOrNull(msOf(merged.startTime));
        current.endAt = dateOrNull(msOf(merged.endTime));
        current.version += 1;
        if (current.state === "LIVE" || current.state === "PAUSED") enqueueDefinitionChanged(tx, current);
        return current;
      });
      await deps.onChanged(row);
      return { definition: messageFromRow(row) };
    },

    publishDefinition: (req, context) => transition(principalOf(context), req.definitionId, req.etag, "PUBLISH"),
    pauseDefinition: (req, context) => transition(principalOf(context), req.definitionId, req.etag, "PAUSE"),
    resumeDefinition: (req, context) => transition(principalOf(context), req.definitionId, req.etag, "RESUME"),
    archiveDefinition: (req, context) => transition(principalOf(context), req.definitionId, req.etag, "ARCHIVE"),
  };
}

const dateOrNull = (ms: number | undefined) => (ms === undefined ? null : new Date(ms));
const snakeToCamel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

export { DefinitionState };
