import { defineEntity, p } from "@mikro-orm/core";

/**
 * What erased members leave behind (migration 0012): per tenant and definition, how many members, activities and
 * rewards (and reward points) EraseMember deleted. No member id. Written on `pg` by
 * src/engine/data-rights/member-erasure.ts.
 */
const MemberErasureTallySchema = defineEntity({
  name: "MemberErasureTally",
  tableName: "member_erasure_tally",
  properties: {
    tenantId: p.uuid().primary(),
    definitionId: p.uuid().primary(),
    erasedMembers: p.integer().default(0),
    erasedActivities: p.bigint("number").default(0),
    erasedRewards: p.integer().default(0),
    erasedRewardPoints: p.double().default(0),
    updatedAt: p.datetime(),
  },
});

export class MemberErasureTally extends MemberErasureTallySchema.class {}
MemberErasureTallySchema.setClass(MemberErasureTally);
export { MemberErasureTallySchema };
