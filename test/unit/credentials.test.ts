// API secrets on their own (src/auth/credentials.ts): verified against the stored scrypt hash with a constant-time
// comparison of equal-length digests, and a stored hash that is not a full digest verifies nothing.
import { describe, expect, it } from "vitest";
import { hashSecret, issueCredential, verifySecret } from "../../src/auth/credentials.ts";

describe("API secrets", () => {
  it("secrets/the_issued_secret_verifies_and_any_other_does_not", async () => {
    const issued = await issueCredential();
    expect(await verifySecret(issued.secret, issued.secretHash)).toBe(true);
    expect(await verifySecret(`${issued.secret}x`, issued.secretHash)).toBe(false);
    expect(await verifySecret(issued.secret.slice(0, -1), issued.secretHash)).toBe(false);
    expect(await verifySecret("", issued.secretHash)).toBe(false);
  });

  it("secrets/a_stored_hash_with_a_short_or_empty_digest_verifies_nothing", async () => {
    const [scheme, salt, digest] = (await hashSecret("s3cret")).split("$") as [string, string, string];
    expect(await verifySecret("anything", `${scheme}$${salt}$`)).toBe(false);
    expect(await verifySecret("s3cret", `${scheme}$${salt}$${Buffer.from(digest, "base64url").subarray(0, 4).toString("base64url")}`)).toBe(false);
    expect(await verifySecret("s3cret", `bcrypt$${salt}$${digest}`)).toBe(false);
  });
});
