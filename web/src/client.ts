// The widget's Connect-Web clients: one transport per API and token. Reads are GETs (NO_SIDE_EFFECTS methods with
// useHttpGet) in the binary format, so the same read is the same URL and the browser reuses its cached preflight.
import { ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { MemberStreakService } from "../../src/gen/kindling/v1/member_streak_service_pb.js";
import { RewardService } from "../../src/gen/kindling/v1/reward_service_pb.js";
import { EventService } from "../../src/gen/kindling/v1/event_service_pb.js";

export interface KindlingClients {
  readonly streaks: Client<typeof MemberStreakService>;
  readonly rewards: Client<typeof RewardService>;
  readonly events: Client<typeof EventService>;
}

const cache = new Map<string, KindlingClients>();

/** Clients for one API base URL and member token, shared by every element on the page that uses the same pair. */
export function clientsFor(api: string, token: string): KindlingClients {
  const key = `${api}\n${token}`;
  let clients = cache.get(key);
  if (!clients) {
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    const transport = createConnectTransport({ baseUrl: api.replace(/\/+$/, ""), useHttpGet: true, useBinaryFormat: true, interceptors: [auth] });
    clients = { streaks: createClient(MemberStreakService, transport), rewards: createClient(RewardService, transport), events: createClient(EventService, transport) };
    cache.set(key, clients);
  }
  return clients;
}

/** The stable ErrorInfo reason of a Kindling error (STREAK_TOO_SHORT, ALREADY_CLAIMED …), if any. */
export function errorReason(error: unknown): string | undefined {
  return error instanceof ConnectError ? error.findDetails(ErrorInfoSchema)[0]?.reason : undefined;
}

/**
 * The member a token speaks for: the `sub` claim of a JWT (end-user JWTs and Kindling's member sessions both carry
 * it). Read without verifying — the server verifies; this only names the member in requests it will check.
 */
export function memberOfToken(token: string): string | undefined {
  const payload = token.split(".")[1];
  if (!payload) return undefined;
  try {
    // atob yields one character per byte; the claims are UTF-8 (member ids need not be ASCII).
    const bytes = Uint8Array.from(atob(payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
    const json = new TextDecoder().decode(bytes);
    const claims = JSON.parse(json) as { sub?: unknown };
    return typeof claims.sub === "string" && claims.sub !== "" ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}
