// LeaderboardService: a definition's top members and one member's rank, from one indexed statement each
// (src/engine/history/leaderboard.ts). What each caller sees is decided here: end users read boards of definitions they
// may see, unless the tenant hides boards from them, and never another member's external id.
import { Code, type ServiceImpl } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { GetLeaderboardResponseSchema, LeaderboardMetric, LeaderboardService, type GetLeaderboardResponse } from "../../gen/kindling/v1/leaderboard_service_pb.js";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { LeaderboardEntrySchema } from "../../gen/kindling/v1/leaderboard_service_pb.js";
import type { DefinitionCatalog, CatalogDefinition } from "../../engine/definitions/definition-catalog.ts";
import type { LeaderboardEntry, LeaderboardMetric as Metric, LeaderboardStore } from "../../engine/history/leaderboard.ts";
import { principalOf, type Principal } from "../context.ts";
import { shareResponse } from "../shared-responses.ts";
import { ApiError, notFound } from "../errors.ts";
import { assertDefinitionInScope, assertOwnMember } from "./member-streak.service.ts";

export interface LeaderboardServiceDeps {
  readonly leaderboards: LeaderboardStore;
  readonly catalog: DefinitionCatalog;
  readonly now: () => number;
}

const DEFAULT_LIMIT = 10;

const METRICS: Partial<Record<LeaderboardMetric, Metric>> = {
  [LeaderboardMetric.CURRENT_COUNT]: "CURRENT_COUNT",
  [LeaderboardMetric.LONGEST_COUNT]: "LONGEST_COUNT",
};

const isServer = (p: Principal) => p.role === "ADMIN" || p.role === "SERVICE";

export function createLeaderboardService(deps: LeaderboardServiceDeps): ServiceImpl<typeof LeaderboardService> {
  /** The definition as the caller may see it, after the end-user checks (tenant setting, session scope). */
  async function board(principal: Principal, definitionId: string): Promise<CatalogDefinition> {
    if (!isServer(principal)) {
      assertDefinitionInScope(principal, definitionId);
      if (await deps.leaderboards.hiddenFromEndUsers(principal.tenantId)) {
        throw new ApiError(Code.PermissionDenied, "LEADERBOARDS_HIDDEN", "this tenant's leaderboards are not shown to end users");
      }
    }
    const def = await deps.catalog.get(principal.tenantId, definitionId);
    if (!def || (!isServer(principal) && def.state !== "LIVE" && def.state !== "PAUSED")) throw notFound("definition", { definition_id: definitionId });
    return def;
  }

  /** An entry as the caller may see it: external ids go to ADMIN / SERVICE, and to an end user for their own. */
  function entryMessage(principal: Principal, e: LeaderboardEntry): MessageInitShape<typeof LeaderboardEntrySchema> {
    const own = principal.role === "END_USER" && principal.memberExternalId === e.memberExternalId;
    return {
      rank: e.rank,
      memberExternalId: isServer(principal) || own ? e.memberExternalId : "",
      displayName: e.displayName ?? "",
      count: e.count,
      ...(e.reachedAt === null ? {} : { reachTime: timestampFromMs(e.reachedAt) }),
      isCaller: own,
    };
  }

  /**
   * Responses already built from a board's entries, by who sees them: "server" (ADMIN, SERVICE: external ids
   * shown) and "public" (GUEST, END_USER not on the board: external ids hidden). The store returns the same
   * frozen entries array while its statement returns the same board, so a board read again is answered with the
   * response built the first time (shared: frozen, and encoded once on the gRPC path, ../shared-responses.ts); a
   * new answer is a new array, built anew. An end user on the board sees their own external id and `is_caller`:
   * built per call.
   */
  const built = new WeakMap<readonly LeaderboardEntry[], { server?: GetLeaderboardResponse; public?: GetLeaderboardResponse }>();
  function topResponse(principal: Principal, entries: readonly LeaderboardEntry[]): GetLeaderboardResponse {
    const render = () => create(GetLeaderboardResponseSchema, { entries: entries.map((e) => entryMessage(principal, e)) });
    if (principal.role === "END_USER" && entries.some((e) => e.memberExternalId === principal.memberExternalId)) return render();
    let views = built.get(entries);
    if (!views) built.set(entries, (views = {}));
    const view = isServer(principal) ? "server" : "public";
    return (views[view] ??= shareResponse(render()));
  }

  return {
    async getLeaderboard(req, context) {
      const principal = principalOf(context);
      const def = await board(principal, req.definitionId);
      return topResponse(principal, await deps.leaderboards.top(def, METRICS[req.metric]!, req.limit || DEFAULT_LIMIT, deps.now()));
    },

    async getLeaderboardRank(req, context) {
      const principal = principalOf(context);
      assertOwnMember(principal, req.memberExternalId);
      const def = await board(principal, req.definitionId);
      const found = await deps.leaderboards.rank(def, METRICS[req.metric]!, req.memberExternalId, req.neighbours, deps.now());
      if (!found.entry) return { ranked: false };
      return {
        ranked: true,
        entry: entryMessage(principal, found.entry),
        above: found.above.map((e) => entryMessage(principal, e)),
        below: found.below.map((e) => entryMessage(principal, e)),
      };
    },

    async setLeaderboardPreference(req, context) {
      const principal = principalOf(context);
      assertOwnMember(principal, req.memberExternalId);
      const saved = await deps.leaderboards.setPreference(principal.tenantId, req.memberExternalId, { optOut: req.optOut, displayName: req.displayName });
      return { memberExternalId: saved.memberExternalId, optOut: saved.optOut, displayName: saved.displayName ?? "" };
    },

    async getLeaderboardSettings(_req, context) {
      return { hiddenFromEndUsers: await deps.leaderboards.hiddenFromEndUsers(principalOf(context).tenantId) };
    },

    async setLeaderboardSettings(req, context) {
      return { hiddenFromEndUsers: await deps.leaderboards.setHiddenFromEndUsers(principalOf(context).tenantId, req.hiddenFromEndUsers, deps.now()) };
    },
  };
}
