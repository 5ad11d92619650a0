// The verified-key cache of the auth interceptor on its own: a key forgotten (revoked here or on another API
// process) while a verification of it is in flight is not put back by that verification.
import { describe, expect, it } from "vitest";
import { createVerifiedKeyCache } from "../../src/api/interceptors/auth.interceptor.ts";
import type { Principal } from "../../src/api/context.ts";

const principal: Principal = { role: "SERVICE", tenantId: "0b6f3c1e-5b7a-4c39-9a51-3f1f6d2b8e01", credentialId: "kk_one" };

describe("verified-key cache", () => {
  it("keys/a_verification_in_flight_when_the_key_is_revoked_does_not_cache_it", () => {
    const cache = createVerifiedKeyCache(60_000, () => 0);
    const mark = cache.mark(); // taken before the key's row is read (still active)
    cache.forget("kk_one"); // the revocation notice arrives while scrypt runs
    cache.set("fp", principal, mark);
    expect(cache.get("fp")).toBeUndefined();
  });

  it("keys/a_verification_started_after_the_revocation_notice_caches_as_usual", () => {
    const cache = createVerifiedKeyCache(60_000, () => 0);
    cache.forget("kk_one");
    cache.set("fp", principal, cache.mark());
    expect(cache.get("fp")).toBe(principal);
    cache.forget("kk_one");
    expect(cache.get("fp")).toBeUndefined();
  });
});

describe("verified-key cache while revocations cannot be heard", () => {
  it("keys/distrusted_cache_remembers_nothing_until_trusted_again", () => {
    const cache = createVerifiedKeyCache(60_000, () => 0);
    cache.set("fp", principal, cache.mark());
    const inFlight = cache.mark(); // a verification that read its row before the connection was lost
    cache.distrust();
    expect(cache.get("fp")).toBeUndefined();
    cache.set("fp", principal, cache.mark());
    expect(cache.get("fp")).toBeUndefined();
    cache.trust();
    cache.set("fp", principal, inFlight);
    expect(cache.get("fp")).toBeUndefined();
    cache.set("fp", principal, cache.mark());
    expect(cache.get("fp")).toBe(principal);
  });
});
