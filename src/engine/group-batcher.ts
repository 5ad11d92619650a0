// Group commit for the hot paths: concurrent calls are collected and handed to `run` together, so N requests
// share one transaction (one commit fsync) or one query instead of paying for N.
//
// No latency is added when idle: a call that finds a free slot is flushed at the end of the current event-loop
// turn (setImmediate — just long enough for the other requests decoded from the same socket read to join it).
// While `maxInFlight` batches are running, calls queue; each finishing batch flushes what queued meanwhile, up
// to `maxBatch` at a time, in arrival order.

export type Settled<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

export interface BatcherOptions {
  readonly maxBatch: number;
  readonly maxInFlight: number;
}

export interface BatchStats {
  readonly batches: number;
  readonly items: number;
  readonly largest: number;
}

export interface Batcher<I, O> {
  submit(item: I): Promise<O>;
  stats(): BatchStats;
}

interface Waiting<I, O> {
  readonly item: I;
  readonly resolve: (value: O) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * `run` answers one Settled per item, in order; a throw from `run` fails every item of that batch. Items never
 * wait for a batch that is not running: the queue is drained as soon as a slot frees up.
 */
export function createBatcher<I, O>(run: (items: readonly I[]) => Promise<readonly Settled<O>[]>, options: BatcherOptions): Batcher<I, O> {
  const maxBatch = Math.max(1, options.maxBatch);
  const maxInFlight = Math.max(1, options.maxInFlight);
  let queue: Waiting<I, O>[] = [];
  let inFlight = 0;
  let scheduled = false;
  let batches = 0;
  let items = 0;
  let largest = 0;

  function schedule(): void {
    if (scheduled || inFlight >= maxInFlight || queue.length === 0) return;
    scheduled = true;
    setImmediate(flush);
  }

  function flush(): void {
    scheduled = false;
    while (inFlight < maxInFlight && queue.length > 0) {
      const taken = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
      queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
      inFlight++;
      batches++;
      items += taken.length;
      largest = Math.max(largest, taken.length);
      void execute(taken);
    }
  }

  async function execute(taken: readonly Waiting<I, O>[]): Promise<void> {
    try {
      const results = await run(taken.map((w) => w.item));
      taken.forEach((w, i) => {
        const r = results[i];
        if (r === undefined) w.reject(new Error("batch returned no result for an item"));
        else if (r.ok) w.resolve(r.value);
        else w.reject(r.error);
      });
    } catch (error) {
      for (const w of taken) w.reject(error);
    } finally {
      inFlight--;
      schedule();
    }
  }

  return {
    submit(item) {
      return new Promise<O>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        schedule();
      });
    },
    stats: () => ({ batches, items, largest }),
  };
}
