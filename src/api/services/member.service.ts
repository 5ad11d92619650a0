// MemberService handlers: request -> member store call -> Member / MemberStreakProgress messages.
import type { ServiceImpl } from "@connectrpc/connect";
import type { Pool } from "pg";
import { MemberService } from "../../gen/kindling/v1/member_service_pb.js";
import type { MemberStore, ChangedStreak } from "../../engine/members/member-store.ts";
import type { ProgressReader } from "../../engine/reads/progress-reader.ts";
import { memberMessage } from "../mappers/member.mapper.ts";
import { progressMessage } from "../mappers/progress.mapper.ts";
import { principalOf } from "../context.ts";
import { assertOwnMember } from "./member-streak.service.ts";
import { exportMember } from "../../engine/data-rights/member-export.ts";
import { eraseMember } from "../../engine/data-rights/member-erasure.ts";

export interface MemberServiceDeps {
  readonly members: MemberStore;
  readonly reader: ProgressReader;
  readonly pool: Pool;
  readonly now: () => number;
  /** The database is a Citus coordinator: erasure runs one member's shard at a time (default false). */
  readonly citus?: boolean;
}

export function createMemberService(deps: MemberServiceDeps): ServiceImpl<typeof MemberService> {
  async function progress(tenantId: string, memberExternalId: string, s: ChangedStreak) {
    const facts = await deps.reader.rewardFacts(tenantId, s.memberId, [s.definition.id]);
    return progressMessage(s.definition, memberExternalId, { id: s.memberStreakId, state: s.state, createdAt: s.createdAt, updatedAt: s.updatedAt }, facts(s.definition.id), deps.now(), undefined);
  }

  return {
    async upsertMember(req, context) {
      const principal = principalOf(context);
      const m = req.member!;
      const { member, created } = await deps.members.upsert(principal.tenantId, {
        externalId: m.externalId, firstName: m.firstName, lastName: m.lastName, email: m.email, phone: m.phoneNumber, timeZone: m.timeZone, locale: m.locale,
      });
      return { member: memberMessage(member), created };
    },

    async getMember(req, context) {
      const principal = principalOf(context);
      assertOwnMember(principal, req.memberExternalId);
      return { member: memberMessage(await deps.members.get(principal.tenantId, req.memberExternalId)) };
    },

    async grantFreezes(req, context) {
      const principal = principalOf(context);
      const { granted, streak } = await deps.members.grantFreezes(principal.tenantId, req.memberExternalId, req.definitionId, req.count);
      return { grantedCount: granted, streak: await progress(principal.tenantId, req.memberExternalId, streak) };
    },

    async repairStreak(req, context) {
      const principal = principalOf(context);
      const { restoredCount, streak } = await deps.members.repair(principal.tenantId, req.memberExternalId, req.definitionId);
      return { restoredCount, streak: await progress(principal.tenantId, req.memberExternalId, streak) };
    },

    async *exportMember(req, context) {
      const principal = principalOf(context);
      for await (const data of exportMember(deps.pool, principal.tenantId, req.memberExternalId, deps.now(), context.signal)) yield { data };
    },

    async eraseMember(req, context) {
      const principal = principalOf(context);
      const erasure = await eraseMember(deps.pool, principal.tenantId, req.memberExternalId, { citus: deps.citus ?? false });
      return {
        erased: erasure.erased,
        tables: erasure.tables.map((t) => ({ table: t.table, deletedCount: BigInt(t.deleted) })),
        cancelledRewardCount: erasure.cancelledRewards,
      };
    },
  };
}
