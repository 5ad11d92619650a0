// CORS for Connect and gRPC-Web from browser pages on other origins (issue 12). Allowed origins are the
// server's global list (KINDLING_CORS_ORIGINS) plus each tenant's own (TenantService.SetBrowserOrigins), all held
// in memory (src/engine/access/browser-access.ts): no request waits on the database for this.
//
// A preflight carries no credentials, so it cannot name a tenant: it is granted when any tenant (or the global
// list) allows the origin, and cached by the browser for PREFLIGHT_MAX_AGE_S, so reads do not pay one per call.
// The actual request is granted only when the tenant its credentials name allows the origin (or the global list
// does): a page on tenant A's origin calling with tenant B's token gets a response it cannot read. The tenant is
// read from the credentials without verifying them (credentialTenant): unverified credentials get only an
// UNAUTHENTICATED answer, verified ones only the data of the tenant they name.
//
// Calls with a tenant's API key get no grant at all, whatever the origin: a secret has no place in a browser
// page; pages use end-user JWTs or member sessions. API-key headers are not in the allowed request headers either.
import { cors as connectCors } from "@connectrpc/connect";
import type { Logger } from "../observability/logger.ts";
import { credentialTenant } from "./interceptors/auth.interceptor.ts";

/** Chromium caps a preflight's cache at two hours; Firefox at a day. */
export const PREFLIGHT_MAX_AGE_S = 7200;
const REFUSAL_LOG_INTERVAL_MS = 60_000;

const ALLOWED_METHODS = connectCors.allowedMethods.join(", ");
// What Kindling reads beyond Connect's own: the end user's bearer token, and the guest's tenant.
const ALLOWED_HEADERS = [...connectCors.allowedHeaders, "Authorization", "X-Kindling-Tenant"].join(", ");
const EXPOSED_HEADERS = connectCors.exposedHeaders.join(", ");

export interface OriginLists {
  allowedForAnyTenant(origin: string): boolean;
  allowedForTenant(tenantId: string, origin: string): boolean;
}

export interface CorsPolicy {
  /** Headers answering a preflight (OPTIONS with Access-Control-Request-Method). */
  preflight(origin: string): Record<string, string>;
  /** Headers for an actual cross-origin request with these request headers. */
  actual(origin: string, header: { get(name: string): string | null }): Record<string, string>;
}

export function createCorsPolicy(options: {
  readonly globalOrigins: readonly string[];
  readonly origins: OriginLists;
  readonly logger: Logger;
  readonly now?: () => number;
}): CorsPolicy {
  const global = new Set(options.globalOrigins);
  const now = options.now ?? Date.now;
  const lastLogged = new Map<string, number>();

  // One warning per origin and reason a minute: a misconfigured page calling in a loop must not flood the log.
  function refuse(origin: string, reason: string, tenantId?: string): Record<string, string> {
    const key = `${reason}\u0000${origin}\u0000${tenantId ?? ""}`;
    const t = now();
    const last = lastLogged.get(key);
    if (last === undefined || t - last >= REFUSAL_LOG_INTERVAL_MS) {
      if (lastLogged.size > 10_000) lastLogged.clear();
      lastLogged.set(key, t);
      options.logger.warn({ origin, reason, ...(tenantId ? { tenant_id: tenantId } : {}) }, "browser origin not allowed: no CORS grant");
    }
    return { vary: "Origin" };
  }

  return {
    preflight(origin) {
      if (!global.has(origin) && !options.origins.allowedForAnyTenant(origin)) return refuse(origin, "origin_not_allowed_for_any_tenant");
      return {
        vary: "Origin",
        "access-control-allow-origin": origin,
        "access-control-allow-methods": ALLOWED_METHODS,
        "access-control-allow-headers": ALLOWED_HEADERS,
        "access-control-max-age": String(PREFLIGHT_MAX_AGE_S),
      };
    },

    actual(origin, header) {
      const credential = credentialTenant(header);
      if (credential.kind === "api-key") return refuse(origin, "api_key_from_browser");
      const allowed = global.has(origin) || (credential.kind === "tenant" && options.origins.allowedForTenant(credential.tenantId, origin));
      if (!allowed) return refuse(origin, "origin_not_allowed_for_tenant", credential.kind === "tenant" ? credential.tenantId : undefined);
      return { vary: "Origin", "access-control-allow-origin": origin, "access-control-expose-headers": EXPOSED_HEADERS };
    },
  };
}

/** Whether a request's Origin is the server's own (the browser then needs no grant): same scheme-less host. */
export function isSameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  return origin === `http://${host}` || origin === `https://${host}`;
}
