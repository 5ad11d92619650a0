// Typed per-request values, the only way handlers learn who is calling (no module globals).
import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";

export type Role = "ADMIN" | "SERVICE" | "END_USER" | "GUEST";

export type Principal =
  | { readonly role: "ADMIN" | "SERVICE"; readonly tenantId: string; readonly credentialId: string }
  | {
      readonly role: "END_USER";
      readonly tenantId: string;
      readonly memberExternalId: string;
      readonly credentialId: string;
      /** A member session scoped to one definition (CreateMemberSession): the only definition it may touch. */
      readonly definitionId?: string | undefined;
    }
  | { readonly role: "GUEST"; readonly tenantId: string; readonly credentialId: string };

/** Set by the auth interceptor before any handler runs; handlers read it with `principalOf(context)`. */
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "authenticated caller" });

/**
 * A caller the server itself vouches for, set by the HTTP layer and never from request headers: the /demo page's
 * operator panel acting as its demo tenant's ADMIN (src/api/demo/demo-access.ts). The auth interceptor takes it
 * instead of credentials; permissions still apply.
 */
export const vouchedPrincipalKey = createContextKey<Principal | undefined>(undefined, { description: "caller vouched for by the server" });

/** The caller of a handler behind the auth interceptor; its absence is a wiring bug, answered UNAUTHENTICATED. */
export function principalOf(context: HandlerContext): Principal {
  const principal = context.values.get(principalKey);
  if (!principal) throw new ConnectError("no authenticated caller", Code.Unauthenticated);
  return principal;
}
