// The /demo page's server side (a development aid, KINDLING_DEMO): the page's operator panel calls the API
// through /demo/rpc/<service>/<method>, and the server makes those calls as the ADMIN of a demo tenant of its own,
// so the browser never holds or sends a secret. Only what the panel needs is reachable this way (definitions,
// activity, members, progress, rewards, events, minting a member session); key management, webhooks, JWT and
// origin settings are not. With the demo off (the default outside the embedded `npm start`), none of it exists.
import type { Pool } from "pg";
import type { Principal } from "../context.ts";

/** The demo's tenant, created on start when the demo is on. A fixed id, so every API process agrees on it. */
export const DEMO_TENANT_ID = "00000000-0000-4000-8000-00000000de70";

export const DEMO_RPC_PREFIX = "/demo/rpc/";

/** Services whose every method the panel may call. */
const OPEN_SERVICES = new Set([
  "kindling.v1.DefinitionService",
  "kindling.v1.ActivityService",
  "kindling.v1.MemberStreakService",
  "kindling.v1.MemberService",
  "kindling.v1.RewardService",
]);

/** Single methods of the other services. */
const OPEN_METHODS = new Set([
  "kindling.v1.TenantService/GetTenant",
  "kindling.v1.TenantService/CreateMemberSession",
  "kindling.v1.EventService/ListEvents",
  "kindling.v1.EventService/WatchEvents",
]);

export interface DemoAccess {
  /** Who the panel's calls act as. */
  readonly principal: Principal;
  /** The API path (`/kindling.v1.X/Y`, query kept) a /demo/rpc/ path stands for, or undefined if not open to it. */
  apiPath(url: string): string | undefined;
}

export function createDemoAccess(): DemoAccess {
  return {
    principal: { role: "ADMIN", tenantId: DEMO_TENANT_ID, credentialId: "demo-panel" },
    apiPath(url) {
      if (!url.startsWith(DEMO_RPC_PREFIX)) return undefined;
      const rest = url.slice(DEMO_RPC_PREFIX.length);
      const path = rest.split("?", 1)[0]!;
      const slash = path.indexOf("/");
      if (slash <= 0) return undefined;
      const service = path.slice(0, slash);
      if (!OPEN_SERVICES.has(service) && !OPEN_METHODS.has(path)) return undefined;
      return `/${rest}`;
    },
  };
}

/** Creates the demo tenant if it is not there yet (idempotent; any number of processes may run it). */
export async function ensureDemoTenant(pool: Pool): Promise<void> {
  await pool.query(
    `insert into tenant (id, name, jwt_config, created_at, updated_at) values ($1, 'Kindling demo', null, now(), now())
     on conflict (id) do nothing`,
    [DEMO_TENANT_ID],
  );
}
