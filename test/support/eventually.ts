// Waiting for what a real process does in its own time (a worker relaying, Temporal indexing, a server starting).

/**
 * Calls `probe` every 200 ms until it returns something other than undefined, and returns that; fails after
 * `timeoutMs`. With `ignoreErrors`, a probe that throws counts as "not yet" (e.g. describing a workflow that is
 * not started yet).
 */
export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 30_000, options: { ignoreErrors?: boolean } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await (options.ignoreErrors ? probe().catch(() => undefined) : probe());
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
