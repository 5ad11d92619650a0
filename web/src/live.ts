// Live updates for the widget's elements: follow a member's events (WatchEvents, Connect server streaming) and
// re-read on each.
import { errorReason, type KindlingClients } from "./client.ts";

const RETRY_MAX_MS = 30_000;
const CATCH_UP_MS = 1_000;

/**
 * Runs `readOnce` one at a time: a call made during a run shares it and asks for one more run right after, so
 * every caller's promise settles once a read that started after its call has finished.
 */
export function coalescedReads(readOnce: () => Promise<void>): () => Promise<void> {
  let reading: Promise<void> | undefined;
  let again = false;
  return () => {
    if (reading) {
      again = true;
      return reading;
    }
    reading = (async () => {
      try {
        do {
          again = false;
          await readOnce();
        } while (again);
      } finally {
        reading = undefined;
      }
    })();
    return reading;
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });
}

/**
 * Follows the events matching `filter` and calls `read` on each. The server takes its place in the event stream
 * when the call reaches it, but sends no headers before the first event, so the client cannot see that moment:
 * once the stream has been open CATCH_UP_MS it reads once more, which covers anything recorded between the first
 * read and the stream's start, and marks `host` live (`data-live`). A broken stream is reopened from the last
 * cursor after a read (so nothing is missed), backing off up to 30 s: while the stream cannot be held, those reads
 * are the polling fallback. Returns when `signal` aborts.
 */
export async function follow(
  clients: KindlingClients,
  filter: { readonly memberExternalId: string; readonly definitionId: string },
  host: HTMLElement,
  read: () => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  let cursor = "";
  let failures = 0;
  while (!signal.aborted) {
    const caughtUp = setTimeout(() => {
      host.toggleAttribute("data-live", true);
      void read();
    }, CATCH_UP_MS);
    try {
      for await (const { event } of clients.events.watchEvents({ ...filter, afterCursor: cursor }, { signal })) {
        failures = 0;
        if (event?.cursor) cursor = event.cursor;
        void read();
      }
    } catch (error) {
      if (signal.aborted) return;
      if (errorReason(error) === "CURSOR_EXPIRED") cursor = "";
    } finally {
      clearTimeout(caughtUp);
      host.toggleAttribute("data-live", false);
    }
    if (signal.aborted) return;
    failures += 1;
    await sleep(Math.min(RETRY_MAX_MS, 500 * 2 ** Math.min(failures, 6)), signal);
    if (!signal.aborted) await read();
  }
}
