// MemberStreakService: "where does this member stand" in one call, from PostgreSQL alone.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import type { TeamStore } from "../../engine/teams/team-streaks.ts";
import { teamProgressMessage } from "./team.service.ts";
import { MemberStreakService } from "../../gen/kindling/v1/member_streak_service_pb.js";
import { MemberStreakState, TeamProgressSchema } from "../../gen/kindling/v1/member_streak_pb.js";
import type { ProgressReader } from "../../engine/reads/progress-reader.ts";
import type { DefinitionCatalog } from "../../engine/definitions/definition-catalog.ts";
import { initialState } from "../../domain/streak-machine.ts";
import { progressMessage } from "../mappers/progress.mapper.ts";
import { createProgressCache, type ProgressCache } from "../mappers/progress-cache.ts";
import { ApiError, invalidArgument, notFound } from "../errors.ts";
import { decodePageToken, encodePageToken, keysetPage, pageSize } from "../pagination.ts";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { StreakWindowOrder } from "../../gen/kindling/v1/member_streak_service_pb.js";
import type { HistoryWindow, WindowCursor, WindowQuery } from "../../engine/history/streak-history.ts";
import { streakWindowMessage } from "../mappers/streak-window.mapper.ts";
import { principalOf } from "../context.ts";
import { Code } from "@connectrpc/connect";
import type { Principal } from "../context.ts";

export interface MemberStreakServiceDeps {
  readonly reader: ProgressReader;
  readonly catalog: DefinitionCatalog;
  readonly now: () => number;
  /** One page of a member streak's window history (src/engine/history/streak-history.ts). */
  readonly windows: (query: WindowQuery, now: number, limit: number, after: WindowCursor | undefined) => Promise<readonly HistoryWindow[]>;
  /** Team definitions: the member's team progress joins their view (absent: no team progress is shown). */
  readonly teams?: TeamStore;
  /** Answers built once per stored state (src/api/mappers/progress-cache.ts); one of its own when absent. */
  readonly progress?: ProgressCache;
}

/** End users may read only their own member (PRODUCT §2); others may read any member of their tenant. */
export function assertOwnMember(principal: Principal, memberExternalId: string): void {
  if (principal.role === "END_USER" && principal.memberExternalId !== memberExternalId) {
    throw new ApiError(Code.PermissionDenied, "MEMBER_MISMATCH", "end users may only access their own member");
  }
}

/**
 * The one definition a scoped member session may touch (CreateMemberSession with definition_id), or undefined
 * when the caller is not limited to one.
 */
export function scopedDefinition(principal: Principal): string | undefined {
  return principal.role === "END_USER" ? principal.definitionId : undefined;
}

/** A member session scoped to one definition may not touch another (PERMISSION_DENIED, DEFINITION_MISMATCH). */
export function assertDefinitionInScope(principal: Principal, definitionId: string): void {
  const scope = scopedDefinition(principal);
  if (scope !== undefined && scope !== definitionId) {
    throw new ApiError(Code.PermissionDenied, "DEFINITION_MISMATCH", "this member session is limited to another definition");
  }
}

/** A definition filter as asked, narrowed to the session's definition (asking for another one is refused). */
export function definitionFilter(principal: Principal, requested: string): string | undefined {
  if (requested !== "") assertDefinitionInScope(principal, requested);
  return scopedDefinition(principal) ?? (requested || undefined);
}

/** A page token's position: a window's start (epoch ms) and key; anything else is not a token this server issued. */
function windowCursor(after: readonly unknown[]): WindowCursor {
  const [startMs, key] = after;
  if (typeof startMs !== "number" || !Number.isSafeInteger(startMs) || typeof key !== "string") {
    throw invalidArgument("INVALID_PAGE_TOKEN", "page_token is not one this server issued", [{ field: "page_token", description: "malformed page token" }]);
  }
  return [startMs, key];
}

export function createMemberStreakService(deps: MemberStreakServiceDeps): ServiceImpl<typeof MemberStreakService> {
  const answers = deps.progress ?? createProgressCache();
  const visible = (principal: Principal, state: string) => principal.role === "ADMIN" || principal.role === "SERVICE" || state === "LIVE" || state === "PAUSED";

  async function read(context: HandlerContext, memberExternalId: string, definitionId?: string) {
    const principal = principalOf(context);
    assertOwnMember(principal, memberExternalId);
    const rows = await deps.reader.read(principal.tenantId, memberExternalId, definitionId);
    return { principal, rows };
  }

  return {
    async getMemberStreak(req, context) {
      assertDefinitionInScope(principalOf(context), req.definitionId);
      const { principal, rows } = await read(context, req.memberExternalId, req.definitionId);
      const found = rows.streaks.find((s) => s.definition.id === req.definitionId && visible(principal, s.definition.state));
      if (!found) {
        throw notFound("member streak", { member_external_id: req.memberExternalId, definition_id: req.definitionId });
      }
      const now = deps.now();
      const streak = answers.message(found.definition, req.memberExternalId, found.row, rows.rewards(found.definition.id), now, req.language || undefined);
      const team = await deps.teams?.progressForMember(principalOf(context).tenantId, found.definition, req.memberExternalId);
      if (team) streak.team = create(TeamProgressSchema, teamProgressMessage(team));
      return { streak };
    },

    async listMemberStreaks(req, context) {
      const { principal, rows } = await read(context, req.memberExternalId);
      const now = deps.now();
      const language = req.language || undefined;
      const progress = rows.streaks
        .filter((s) => visible(principal, s.definition.state))
        .map((s) => answers.message(s.definition, req.memberExternalId, s.row, rows.rewards(s.definition.id), now, language));
      if (req.includeNotStarted) {
        const have = new Set(progress.map((p) => p.definitionId));
        for (const def of await deps.catalog.live(principal.tenantId)) {
          if (have.has(def.id)) continue;
          progress.push(progressMessage(def, req.memberExternalId, { id: "", state: initialState(def.rules), createdAt: now, updatedAt: now }, { unclaimed: [], total: 0 }, now, language));
        }
      }
      const scope = scopedDefinition(principal);
      const filtered = progress.filter((p) => (req.states.length === 0 || req.states.includes(p.state)) && (scope === undefined || p.definitionId === scope));
      filtered.sort((a, b) => (a.definitionId < b.definitionId ? -1 : a.definitionId > b.definitionId ? 1 : 0));
      const after = decodePageToken(req.pageToken, 1)?.[0];
      const start = after === undefined ? 0 : filtered.findIndex((p) => p.definitionId > String(after));
      const limit = pageSize(req.pageSize);
      const page = start < 0 ? [] : filtered.slice(start, start + limit);
      // Team definitions: each progress carries the member's team, as GetMemberStreak's does (for this page only).
      if (deps.teams) {
        for (const p of page) {
          const def = await deps.catalog.get(principal.tenantId, p.definitionId);
          const team = def && (await deps.teams.progressForMember(principal.tenantId, def, req.memberExternalId));
          if (team) p.team = create(TeamProgressSchema, teamProgressMessage(team));
        }
      }
      const last = page.at(-1);
      return {
        streaks: page,
        nextPageToken: last && start + limit < filtered.length ? encodePageToken([last.definitionId]) : "",
        totalSize: filtered.length,
      };
    },

    async listStreakWindows(req, context) {
      const principal = principalOf(context);
      assertOwnMember(principal, req.memberExternalId);
      assertDefinitionInScope(principal, req.definitionId);
      const definition = await deps.catalog.get(principal.tenantId, req.definitionId);
      if (definition === undefined || !visible(principal, definition.state)) {
        throw notFound("member streak", { member_external_id: req.memberExternalId, definition_id: req.definitionId });
      }
      const query: WindowQuery = {
        tenantId: principal.tenantId,
        memberExternalId: req.memberExternalId,
        definition,
        fromMs: req.startTime === undefined ? null : timestampMs(req.startTime),
        toMs: req.endTime === undefined ? null : timestampMs(req.endTime),
        order: req.order === StreakWindowOrder.NEWEST_FIRST ? "NEWEST_FIRST" : "OLDEST_FIRST",
      };
      const now = deps.now();
      const page = await keysetPage(
        req,
        (limit, after) => deps.windows(query, now, limit, after === undefined ? undefined : windowCursor(after)),
        (w) => [w.startMs, w.key],
      );
      return { windows: page.rows.map(streakWindowMessage), nextPageToken: page.nextPageToken };
    },
  };
}

export { MemberStreakState };
