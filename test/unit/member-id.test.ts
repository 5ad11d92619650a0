import { describe, expect, it } from "vitest";
import { isNewMemberRace, memberIdFor } from "../../src/db/member-id.ts";

describe("memberIdFor", () => {
  it("member_id/is_the_uuidv5_of_the_external_id_in_the_tenant_namespace", () => {
    // RFC 9562 (as RFC 4122 before it): UUIDv5 of "www.example.com" in the DNS namespace.
    expect(memberIdFor("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "www.example.com")).toBe("2ed6657d-e927-568b-95e1-2665a8aea6a2");
    // Again, with the tenant's namespace already decoded, and with the tenant id in capitals (the same 16 bytes).
    expect(memberIdFor("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "www.example.com")).toBe("2ed6657d-e927-568b-95e1-2665a8aea6a2");
    expect(memberIdFor("6BA7B810-9DAD-11D1-80B4-00C04FD430C8", "www.example.com")).toBe("2ed6657d-e927-568b-95e1-2665a8aea6a2");
  });

  it("member_id/same_member_same_id_other_tenant_or_external_id_other_id", () => {
    const tenant = "0b8f3c1e-5a55-4a7b-9a4e-2f0c6c1d9e01";
    const other = "0b8f3c1e-5a55-4a7b-9a4e-2f0c6c1d9e02";
    expect(memberIdFor(tenant, "alice")).toBe(memberIdFor(tenant, "alice"));
    expect(memberIdFor(tenant, "alice")).not.toBe(memberIdFor(tenant, "bob"));
    expect(memberIdFor(tenant, "alice")).not.toBe(memberIdFor(other, "alice"));
    expect(memberIdFor(tenant, "ünïcödé")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("member_id/a_new_member_race_is_a_unique_violation_on_the_primary_key_as_postgresql_or_citus_reports_it", () => {
    const violation = (fields: { code: string; constraint?: string; message?: string }) => Object.assign(new Error(fields.message ?? "duplicate key"), fields);
    // PostgreSQL: the constraint in its own field.
    expect(isNewMemberRace(violation({ code: "23505", constraint: "member_pkey" }))).toBe(true);
    expect(isNewMemberRace(violation({ code: "23505", constraint: "member_pkey_102008" }))).toBe(true);
    // A Citus coordinator relaying a worker's error: no constraint field, the shard's constraint in the message.
    expect(isNewMemberRace(violation({ code: "23505", message: 'duplicate key value violates unique constraint "member_pkey_102008"' }))).toBe(true);
    // Anything else is not this race.
    expect(isNewMemberRace(violation({ code: "23505", constraint: "member_tenant_id_external_id_unique" }))).toBe(false);
    expect(isNewMemberRace(violation({ code: "23505", message: 'duplicate key value violates unique constraint "member_streak_pkey_102040"' }))).toBe(false);
    expect(isNewMemberRace(violation({ code: "40P01", constraint: "member_pkey" }))).toBe(false);
    expect(isNewMemberRace(new Error('unique constraint "member_pkey"'))).toBe(false);
    expect(isNewMemberRace(null)).toBe(false);
  });

  it("member_id/refuses_a_tenant_id_that_is_not_a_uuid", () => {
    expect(() => memberIdFor("tenant-1", "alice")).toThrow(/not a UUID/);
  });
});
