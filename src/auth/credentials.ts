// API credentials: a public key id and a secret shown once. Only a salted scrypt hash of the secret is stored;
// verification is constant-time. Verified secrets are remembered briefly in memory so the hot path does not pay
// scrypt's deliberate cost on every request.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, hash } from "node:crypto";
import { promisify } from "node:util";

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;
const KEY_LENGTH = 32;

export interface IssuedCredential {
  readonly keyId: string;
  /** Shown to the caller once. */
  readonly secret: string;
  readonly secretHash: string;
}

export async function issueCredential(): Promise<IssuedCredential> {
  const keyId = `kk_${randomBytes(12).toString("base64url")}`;
  const secret = `ks_${randomBytes(32).toString("base64url")}`;
  return { keyId, secret, secretHash: await hashSecret(secret) };
}

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(secret, salt, KEY_LENGTH);
  return `scrypt$${salt.toString("base64url")}$${hash.toString("base64url")}`;
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const [scheme, saltText, hashText] = stored.split("$");
  if (scheme !== "scrypt" || saltText === undefined || hashText === undefined) return false;
  const expected = Buffer.from(hashText, "base64url");
  // A damaged row with a short (or empty) digest must not make the comparison trivial.
  if (expected.length !== KEY_LENGTH) return false;
  const actual = await scrypt(secret, Buffer.from(saltText, "base64url"), expected.length);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A bearer service token is `keyId.secret`, so one header can carry both halves. */
export function parseServiceToken(token: string): { keyId: string; secret: string } | undefined {
  const dot = token.indexOf(".");
  if (dot <= 0 || !token.startsWith("kk_")) return undefined;
  return { keyId: token.slice(0, dot), secret: token.slice(dot + 1) };
}

/** Fingerprint used as the in-memory cache key of a verified secret (never the secret itself). */
export function secretFingerprint(keyId: string, secret: string): string {
  // One-shot digest: it runs on every authenticated call (the verified-key cache key).
  return hash("sha256", `${keyId}\0${secret}`, "base64url");
}
