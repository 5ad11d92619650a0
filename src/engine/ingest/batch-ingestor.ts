// Recording activity with group commit: concurrent `record()` calls are collected (group-batcher.ts) and a batch
// is applied in ONE PostgreSQL transaction with set-based statements whose number does not grow with the batch
// size, so N activities share one commit fsync and a handful of round trips instead of ~7 statements each. In
// the common case (no inline profiles) a batch is two round trips, each one simple-protocol message of several
// statements (batchMessage: the batch's statements are session-level prepared statements, EXECUTEd with their
// arguments as literals quoted as the driver's escapeLiteral quotes them):
//   1. BEGIN; members created where absent; one SELECT for duplicates and members; one locking SELECT of the
//      streak rows (prelockSql);
//   2. one statement for every write, which also answers the reward facts of the responses; COMMIT.
// A batch with inline profiles locks its members before the streak rows (the one-at-a-time path's order), so its
// locking SELECT waits for a round trip of its own, after BEGIN and the duplicates' SELECT each had theirs.
//
// The result of every item is the one the one-at-a-time path (activity-ingestor.ts) gives when the items are run
// in arrival order:
//   - duplicates: an idempotency key already stored answers `duplicate` with the stored activity and the current
//     state (one pre-check SELECT for the whole batch, which also reads the members); a key repeated inside the
//     batch is a duplicate of its first occurrence and sees the state after it; a duplicate changes nothing (not
//     even the member's profile);
//   - the member upsert (inline profile) merges a member's profiles in arrival order, exactly as consecutive
//     `coalesce` upserts would, and each item sees the time zone as of its own position;
//   - member-streak rows are locked in one `SELECT … ORDER BY id FOR UPDATE` (the sweeps' order), created in
//     their initial state when absent, and the domain runs in memory in arrival order, so an activity sees every
//     earlier activity of the batch; each row is written once, with the projections of `memberStreakColumns`
//     (the same function the single-row save uses), and its version moves once per activity as before;
//   - the writes are one statement (data-modifying WITH items): streak rows, activities, rewards with their outbox
//     rows, events, with the same dedupe keys as before. Activities are inserted `returning`, and the activity
//     table's key trigger (migration 0016) skips one whose idempotency key is stored: a row that does not come
//     back is a concurrent duplicate (committed after the pre-check), and
//     kindling_batch_check (migration 0006) then raises KB001 inside the statement, so neither it nor the COMMIT
//     sent with it takes effect; the batch runs again and reads that key as stored. A concurrent duplicate the
//     domain itself sees (in a locked streak row's state) rolls the batch back before the write; that item goes
//     through the one-at-a-time path (which answers `duplicate`) while the rest run again as a batch.
// A deadlock, serialization failure or KB001 retries the batch; any other error falls back to one transaction per item,
// so one bad item never fails the others. Targets are resolved before queueing, so an unknown or non-live
// definition fails its own call with TargetDefinitionError, as before.
//
// The parts: this file is the batch runner (queueing, retries, the fall-back to one item at a time);
// batch-attempt.ts is one attempt (one transaction); batch-sql.ts holds the statement texts, batch-message.ts sends
// them (prepared statements in one simple-protocol message), sql-literal.ts quotes their arguments.
import type { Pool } from "pg";
import { isNewMemberRace } from "../../db/member-id.ts";
import {
  createActivityIngestor,
  resolveTargets,
  type ActivityIngestor,
  type RecordActivityInput,
  type RecordActivityResult,
} from "./activity-ingestor.ts";
import type { DefinitionCatalog } from "../definitions/definition-catalog.ts";
import { createBatcher, type BatchStats, type Settled } from "../group-batcher.ts";
import { teamRuleOf } from "../teams/team-streaks.ts";
import { attemptBatch, CommittedBatchError, RetryBatch, type Attempt, type Pending } from "./batch-attempt.ts";
import { preparedStatementsOf } from "./batch-message.ts";
import { isRolledBackForAnother, sqlState } from "../transaction.ts";


export interface BatchIngestorOptions {
  /**
   * Session-level prepared statements for the batch's statements (default true). False sends them as plain SQL
   * with literal values instead: a proxy that pools by transaction (PgBouncer's transaction mode) does not keep a
   * connection's prepared statements from one transaction to the next.
   */
  readonly preparedStatements?: boolean;
  /**
   * Store the windows each activity finalises as history (streak_window; default true). False is a measuring aid
   * (KINDLING_HISTORY=false): the history is then incomplete.
   */
  readonly history?: boolean;
  /** Most activities in one transaction (default 256). */
  readonly maxBatch?: number;
  /**
   * Batches running at once, each on its own connection; further calls queue meanwhile (default 4: measured in
   * bench/ at 32 calls in flight, 2 left both the API thread and PostgreSQL partly idle, waiting on round trips).
   */
  readonly maxInFlight?: number;
  /**
   * Retries of a batch after a deadlock, a serialization failure, a concurrent profile change or a key stored
   * concurrently (KB001) before falling back to one item at a time.
   */
  readonly maxRetries?: number;
  /**
   * The database is a Citus coordinator (src/db/database-kind.ts): a batch is split by member, each member's
   * activities recorded in order, one transaction each, on that member's shard (the batched statements lock and
   * write many members' rows in one statement chain, which Citus plans per shard only for one shard). Members run
   * side by side, up to `citusMembersInFlight` at once (default 8). An item whose transaction was aborted by a
   * deadlock or a serialization failure runs again, up to `maxRetries` times (see recordOnShard).
   */
  readonly citus?: boolean;
  readonly citusMembersInFlight?: number;
}

export interface BatchIngestStats extends BatchStats {
  /** Batches run again after a deadlock, a serialization failure, a concurrent profile change or a KB001 write. */
  readonly retries: number;
  /**
   * A concurrent transaction stored one of the batch's keys first: counts the items the domain saw as duplicates
   * only inside the transaction (answered one at a time), plus one per write whose batch check failed (KB001; the
   * batch ran again).
   */
  readonly conflicts: number;
  /** Items run one at a time after a batch failed for another reason. */
  readonly fallbacks: number;
  /** Batches PostgreSQL aborted to break a deadlock (each also counts as a retry or leads to a fallback). */
  readonly deadlocks: number;
}

export interface BatchIngestor extends ActivityIngestor {
  /** Records `inputs` in order, in consecutive batches (RecordActivities): item k+1 sees item k's result. */
  recordMany(inputs: readonly RecordActivityInput[]): Promise<Settled<RecordActivityResult>[]>;
  stats(): BatchIngestStats;
}

const everyIngestor: (() => BatchIngestStats)[] = [];

/** Totals over every batched ingestor of this process (for the benchmark's report). */
export function batchIngestTotals(): BatchIngestStats {
  const all = everyIngestor.map((s) => s());
  const sum = (f: (s: BatchIngestStats) => number) => all.reduce((n, s) => n + f(s), 0);
  return {
    batches: sum((s) => s.batches), items: sum((s) => s.items), largest: Math.max(0, ...all.map((s) => s.largest)),
    retries: sum((s) => s.retries), conflicts: sum((s) => s.conflicts), fallbacks: sum((s) => s.fallbacks), deadlocks: sum((s) => s.deadlocks),
  };
}

/** SQLSTATE kindling_batch_check raises (migration 0006): an activity of the batch was stored concurrently. */
const BATCH_CONFLICT = "KB001";

const isRetryable = (error: unknown) =>
  error instanceof RetryBatch || isRolledBackForAnother(error) || sqlState(error) === BATCH_CONFLICT || isNewMemberRace(error);

export function createBatchIngestor(deps: { pool: Pool; catalog: DefinitionCatalog; now: () => number; single?: ActivityIngestor; options?: BatchIngestorOptions }): BatchIngestor {
  const { pool, catalog } = deps;
  const citus = deps.options?.citus ?? false;
  const single = deps.single ?? createActivityIngestor({ ...deps, history: deps.options?.history ?? true, citus });
  const maxRetries = deps.options?.maxRetries ?? 5;
  const maxBatch = deps.options?.maxBatch ?? 256;
  const prepared = deps.options?.preparedStatements ?? true;
  const history = deps.options?.history ?? true;
  const counts = { retries: 0, conflicts: 0, fallbacks: 0, deadlocks: 0 };

  async function oneByOne(items: readonly Pending[]): Promise<Settled<RecordActivityResult>[]> {
    const out: Settled<RecordActivityResult>[] = [];
    for (const item of items) {
      try {
        out.push({ ok: true, value: await single.record(item.input) });
      } catch (error) {
        out.push({ ok: false, error });
      }
    }
    return out;
  }

  /**
   * Citus: one item in its own transaction, run again after a deadlock or a serialization failure as a batch is on
   * one PostgreSQL. Citus aborts a transaction with 40P01 for a deadlock on a worker and also for one its
   * distributed deadlock detector finds ("canceling the transaction since it was involved in a distributed
   * deadlock"); either way the transaction rolled back and nothing of it is stored, so running it again is safe.
   */
  async function recordOnShard(item: Pending): Promise<Settled<RecordActivityResult>> {
    for (let retries = 0; ; retries++) {
      try {
        return { ok: true, value: await single.record(item.input) };
      } catch (error) {
        if (sqlState(error) === "40P01") counts.deadlocks++;
        if (isRetryable(error) && retries < maxRetries) {
          counts.retries++;
          continue;
        }
        return { ok: false, error };
      }
    }
  }

  /** Citus: each member's items in order, members side by side (see BatchIngestorOptions.citus). */
  async function perMember(items: readonly Pending[]): Promise<Settled<RecordActivityResult>[]> {
    const groups = new Map<string, number[]>();
    items.forEach((item, i) => {
      const key = `${item.input.tenantId}\u0000${item.input.memberExternalId}`;
      const group = groups.get(key);
      if (group) group.push(i);
      else groups.set(key, [i]);
    });
    const out: Settled<RecordActivityResult>[] = new Array<Settled<RecordActivityResult>>(items.length);
    const queue = [...groups.values()];
    const lanes = Math.min(queue.length, deps.options?.citusMembersInFlight ?? 8);
    await Promise.all(Array.from({ length: lanes }, async () => {
      for (let group = queue.shift(); group !== undefined; group = queue.shift()) {
        for (const i of group) out[i] = await recordOnShard(items[i]!);
      }
    }));
    return out;
  }

  async function runBatch(items: readonly Pending[], retries = 0): Promise<Settled<RecordActivityResult>[]> {
    if (citus) return perMember(items);
    if (items.length === 1 && retries > 0) return oneByOne(items);
    let attempt: Attempt;
    const client = await pool.connect();
    try {
      attempt = await attemptBatch(client, items, deps.now(), prepared, history);
    } catch (error) {
      // A connection that cannot even roll back (or tell which statements it holds) is dropped rather than
      // returned to the pool.
      const broken = await client
        .query("rollback")
        .then(() => (prepared ? preparedStatementsOf(client) : undefined))
        .then(() => false, () => true);
      client.release(broken);
      if (error instanceof CommittedBatchError) return items.map(() => ({ ok: false, error: error.cause }));
      if (sqlState(error) === BATCH_CONFLICT) counts.conflicts++;
      if (sqlState(error) === "40P01") counts.deadlocks++;
      if (isRetryable(error) && retries < maxRetries) {
        counts.retries++;
        return runBatch(items, retries + 1);
      }
      counts.fallbacks += items.length;
      return oneByOne(items);
    }
    client.release();
    if (attempt.kind === "done") return attempt.results;
    // Concurrent duplicates: everything was rolled back. Those items answer through the one-at-a-time path
    // (which reports them as duplicates); the others run again as a batch.
    const conflicting = new Set(attempt.conflicts);
    counts.conflicts += conflicting.size;
    const rest = items.filter((_, i) => !conflicting.has(i));
    const restResults = rest.length > 0 ? await runBatch(rest, retries + 1) : [];
    const conflictResults = await oneByOne(items.filter((_, i) => conflicting.has(i)));
    const out: Settled<RecordActivityResult>[] = [];
    let r = 0;
    let c = 0;
    for (let i = 0; i < items.length; i++) out.push(conflicting.has(i) ? conflictResults[c++]! : restResults[r++]!);
    return out;
  }

  /**
   * Targets are resolved per item when its batch starts (cached catalog reads), so a call's place in the queue is
   * the order it was made in, and an unknown or non-live definition fails that call alone.
   */
  async function resolveAndRun(inputs: readonly RecordActivityInput[]): Promise<Settled<RecordActivityResult>[]> {
    const resolved = await Promise.all(
      inputs.map(async (input): Promise<Pending | { error: unknown }> => {
        try {
          return { input, defs: await resolveTargets(catalog, input) };
        } catch (error) {
          return { error };
        }
      }),
    );
    const runnable = resolved.filter((p): p is Pending => "input" in p);
    // Team definitions take the one-at-a-time path, which also updates the member's team in the same transaction.
    const forTeam = (p: Pending) => p.defs.some((d) => teamRuleOf(d) !== null);
    const batched = runnable.filter((p) => !forTeam(p));
    const single = runnable.filter(forTeam);
    const batchedResults = batched.length > 0 ? await runBatch(batched) : [];
    const singleResults = await oneByOne(single);
    let b = 0;
    let s = 0;
    const results = runnable.map((p) => (forTeam(p) ? singleResults[s++]! : batchedResults[b++]!));
    let k = 0;
    return resolved.map((p) => ("input" in p ? results[k++]! : { ok: false, error: p.error }));
  }

  const batcher = createBatcher<RecordActivityInput, RecordActivityResult>(resolveAndRun, {
    maxBatch,
    maxInFlight: deps.options?.maxInFlight ?? 4,
  });

  const stats = (): BatchIngestStats => ({ ...batcher.stats(), ...counts });
  everyIngestor.push(stats);

  return {
    record: (input) => batcher.submit(input),
    async recordMany(inputs) {
      const out: Settled<RecordActivityResult>[] = [];
      for (let start = 0; start < inputs.length; start += maxBatch) out.push(...(await resolveAndRun(inputs.slice(start, start + maxBatch))));
      return out;
    },
    stats,
  };
}
