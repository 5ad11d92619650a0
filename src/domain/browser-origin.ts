// Browser origins as CORS compares them: the `Origin` header is the serialised origin — scheme, host and port,
// lower case, no path, the port left out when it is the scheme's default. An allowed origin is kept in exactly
// that form so the comparison per request is a set look-up.

/**
 * The origin as a browser would send it, or a reason it can never match one: only http and https, no
 * credentials, path, query or fragment, and already in serialised form (so "https://Shop.example.com/" or
 * "https://shop.example.com:443" is refused with the form to use instead of silently never matching).
 */
export function parseBrowserOrigin(raw: string): { ok: true; origin: string } | { ok: false; problem: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, problem: `"${raw}" is not an origin such as https://shop.example.com` };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { ok: false, problem: `"${raw}" must use http or https` };
  if (url.username !== "" || url.password !== "") return { ok: false, problem: `"${raw}" must not carry credentials` };
  if (url.origin !== raw) return { ok: false, problem: `"${raw}" is not in the form browsers send; use "${url.origin}"` };
  return { ok: true, origin: url.origin };
}
