import { defineEntity, p } from "@mikro-orm/core";

const MemberSchema = defineEntity({
  name: "Member",
  tableName: "member",
  uniques: [{ properties: ["tenantId", "externalId"] }],
  properties: {
    id: p.uuid().primary(),
    tenantId: p.uuid(),
    /** The tenant's own identifier (customerId, user_id, userIdentifier, ownedBy.externalId). */
    externalId: p.string().length(256),
    firstName: p.string().length(256).nullable(),
    lastName: p.string().length(256).nullable(),
    email: p.string().length(320).nullable(),
    phone: p.string().length(16).nullable(),
    timeZone: p.string().length(64).nullable(),
    locale: p.string().length(35).nullable(),
    /** Built-in points ledger balance, credited by POINTS rewards fulfilled by the PROVIDER mode. */
    pointsBalance: p.double().default(0),
    /** The member chose not to appear on leaderboards (copied onto their member_streak rows). */
    leaderboardOptOut: p.boolean().default(false),
    /** The name end users see for this member on leaderboards; never their external id. */
    displayName: p.string().length(64).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});

export class Member extends MemberSchema.class {}
MemberSchema.setClass(Member);
export { MemberSchema };
