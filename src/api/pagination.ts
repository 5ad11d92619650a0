// Opaque, tamper-evident-enough page tokens: base64url JSON of the last row's sort key. A token that does not
// decode is INVALID_ARGUMENT, never a silent first page.
import { invalidArgument } from "./errors.ts";

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

export function pageSize(requested: number): number {
  return requested <= 0 ? DEFAULT_PAGE_SIZE : Math.min(requested, MAX_PAGE_SIZE);
}

export function encodePageToken(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

export function decodePageToken(token: string, arity: number): (string | number)[] | undefined {
  if (token === "") return undefined;
  try {
    const key: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Array.isArray(key) && key.length === arity && key.every((k) => typeof k === "string" || typeof k === "number")) return key;
  } catch {
    // fall through to the typed error
  }
  throw invalidArgument("INVALID_PAGE_TOKEN", "page_token is not one this server issued", [{ field: "page_token", description: "malformed page token" }]);
}

/** A keyset cursor: the sort key (epoch ms) and id of the last row of the previous page. */
export type Cursor = readonly [number, string];

/**
 * One keyset page: decodes the request's token, asks for one row more than the page holds (so "is there a next
 * page" costs no count query), and encodes the next token from the last row kept.
 */
export async function keysetPage<T>(
  request: { readonly pageSize: number; readonly pageToken: string },
  fetch: (limit: number, after: Cursor | undefined) => Promise<readonly T[]>,
  cursorOf: (row: T) => Cursor,
  defaultSize: number = DEFAULT_PAGE_SIZE,
): Promise<{ rows: T[]; nextPageToken: string }> {
  const limit = request.pageSize > 0 ? pageSize(request.pageSize) : defaultSize;
  const after = decodePageToken(request.pageToken, 2) as [number, string] | undefined;
  const rows = await fetch(limit + 1, after);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { rows: page, nextPageToken: rows.length > limit && last !== undefined ? encodePageToken(cursorOf(last)) : "" };
}
