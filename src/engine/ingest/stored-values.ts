// What PostgreSQL stores for a value the batched ingestor writes, worked out in memory, so the batch's write does
// not have to send every inserted activity back (`returning` all its columns made PostgreSQL format, and the API
// parse, two timestamps, an array and a JSON document per activity only to read back what it had just sent).
//
// Only the conversions the activity insert's columns apply (batch-sql.ts, from jsonb_to_recordset):
//   - varchar(n): a string longer than n characters is an error, unless the excess is all spaces, which an
//     assignment cuts off;
//   - jsonb: object keys are stored in jsonb's own order (shorter first, then by their UTF-8 bytes), and read back
//     as the driver reads them (JSON.parse of the text PostgreSQL writes);
//   - double precision: the value read back is the double its shortest text gives (String(v): -0 becomes 0);
//   - timestamptz: whole milliseconds (a Date).

/** The string a varchar(`limit`) column stores for `s` (an over-long string with other excess fails the insert). */
export function storedVarchar(s: string, limit: number): string;
export function storedVarchar(s: string | null, limit: number): string | null;
export function storedVarchar(s: string | null, limit: number): string | null {
  // Fewer UTF-16 units than the limit: fewer characters too.
  if (s === null || s.length <= limit) return s;
  const chars = [...s];
  if (chars.length <= limit) return s;
  const excess = chars.slice(limit);
  return excess.every((c) => c === " ") ? chars.slice(0, limit).join("") : s;
}

const utf8 = new TextEncoder();

/** jsonb's order of object keys: by length in bytes, then byte by byte. */
function jsonbKeyOrder(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/** `value` as JSON text with every object's keys in jsonb's order (what PostgreSQL writes for a jsonb value). */
function jsonbText(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return jsonbText(JSON.parse(JSON.stringify(value)));
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined || typeof v === "function" ? "null" : jsonbText(v))).join(",")}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).filter((k) => record[k] !== undefined && typeof record[k] !== "function");
  // Keys ASCII-only and of distinct lengths are the usual case; the comparator handles every case.
  keys.sort(jsonbKeyOrder);
  return `{${keys.map((k) => `${JSON.stringify(k)}:${jsonbText(record[k])}`).join(",")}}`;
}

/**
 * The object a jsonb column holding `value` (an object, or null/undefined for `coalesce(…, '{}')`) reads back
 * as: its keys in jsonb's order, parsed from JSON text as the driver parses it.
 */
export function storedJsonbObject(value: object | null | undefined): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  // No keys (the common case: no metadata): an empty object either way.
  if (Object.keys(value).length === 0) return {};
  return JSON.parse(jsonbText(value)) as Record<string, unknown>;
}

/** The double a `double precision` column stores for `v` and the driver reads back. */
export function storedDouble(v: number): number {
  return Number(String(v));
}
