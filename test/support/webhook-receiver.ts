// A real local HTTP endpoint for webhook tests: records every request the dispatcher makes (headers and body) and
// answers with the status `answer` picks, and checks a request's Kindling-Signature against the subscription's
// secret the way a receiver would (src/engine/delivery/webhook-dispatcher.ts).
import http from "node:http";
import { createHmac } from "node:crypto";
import type { AddressInfo } from "node:net";

export interface ReceivedWebhook {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export interface WebhookReceiver {
  /** The endpoint's base URL (http://127.0.0.1:port); any path under it is received. */
  readonly url: string;
  /** Requests in arrival order. */
  readonly received: ReceivedWebhook[];
  close(): Promise<void>;
}

/** Starts the endpoint; `answer` gets the request and every request so far (it included) and returns the status. */
export async function startWebhookReceiver(answer: (request: ReceivedWebhook, received: readonly ReceivedWebhook[]) => number = () => 200): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const request = { path: req.url ?? "/", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
      received.push(request);
      const status = answer(request, received);
      res.writeHead(status).end(status >= 200 && status < 300 ? "ok" : "temporarily broken");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The signature a receiver holding `secret` expects on `request` (v1=hex(HMAC-SHA256(secret, timestamp.body))). */
export function expectedSignature(secret: string, request: ReceivedWebhook): string {
  const timestamp = String(request.headers["kindling-timestamp"]);
  return `v1=${createHmac("sha256", secret).update(`${timestamp}.${request.body}`).digest("hex")}`;
}
