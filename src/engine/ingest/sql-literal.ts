// SQL literals quoted as the pg driver's escapeLiteral quotes them, for the EXECUTE arguments of a batch message
// (batch-message.ts).

/**
 * One value as an SQL literal, quoted as the driver's escapeLiteral quotes (arrays as array literals), for the EXECUTE
 * arguments of a simple-protocol message, which takes no bound parameters. Only what this module binds: strings
 * (JSON documents are passed as strings), finite numbers, booleans, null, and flat arrays of those. Anything else
 * (Date, Buffer, objects, nested arrays) would need the driver's own conversions, so it is refused rather than
 * guessed at. The values are part of the statement text: a failing message's text, data included, reaches the
 * server log (log_min_error_statement), as it would not with bound parameters.
 */
export function sqlLiteral(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return quoteLiteral(`{${v.map(element).join(",")}}`);
  return quoteLiteral(text(v));
}

function text(x: unknown): string {
  if (typeof x === "string") return x;
  if ((typeof x === "number" && Number.isFinite(x)) || typeof x === "boolean") return String(x);
  throw new TypeError(`sqlLiteral: cannot quote a ${typeof x === "object" ? (x?.constructor?.name ?? "object") : typeof x}`);
}

/** An array element, double-quoted; most (ids, external ids) hold no quote or backslash and are not scanned twice. */
function element(x: unknown): string {
  if (x === null || x === undefined) return "NULL";
  const t = text(x);
  return `"${t.includes("\\") || t.includes('"') ? t.replace(/[\\"]/g, (c) => `\\${c}`) : t}"`;
}

/**
 * `s` as a string literal, character for character what the driver's escapeLiteral writes (quotes doubled; when
 * there is a backslash, an E'' literal with backslashes doubled), without its per-character loop: quoting the
 * batch's JSON documents that way was ≈3 % of the API thread at 128 calls in flight (bench/).
 */
export function quoteLiteral(s: string): string {
  const quoted = `'${s.replaceAll("'", "''")}'`;
  return s.includes("\\") ? ` E${quoted.replaceAll("\\", "\\\\")}` : quoted;
}
