// Stored members -> kindling.v1.Member.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { MemberSchema, type Member } from "../../gen/kindling/v1/member_pb.js";
import type { StoredMember } from "../../engine/members/member-store.ts";

export function memberMessage(m: StoredMember): Member {
  return create(MemberSchema, {
    id: m.id,
    externalId: m.externalId,
    firstName: m.firstName ?? "",
    lastName: m.lastName ?? "",
    email: m.email ?? "",
    phoneNumber: m.phone ?? "",
    timeZone: m.timeZone ?? "",
    locale: m.locale ?? "",
    pointsBalance: m.pointsBalance,
    createTime: timestampFromMs(m.createdAt),
    updateTime: timestampFromMs(m.updatedAt),
  });
}
