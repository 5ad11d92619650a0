// Verification keys for end-user JWTs. A configured public key must parse and fit its algorithm before it is
// stored (RS256: an RSA key; ES256: an EC key on P-256), and is stored as SPKI PEM, the form the auth interceptor
// imports — so a PKCS#1 "RSA PUBLIC KEY" is accepted too.
import { createPublicKey } from "node:crypto";

export type AsymmetricJwtAlgorithm = "RS256" | "ES256";

/** The key as SPKI PEM, or an explanation of why it does not fit. */
export function normalisePublicKey(pem: string, algorithm: AsymmetricJwtAlgorithm): { ok: true; spki: string } | { ok: false; problem: string } {
  let key;
  try {
    key = createPublicKey({ key: pem, format: "pem" });
  } catch (error) {
    return { ok: false, problem: `public_key_pem does not parse: ${(error as Error).message}` };
  }
  if (algorithm === "RS256" && key.asymmetricKeyType !== "rsa") return { ok: false, problem: "RS256 needs an RSA public key" };
  if (algorithm === "ES256" && (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1")) {
    return { ok: false, problem: "ES256 needs an EC public key on P-256" };
  }
  return { ok: true, spki: key.export({ format: "pem", type: "spki" }).toString() };
}
