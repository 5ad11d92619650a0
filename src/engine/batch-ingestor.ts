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
//     table's key trigger (migration 0015) skips one whose idempotency key is stored: a row that does not come
//     back is a concurrent duplicate (committed after the pre-check), and
//     kindling_batch_check (migration 0006) then raises KB001 inside the statement, so neither it nor the COMMIT
//     sent with it takes effect; the batch runs again and reads that key as stored. A concurrent duplicate the
//     domain itself sees (in a locked streak row's state) rolls the batch back before the write; that item goes
//     through the one-at-a-time path (which answers `duplicate`) while the rest run again as a batch.
// A deadlock, serialization failure or KB001 retries the batch; any other error falls back to one transaction per item,
// so one bad item never fails the others. Targets are resolved before queueing, so an unknown or non-live
// definition fails its own call with TargetDefinitionError, as before.
import { createHash, randomUUID } from "node:crypto";
import { type Pool, type PoolClient, type QueryResult } from "pg";
import { advance, applyActivity, initialState, type ApplyOutcome, type MemberStreakState, type StreakEffect, type WindowRecord } from "../domain/streak-machine.ts";
import {
  ACTIVITY_COLUMNS,
  FUTURE_TOLERANCE_MS,
  activityRecord,
  createActivityIngestor,
  gateReason,
  resolveTargets,
  type ActivityIngestor,
  type ActivityRecord,
  type ActivityRow,
  MERGE_INLINE_PROFILE,
  type MemberProfile,
  type NotAppliedReason,
  type RecordActivityInput,
  type RecordActivityResult,
  type StreakOutcome,
} from "./activity-ingestor.ts";
import type { CatalogDefinition, DefinitionCatalog } from "./definition-catalog.ts";
import { createBatcher, type BatchStats, type Settled } from "./group-batcher.ts";
import type { OutboxPayloads } from "./outbox.ts";
import { addRewardFact, type RewardFactRow, type RewardFactsByDefinition } from "./progress-reader.ts";
import { planRewards, type PlannedReward } from "./reward-plan.ts";
import { eventsForEffects, type PlannedEvent } from "./streak-events.ts";
import { teamRuleOf } from "./team-streaks.ts";
import { eventRecords, insertEventsSql, memberStreakRecords, saveMemberStreaksSql } from "./streak-persistence.ts";
import { insertStreakWindowsSql, streakWindowRecords, type HistoryOwner } from "./streak-history.ts";

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

interface Pending {
  readonly input: RecordActivityInput;
  readonly defs: readonly CatalogDefinition[];
}

/** SQLSTATE kindling_batch_check raises (migration 0006): an activity of the batch was stored concurrently. */
const BATCH_CONFLICT = "KB001";
const RETRYABLE = new Set(["40P01", "40001", BATCH_CONFLICT]);
const sqlState = (error: unknown) => (typeof error === "object" && error !== null ? String((error as { code?: unknown }).code) : undefined);

/** The batch saw something it cannot order exactly (a concurrent profile change): run it again. */
class RetryBatch extends Error {}

/**
 * Something failed after the batch committed (answering it, not storing it): running it again would answer its
 * items as duplicates of themselves, so each item fails with the cause instead; a client's retry then answers
 * `duplicate` with what was stored.
 */
class CommittedBatchError extends Error {}

function afterCommit<T>(answer: () => T): T {
  try {
    return answer();
  } catch (error) {
    throw new CommittedBatchError("batch committed, answering it failed", { cause: error });
  }
}

const isRetryable = (error: unknown) =>
  error instanceof RetryBatch || RETRYABLE.has(sqlState(error) ?? "");

export function createBatchIngestor(deps: { pool: Pool; catalog: DefinitionCatalog; now: () => number; single?: ActivityIngestor; options?: BatchIngestorOptions }): BatchIngestor {
  const { pool, catalog } = deps;
  const single = deps.single ?? createActivityIngestor({ ...deps, history: deps.options?.history ?? true });
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

  async function runBatch(items: readonly Pending[], retries = 0): Promise<Settled<RecordActivityResult>[]> {
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

// ---------------------------------------------------------------------------------------------------------------
// One attempt: one transaction.

type Attempt = { kind: "done"; results: Settled<RecordActivityResult>[] } | { kind: "conflict"; conflicts: number[] };

interface MemberInfo {
  readonly id: string;
  readonly timeZone: string | null;
}

interface StreakSlot {
  readonly id: string;
  readonly def: CatalogDefinition;
  state: MemberStreakState;
  saves: number;
  /** Index of the first item that made this row exist (-1: it existed before the batch). */
  readonly existsFrom: number;
}

type Kind = { kind: "fresh" } | { kind: "stored"; row: ActivityRow } | { kind: "repeat"; first: number };

/** Records for `jsonb_to_recordset`, each with its position `n`, so an insert can keep their order (lock order). */
const numbered = (records: readonly object[]) => JSON.stringify(records.map((r, n) => ({ ...r, n })));
/** The order members are created and locked in, by every batch: (tenant, external id). */
const byMember = (a: { tenantId: string; externalId: string }, b: { tenantId: string; externalId: string }) =>
  a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : a.externalId < b.externalId ? -1 : a.externalId > b.externalId ? 1 : 0;
const memberKey = (tenantId: string, externalId: string) => `${tenantId}\u0000${externalId}`;
const streakKey = (memberId: string, definitionId: string) => `${memberId}\u0000${definitionId}`;
const PROFILE_FIELDS = ["firstName", "lastName", "email", "phone", "timeZone", "locale"] as const satisfies readonly (keyof MemberProfile)[];

/** A statement as plain SQL with its values as literals (batchMessage without prepared statements). */
function inlineParameters(statement: Statement): string {
  return statement.text.replace(/\$(\d+)/g, (_, n: string) => {
    if (Number(n) < 1 || Number(n) > statement.values.length) throw new Error(`inlineParameters: no value for $${n}`);
    return sqlLiteral(statement.values[Number(n) - 1]);
  });
}

/**
 * One value as an SQL literal, quoted as the driver's escapeLiteral quotes (arrays as array literals), for the EXECUTE
 * arguments of a simple-protocol message, which takes no bound parameters. Only what this module binds: strings
 * (JSON documents are passed as strings), finite numbers, booleans, null, and flat arrays of those. Anything else
 * (Date, Buffer, objects, nested arrays) would need the driver's own conversions, so it is refused rather than
 * guessed at. The values are part of the statement text: a failing message's text, data included, reaches the
 * server log (log_min_error_statement), as it would not with bound parameters.
 */
export function sqlLiteral(v: unknown): string {
  const text = (x: unknown): string => {
    if (typeof x === "string") return x;
    if ((typeof x === "number" && Number.isFinite(x)) || typeof x === "boolean") return String(x);
    throw new TypeError(`sqlLiteral: cannot quote a ${typeof x === "object" ? (x?.constructor?.name ?? "object") : typeof x}`);
  };
  const element = (x: unknown) => (x === null || x === undefined ? "NULL" : `"${text(x).replace(/[\\"]/g, (c) => `\\${c}`)}"`);
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return quoteLiteral(`{${v.map(element).join(",")}}`);
  return quoteLiteral(text(v));
}

/**
 * `s` as a string literal, character for character what the driver's escapeLiteral writes (quotes doubled; when
 * there is a backslash, an E'' literal with backslashes doubled), without its per-character loop: quoting the
 * batch's JSON documents that way was ≈3 % of the API thread at 128 calls in flight (bench/).
 */
export function quoteLiteral(s: string): string {
  const quoted = `'${s.replaceAll("'", "''")}'`;
  return s.includes("\\") ? ` E${quoted.replaceAll("\\", "\\\\")}` : quoted;
}

/** A statement of a batch message: its text with `$n` parameters, their values, and their types (for PREPARE). */
interface Statement {
  readonly text: string;
  readonly values: readonly unknown[];
  readonly types: readonly string[];
}

// The batch's statements are session-level prepared statements (SQL PREPARE, then EXECUTE with literal
// arguments), so each connection parses them once and PostgreSQL can settle on a generic plan instead of planning
// them for every batch (about 2 ms of server CPU per batch, mostly the write statement). Names are derived from
// the text. Which names a connection holds is tracked here; after a failed message it is read back from the
// server (preparedStatementsOf), since how far the message got before the error is unknown.
const statementNames = new Map<string, string>();
const preparedOn = new WeakMap<PoolClient, Set<string>>();
const PREPARED_PREFIX = "kindling_batch_";

/**
 * A prepared statement's name derived from its text: a changed text gets a new name by itself, so no connection
 * can hold an older text under the same name. Also names the batched progress read (batch-progress-reader.ts).
 */
export function hashedStatementName(prefix: string, text: string): string {
  return `${prefix}${createHash("sha256").update(text).digest("hex").slice(0, 20)}`;
}

function statementName(text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    name = hashedStatementName(PREPARED_PREFIX, text);
    statementNames.set(text, name);
  }
  return name;
}

/** Reads back which of this module's statements the connection holds (after a message failed part way). */
async function preparedStatementsOf(client: PoolClient): Promise<void> {
  const { rows } = await client.query<{ name: string }>("select name from pg_prepared_statements where starts_with(name, $1)", [PREPARED_PREFIX]);
  preparedOn.set(client, new Set(rows.map((r) => r.name)));
}

/**
 * Several statements in one round trip (simple query protocol): plain SQL strings, and Statements sent as
 * EXECUTE of a prepared statement (PREPAREd first where this connection lacks it). One result per part.
 */
async function batchMessage(client: PoolClient, parts: readonly (string | Statement)[], prepared: boolean): Promise<QueryResult[]> {
  const held = preparedOn.get(client) ?? new Set<string>();
  const sql: string[] = [];
  const resultAt: number[] = [];
  const preparing: string[] = [];
  for (const part of parts) {
    if (typeof part === "string") {
      resultAt.push(sql.push(part) - 1);
      continue;
    }
    if (!prepared) {
      resultAt.push(sql.push(inlineParameters(part)) - 1);
      continue;
    }
    const name = statementName(part.text);
    if (!held.has(name) && !preparing.includes(name)) {
      sql.push(`prepare ${name}(${part.types.join(", ")}) as ${part.text}`);
      preparing.push(name);
    }
    resultAt.push(sql.push(`execute ${name}(${part.values.map(sqlLiteral).join(", ")})`) - 1);
  }
  const result = (await client.query(sql.join(";\n"))) as unknown as QueryResult | QueryResult[];
  for (const name of preparing) held.add(name);
  preparedOn.set(client, held);
  const results = Array.isArray(result) ? result : [result];
  return resultAt.map((k) => results[k]!);
}

async function attemptBatch(client: PoolClient, items: readonly Pending[], now: number, prepared: boolean, history: boolean): Promise<Attempt> {
  // 1. Duplicates: stored keys and keys repeated inside the batch, with the stored members (one SELECT). Without
  //    inline profiles, the member-streak rows of the stored members are locked in the same round trip as BEGIN
  //    and that SELECT (one simple-protocol message); with profiles, members are locked before streak rows (the
  //    one-at-a-time path's order), so streak rows wait for step 3.
  const classifyQuery = classifySql(items);
  let classified: ClassifyRow[];
  let prelocked: readonly StreakRow[] | null = null;
  if (items.some((p) => p.input.profile)) {
    await client.query("begin");
    classified = (await client.query<ClassifyRow>(classifyQuery.text, [...classifyQuery.values])).rows;
  } else {
    // Absent members are created first, while the batch holds no lock (every writer creates members before it
    // locks streak rows; waiting for a concurrent creator of the same member here can close no cycle).
    const [, , c, l] = await batchMessage(client, ["begin", createMembersSql(items), classifyQuery, prelockSql(items)], prepared);
    classified = c!.rows as ClassifyRow[];
    prelocked = l!.rows as StreakRow[];
  }
  const { kinds, stored } = classify(items, classified);

  // 2. Members: created when absent, profiles applied.
  const { members, zoneAt } = await upsertMembers(client, items, kinds, stored);
  const memberOf = (i: number) => members.get(memberKey(items[i]!.input.tenantId, items[i]!.input.memberExternalId))!;

  // 3. Member-streak rows, locked in id order (unless locked in step 1); absent ones (needed by new activities) created.
  const slots = await lockStreaks(client, items, kinds, memberOf, prelocked);

  // 4. The domain, in memory, in arrival order.
  const activityIds = items.map(() => randomUUID());
  const outcomes: (StreakOutcome[] | null)[] = items.map(() => null);
  const rewards: PlannedReward[] = [];
  const events: PlannedEvent[] = [];
  const windows: { owner: HistoryOwner; windows: readonly WindowRecord[] }[] = [];
  const conflicts: number[] = [];
  const duplicateStreaks = (i: number): StreakOutcome[] => {
    const member = memberOf(i);
    return items[i]!.defs.flatMap((def) => {
      const slot = slots.get(streakKey(member.id, def.id));
      if (!slot || slot.existsFrom >= i) return [];
      const state = advance(def.rules, slot.state, now, { pausedIntervals: def.pauses }).state;
      return [{ definition: def, memberStreakId: slot.id, applied: false, notAppliedReason: "DUPLICATE" as const, outcome: { kind: "DUPLICATE" as const }, state, effects: [], rewards: [] }];
    });
  };
  for (let i = 0; i < items.length; i++) {
    const kind = kinds[i]!;
    const { input, defs } = items[i]!;
    if (kind.kind !== "fresh") {
      outcomes[i] = duplicateStreaks(i);
      continue;
    }
    const member = memberOf(i);
    const zone = zoneAt[i] ?? null;
    const streaks: StreakOutcome[] = [];
    const planned: PlannedReward[] = [];
    const planEvents: PlannedEvent[] = [];
    const planWindows: { owner: HistoryOwner; windows: readonly WindowRecord[] }[] = [];
    let duplicate = false;
    for (const def of defs) {
      const slot = slots.get(streakKey(member.id, def.id))!;
      const gate = gateReason(def, input);
      let next: { state: MemberStreakState; outcome: ApplyOutcome | null; effects: readonly StreakEffect[]; finalised?: readonly WindowRecord[] };
      if (gate) {
        const advanced = advance(def.rules, slot.state, now, { pausedIntervals: def.pauses });
        next = { state: advanced.state, outcome: null, effects: advanced.effects, finalised: advanced.finalised };
      } else {
        next = applyActivity(
          def.rules,
          slot.state,
          { id: input.uniqueIdentifier, occurredAt: input.occurredAt, value: input.value ?? 0, distinctKey: input.distinctKey ?? null, memberTimezone: zone },
          { now, pausedIntervals: def.pauses, futureToleranceMs: FUTURE_TOLERANCE_MS },
        );
      }
      if (next.outcome?.kind === "DUPLICATE") {
        duplicate = true;
        break;
      }
      const notApplied: NotAppliedReason | null = gate ?? (next.outcome?.kind === "NOT_APPLIED" ? next.outcome.reason : null);
      const owner = { tenantId: input.tenantId, memberId: member.id, memberStreakId: slot.id, activityId: activityIds[i]! };
      const granted = planRewards(def, owner, next.effects, now);
      planned.push(...granted);
      const wasReset = next.outcome?.kind === "APPLIED" && next.outcome.wasReset;
      planEvents.push(...eventsForEffects({ ...owner, memberExternalId: input.memberExternalId, definitionId: def.id, wasReset }, next.effects, granted, now));
      if (history && next.finalised !== undefined && next.finalised.length > 0) {
        planWindows.push({ owner: { tenantId: input.tenantId, memberId: member.id, definitionId: def.id, memberStreakId: slot.id }, windows: next.finalised });
      }
      streaks.push({ definition: def, memberStreakId: slot.id, applied: notApplied === null, notAppliedReason: notApplied, outcome: next.outcome, state: next.state, effects: next.effects, rewards: granted });
    }
    if (duplicate) {
      // Stored by a transaction that committed after the pre-check: nothing of it is kept; answered one at a time.
      conflicts.push(i);
      continue;
    }
    for (const s of streaks) {
      const slot = slots.get(streakKey(member.id, s.definition.id))!;
      slot.state = s.state;
      slot.saves += 1;
    }
    outcomes[i] = streaks;
    rewards.push(...planned);
    events.push(...planEvents);
    windows.push(...planWindows);
  }
  // Every item repeating a conflicting key follows it to the one-at-a-time path.
  if (conflicts.length > 0) {
    for (let i = 0; i < items.length; i++) {
      const kind = kinds[i]!;
      if (kind.kind === "repeat" && conflicts.includes(kind.first)) conflicts.push(i);
    }
    await client.query("rollback");
    return { kind: "conflict", conflicts };
  }

  // 5. One statement writes everything: streak rows (once each), activities, rewards with their outbox rows,
  //    events; COMMIT goes in the same round trip. An activity stored concurrently makes the statement raise
  //    KB001 (kindling_batch_check) before anything commits: the batch runs again (runBatch), and sees it stored.
  const fresh = items.map((_, i) => i).filter((i) => kinds[i]!.kind === "fresh");
  const { inserted, facts } = await writeBatch(client, prepared, {
    streaks: [...slots.values()].filter((s) => s.saves > 0), items, fresh, activityIds, outcomes, memberOf, rewards, events, windows, now,
  });

  const results: Settled<RecordActivityResult>[] = afterCommit(() => items.map((item, i) => {
    const kind = kinds[i]!;
    const member = memberOf(i);
    const ownerIndex = kind.kind === "repeat" ? kind.first : i;
    const activity: ActivityRecord =
      kind.kind === "stored" ? activityRecord(kind.row, item.input.memberExternalId) : activityRecord(inserted.get(ownerIndex)!, item.input.memberExternalId);
    return {
      ok: true,
      value: {
        activity,
        duplicate: kind.kind !== "fresh",
        member: { id: member.id, externalId: item.input.memberExternalId, timeZone: zoneAt[i] ?? null },
        streaks: outcomes[i]!,
        // The rewards stored before the batch and those created by items up to this one: item i's response
        // shows the member as item i left them, like its streak state, not as a later item of the batch did.
        rewardFacts: (definitionId: string) => facts(i, member.id, definitionId),
      },
    };
  }));
  return { kind: "done", results };
}

// The batch's statement texts, built once: they are the same for every batch (only their values change), and a
// prepared statement is looked up by its text.
const CLASSIFY_SQL = `select ${ACTIVITY_COLUMNS.split(", ").map((c) => `a.${c}`).join(", ")},
            k.tenant_id as k_tenant_id, k.external_id as k_external_id, k.uid as k_uid, m.id as m_id, m.time_zone as m_time_zone
       from unnest($1::uuid[], $2::text[], $3::text[]) as k(tenant_id, external_id, uid)
       cross join lateral (select m.id, m.time_zone from member m where m.tenant_id = k.tenant_id and m.external_id = k.external_id offset 0) m
       left join lateral (
         select a.* from activity_key ak join activity a on a.id = ak.activity_id and a.recorded_at = ak.recorded_at
          where ak.tenant_id = k.tenant_id and ak.member_id = m.id and ak.unique_identifier = k.uid offset 0
       ) a on true`;

// `offset 0` keeps NOT EXISTS a per-key index probe (a subplan) instead of an anti join, which the planner made a
// hash join over a sequential scan of `member` at a few thousand members (bench/).
const CREATE_MEMBERS_SQL = `insert into member (id, tenant_id, external_id, points_balance, created_at, updated_at)
           select gen_random_uuid(), k.tenant_id, k.external_id, 0, now(), now()
             from unnest($1::uuid[], $2::text[]) with ordinality as k(tenant_id, external_id, n)
            where not exists (select 1 from member m where m.tenant_id = k.tenant_id and m.external_id = k.external_id offset 0)
            order by k.n
           on conflict (tenant_id, external_id) do nothing`;

// The profile path's member read, fenced like the streak-row locks below: each key is found by a unique-index
// probe in a LATERAL with `offset 0`, and the rows read or locked are joined by primary key.
const MEMBERS_SQL = `select m.id, m.tenant_id, m.external_id, m.time_zone
             from unnest($1::uuid[], $2::text[]) as k(tenant_id, external_id)
             cross join lateral (select x.id from member x where x.tenant_id = k.tenant_id and x.external_id = k.external_id offset 0) x
             join member m on m.id = x.id`;

/**
 * Locks member-streak rows in id order, each found by unique-index probes inside one fenced LATERAL (every key
 * column bound) and joined to the rows it locks by primary key, so no plan can pair keys with rows of other
 * members. The keys are ($1 tenant, $2 member, $3 definition), the member given by `member`: its id (once
 * members are known) or its external id, looked up by a scalar subquery (the prelock, before they are).
 */
function lockStreakRowsSql(member: { readonly column: string; readonly type: string; readonly id: string }): string {
  return `select s.id, s.member_id, s.definition_id, st.state
             from unnest($1::uuid[], $2::${member.type}[], $3::uuid[]) as k(tenant_id, ${member.column}, definition_id)
             cross join lateral (
               select ms.id from member_streak ms
                where ms.tenant_id = k.tenant_id and ms.definition_id = k.definition_id and ms.member_id = ${member.id}
               offset 0
             ) x
             join member_streak s on s.id = x.id
             join member_streak_state st on st.member_streak_id = x.id
            order by s.id
            for update of s, st`;
}

const LOCK_STREAKS_SQL = lockStreakRowsSql({ column: "member_id", type: "uuid", id: "k.member_id" });

const PRELOCK_SQL = lockStreakRowsSql({
  column: "external_id",
  type: "text",
  id: "(select m.id from member m where m.tenant_id = k.tenant_id and m.external_id = k.external_id)",
});

/**
 * Duplicates (stored keys, and keys repeated inside the batch) and the stored member of every item, in one
 * SELECT: each item's member, with its activity of the same idempotency key when one is stored.
 *
 * Lookups per key are written as LATERAL subqueries with `offset 0`, which keeps the planner from flattening
 * them into joins: each is then one unique-index probe with every key column bound, whatever the statistics
 * say. Flattened, stale statistics after a bulk load (measured in bench/: members seeded, not yet analysed) gave
 * a hash join over a sequential scan of `member` and an activity probe on (tenant_id, unique_identifier) alone
 * that walked the tenant's whole index — 9–12 ms instead of 0.4 ms for 32 keys.
 */
type ClassifyRow = ActivityRow & { k_tenant_id: string; k_external_id: string; k_uid: string; m_id: string; m_time_zone: string | null };

const keyOf = (p: Pending) => `${p.input.tenantId}\u0000${p.input.memberExternalId}\u0000${p.input.uniqueIdentifier}`;

function classifySql(items: readonly Pending[]): Statement {
  const tenants: string[] = [];
  const externals: string[] = [];
  const uids: string[] = [];
  const seen = new Set<string>();
  for (const p of items) {
    const k = keyOf(p);
    if (seen.has(k)) continue;
    seen.add(k);
    tenants.push(p.input.tenantId);
    externals.push(p.input.memberExternalId);
    uids.push(p.input.uniqueIdentifier);
  }
  return {
    ...BATCH_STATEMENTS.classify,
    values: [tenants, externals, uids],
  };
}

/** Creates the batch's members that do not exist yet (no profile applied: the batches that carry one do not use it). */
function createMembersSql(items: readonly Pending[]): Statement {
  const members = new Map(items.map((p) => [memberKey(p.input.tenantId, p.input.memberExternalId), { tenantId: p.input.tenantId, externalId: p.input.memberExternalId }]));
  const sorted = [...members.values()].sort(byMember);
  return {
    // In (tenant, external id) order, like upsertMembers, so two batches creating the same members wait in one order.
    ...BATCH_STATEMENTS.createMembers,
    values: [sorted.map((m) => m.tenantId), sorted.map((m) => m.externalId)],
  };
}

/**
 * Locks the member-streak rows of the batch's stored members (found by external id) for every definition an
 * item feeds, in id order, as lockStreaks does once members are known; rows that do not exist yet are created
 * there.
 */
function prelockSql(items: readonly Pending[]): Statement {
  const keys = new Map<string, { tenantId: string; externalId: string; definitionId: string }>();
  for (const p of items) {
    for (const def of p.defs) keys.set(`${memberKey(p.input.tenantId, p.input.memberExternalId)}\u0000${def.id}`, { tenantId: p.input.tenantId, externalId: p.input.memberExternalId, definitionId: def.id });
  }
  const list = [...keys.values()];
  return {
    // Fenced as lockStreakRowsSql says (the member id a scalar subquery, so the streak probe binds all three key
    // columns). Left to the planner, stale statistics after a bulk load gave a
    // hash join of every key with every streak row of the definition (306,464 pairs for 244 keys, 667 ms), and,
    // with the member joined, a probe on (tenant, definition) alone that walked all of them (8 ms a key).
    ...BATCH_STATEMENTS.prelock,
    values: [list.map((k) => k.tenantId), list.map((k) => k.externalId), list.map((k) => k.definitionId)],
  };
}

function classify(items: readonly Pending[], rows: readonly ClassifyRow[]): { kinds: Kind[]; stored: Map<string, MemberRow> } {
  const activities = new Map<string, ActivityRow>();
  const members = new Map<string, MemberRow>();
  for (const r of rows) {
    members.set(memberKey(r.k_tenant_id, r.k_external_id), { id: r.m_id, tenant_id: r.k_tenant_id, external_id: r.k_external_id, time_zone: r.m_time_zone });
    if (r.id !== null) activities.set(`${r.k_tenant_id}\u0000${r.k_external_id}\u0000${r.k_uid}`, r);
  }
  const firstAt = new Map<string, number>();
  const kinds = items.map((p, i): Kind => {
    const k = keyOf(p);
    const row = activities.get(k);
    if (row) return { kind: "stored", row };
    const first = firstAt.get(k);
    if (first !== undefined) return { kind: "repeat", first };
    firstAt.set(k, i);
    return { kind: "fresh" };
  });
  return { kinds, stored: members };
}

interface MemberRow {
  id: string;
  tenant_id: string;
  external_id: string;
  time_zone: string | null;
}

/**
 * Finds or creates every member of the batch and applies the inline profiles of new activities, merged in
 * arrival order (a field takes the last non-null value, as consecutive `coalesce` upserts leave it). Members
 * with a profile are locked first, so the time zone each item sees (`zoneAt`) is computed from the exact stored
 * value; a member that someone else created between our read and our upsert makes the batch run again.
 */
async function upsertMembers(
  client: PoolClient,
  items: readonly Pending[],
  kinds: readonly Kind[],
  stored: ReadonlyMap<string, MemberRow>,
): Promise<{ members: Map<string, MemberInfo>; zoneAt: (string | null)[] }> {
  const all = new Map<string, { tenantId: string; externalId: string }>();
  const profiles = new Map<string, { tenantId: string; externalId: string; merged: Record<(typeof PROFILE_FIELDS)[number], string | null> }>();
  items.forEach((p, i) => {
    const k = memberKey(p.input.tenantId, p.input.memberExternalId);
    all.set(k, { tenantId: p.input.tenantId, externalId: p.input.memberExternalId });
    const profile = p.input.profile;
    if (!profile || kinds[i]!.kind !== "fresh") return;
    const entry = profiles.get(k) ?? {
      tenantId: p.input.tenantId, externalId: p.input.memberExternalId,
      merged: { firstName: null, lastName: null, email: null, phone: null, timeZone: null, locale: null },
    };
    for (const f of PROFILE_FIELDS) entry.merged[f] = profile[f] ?? entry.merged[f];
    profiles.set(k, entry);
  });
  const byKey = (rows: readonly MemberRow[]) => new Map(rows.map((r) => [memberKey(r.tenant_id, r.external_id), r]));
  const select = async (keys: readonly { tenantId: string; externalId: string }[], lock: boolean) =>
    byKey(
      (
        await client.query<MemberRow>(
          (lock ? BATCH_STATEMENTS.lockMembers : BATCH_STATEMENTS.readMembers).text,
          [keys.map((k) => k.tenantId), keys.map((k) => k.externalId)],
        )
      ).rows,
    );
  const sorted = (map: Map<string, { tenantId: string; externalId: string }>) => [...map.values()].sort(byMember);

  const plain = new Map([...all].filter(([k]) => !profiles.has(k)));
  // Members without a profile to apply were read with the duplicates (classify); only profiles need a lock.
  const found = new Map([...plain.keys()].flatMap((k) => (stored.has(k) ? [[k, stored.get(k)!] as const] : [])));
  // Stored zone of each member before this batch's profiles apply.
  const before = new Map<string, string | null>();
  const final = new Map<string, MemberRow>(found);
  if (profiles.size > 0) {
    const locked = await select(sorted(profiles), true);
    for (const [k, r] of locked) before.set(k, r.time_zone);
    const list = sorted(profiles).map((m) => profiles.get(memberKey(m.tenantId, m.externalId))!);
    const { rows } = await client.query<MemberRow & { inserted: boolean }>(
      `insert into member (id, tenant_id, external_id, first_name, last_name, email, phone, time_zone, locale, points_balance, created_at, updated_at)
       select x.id, x.tenant_id, x.external_id, x.first_name, x.last_name, x.email, x.phone, x.time_zone, x.locale, 0, now(), now()
         from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, external_id varchar, first_name varchar, last_name varchar,
           email varchar, phone varchar, time_zone varchar, locale varchar, n bigint)
        order by n
       ${MERGE_INLINE_PROFILE}
       returning id, tenant_id, external_id, time_zone, (xmax = 0) as inserted`,
      [
        numbered(
          list.map((m) => ({
            id: randomUUID(), tenant_id: m.tenantId, external_id: m.externalId, first_name: m.merged.firstName, last_name: m.merged.lastName,
            email: m.merged.email, phone: m.merged.phone, time_zone: m.merged.timeZone, locale: m.merged.locale,
          })),
        ),
      ],
    );
    for (const r of rows) {
      const k = memberKey(r.tenant_id, r.external_id);
      // Created by someone else after our locking read: its prior zone is unknown to us, so start over.
      if (!r.inserted && !before.has(k)) throw new RetryBatch();
      if (r.inserted) before.set(k, null);
      final.set(k, r);
    }
  }
  const absent = new Map([...plain].filter(([k]) => !found.has(k)));
  if (absent.size > 0) {
    const list = sorted(absent);
    const { rows } = await client.query<MemberRow>(
      `insert into member (id, tenant_id, external_id, points_balance, created_at, updated_at)
       select x.id, x.tenant_id, x.external_id, 0, now(), now()
         from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, external_id varchar, n bigint)
        order by n
       on conflict (tenant_id, external_id) do nothing
       returning id, tenant_id, external_id, time_zone`,
      [numbered(list.map((m) => ({ id: randomUUID(), tenant_id: m.tenantId, external_id: m.externalId })))],
    );
    for (const r of rows) final.set(memberKey(r.tenant_id, r.external_id), r);
    // Created concurrently after this statement's snapshot: the insert waited and did nothing, a new statement sees it.
    const still = list.filter((m) => !final.has(memberKey(m.tenantId, m.externalId)));
    if (still.length > 0) for (const [k, r] of await select(still, false)) final.set(k, r);
  }
  for (const [k, r] of final) if (!before.has(k)) before.set(k, r.time_zone);

  // The zone each item sees: the stored one, changed by earlier new activities' profiles in arrival order.
  const current = new Map(before);
  const zoneAt = items.map((p, i) => {
    const k = memberKey(p.input.tenantId, p.input.memberExternalId);
    const tz = p.input.profile?.timeZone;
    if (kinds[i]!.kind === "fresh" && p.input.profile && tz != null) current.set(k, tz);
    return current.get(k) ?? null;
  });
  for (const [k, r] of final) if (profiles.has(k) && (current.get(k) ?? null) !== r.time_zone) throw new RetryBatch();
  const members = new Map<string, MemberInfo>();
  for (const [k, r] of final) members.set(k, { id: r.id, timeZone: r.time_zone });
  if (members.size !== all.size) throw new Error("batch: member not found after upsert");
  return { members, zoneAt };
}

interface StreakRow {
  id: string;
  member_id: string;
  definition_id: string;
  state: MemberStreakState;
}

/**
 * Locks every member-streak row the batch reads, in id order (the order the window sweeps lock in), and creates
 * the ones new activities need; rows of duplicates are only read, never created (a duplicate changes nothing).
 */
async function lockStreaks(
  client: PoolClient,
  items: readonly Pending[],
  kinds: readonly Kind[],
  memberOf: (i: number) => MemberInfo,
  prelocked: readonly StreakRow[] | null,
): Promise<Map<string, StreakSlot>> {
  const wanted = new Map<string, { tenantId: string; memberId: string; def: CatalogDefinition; createFor: number }>();
  items.forEach((p, i) => {
    const member = memberOf(i);
    for (const def of p.defs) {
      const k = streakKey(member.id, def.id);
      const create = kinds[i]!.kind === "fresh" ? i : -1;
      const have = wanted.get(k);
      if (!have) wanted.set(k, { tenantId: p.input.tenantId, memberId: member.id, def, createFor: create });
      else if (have.createFor < 0 && create >= 0) wanted.set(k, { ...have, createFor: create });
    }
  });
  const slots = new Map<string, StreakSlot>();
  if (wanted.size === 0) return slots;
  const select = async (keys: readonly { tenantId: string; memberId: string; def: CatalogDefinition }[]) =>
    (
      await client.query<StreakRow>(BATCH_STATEMENTS.lockStreaks.text, [keys.map((k) => k.tenantId), keys.map((k) => k.memberId), keys.map((k) => k.def.id)])
    ).rows;
  const take = (rows: readonly StreakRow[]) => {
    for (const r of rows) {
      const k = streakKey(r.member_id, r.definition_id);
      slots.set(k, { id: r.id, def: wanted.get(k)!.def, state: r.state, saves: 0, existsFrom: -1 });
    }
  };
  // Rows locked with BEGIN (prelockSql) are all the stored rows of members that existed then; a member created
  // since has none but those its creator made, which the insert below runs into and locks.
  take(prelocked ?? (await select([...wanted.values()])));
  const create = [...wanted.entries()].filter(([k, w]) => !slots.has(k) && w.createFor >= 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (create.length === 0) return slots;
  const initial = new Map<string, MemberStreakState>();
  const { rows } = await client.query<{ id: string; member_id: string; definition_id: string }>(
    `with x as materialized (
       select * from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, member_id uuid, definition_id uuid, status varchar, state jsonb, n bigint)
     ), created as (
       insert into member_streak (id, tenant_id, member_id, definition_id, status, current_count, longest_count, version, created_at, updated_at, leaderboard_opt_out)
       select x.id, x.tenant_id, x.member_id, x.definition_id, x.status, 0, 0, 1, now(), now(),
              coalesce((select m.leaderboard_opt_out from member m where m.id = x.member_id), false)
         from x
        order by n
       on conflict (tenant_id, member_id, definition_id) do nothing
       returning id, member_id, definition_id
     ), states as (
       insert into member_streak_state (member_streak_id, state) select c.id, x.state from created c join x on x.id = c.id
     )
     select id, member_id, definition_id from created`,
    [
      numbered(
        create.map(([k, w]) => {
          const state = initialState(w.def.rules);
          initial.set(k, state);
          return { id: randomUUID(), tenant_id: w.tenantId, member_id: w.memberId, definition_id: w.def.id, status: state.status, state };
        }),
      ),
    ],
  );
  for (const r of rows) {
    const k = streakKey(r.member_id, r.definition_id);
    const w = wanted.get(k)!;
    slots.set(k, { id: r.id, def: w.def, state: initial.get(k)!, saves: 0, existsFrom: w.createFor });
  }
  // Another transaction created some between our select and insert; they are committed or we wait for them.
  const again = create.filter(([k]) => !slots.has(k)).map(([, w]) => w);
  if (again.length > 0) take(await select(again));
  return slots;
}

interface BatchWrites {
  readonly streaks: readonly StreakSlot[];
  readonly items: readonly Pending[];
  readonly fresh: readonly number[];
  readonly activityIds: readonly string[];
  readonly outcomes: readonly (StreakOutcome[] | null)[];
  readonly memberOf: (i: number) => MemberInfo;
  readonly rewards: readonly PlannedReward[];
  readonly events: readonly PlannedEvent[];
  /** The windows the batch's transitions finalised (streak_window rows). */
  readonly windows: readonly { readonly owner: HistoryOwner; readonly windows: readonly WindowRecord[] }[];
  readonly now: number;
}

const WRITE_SQL = `with ${saveMemberStreaksSql("streaks", 1)},
     new_activities as (
       insert into activity (id, tenant_id, member_id, definition_id, event_type, applied_definition_ids, occurred_at, value, distinct_key, unique_identifier, platform, metadata, recorded_at)
       select x.id, x.tenant_id, x.member_id, x.definition_id, x.event_type, x.applied_definition_ids, x.occurred_at, x.value, x.distinct_key,
              x.unique_identifier, x.platform, coalesce(x.metadata, '{}'::jsonb), x.recorded_at
         from jsonb_to_recordset($2::jsonb) as x(id uuid, tenant_id uuid, member_id uuid, definition_id uuid, event_type varchar,
           applied_definition_ids text[], occurred_at timestamptz, value float8, distinct_key varchar, unique_identifier varchar, platform varchar,
           metadata jsonb, recorded_at timestamptz, n bigint)
        order by n
       returning ${ACTIVITY_COLUMNS}
     ), new_rewards as (
       insert into reward (id, tenant_id, member_id, definition_id, threshold, cycle, repetition, kind, name, value, points, state, mode,
         claim_deadline_at, issued_at, streak_count, multiplier, activity_id, attempts, created_at, updated_at)
       select x.id, x.tenant_id, x.member_id, x.definition_id, x.threshold, x.cycle, x.repetition, x.kind, x.name, x.value, x.points, x.state, x.mode,
              x.claim_deadline_at, x.issued_at, x.streak_count, x.multiplier, x.activity_id, 0, x.created_at, x.created_at
         from jsonb_to_recordset($3::jsonb) as x(id uuid, tenant_id uuid, member_id uuid, definition_id uuid, threshold int, cycle int,
           repetition int, kind varchar, name varchar, value varchar, points float8, state varchar, mode varchar, claim_deadline_at timestamptz,
           issued_at timestamptz, streak_count int, multiplier float8, activity_id uuid, created_at timestamptz, n bigint)
        order by n
       on conflict on constraint reward_grant_once do nothing
       returning id, member_id, definition_id, threshold, kind, points, value, state, claim_deadline_at, created_at, activity_id
     ), new_outbox as (
       insert into outbox_message (tenant_id, kind, dedupe_key, payload, created_at, attempts)
       select x.tenant_id, x.kind, x.dedupe_key, x.payload, now(), 0
         from jsonb_to_recordset($4::jsonb) as x(reward_id uuid, tenant_id uuid, kind varchar, dedupe_key varchar, payload jsonb, n bigint)
        where x.reward_id in (select id from new_rewards)
        order by n
       on conflict (dedupe_key) do nothing
     ), new_events as (
       ${insertEventsSql(5)}
     ), new_windows as (
       ${insertStreakWindowsSql(8)}
     ), stored_rewards as (
       select r.id, r.member_id, r.definition_id, r.threshold, r.kind, r.points, r.value, r.state, r.claim_deadline_at, r.created_at,
              null::uuid as activity_id
         from jsonb_to_recordset($6::jsonb) as p(tenant_id uuid, member_id uuid, definition_id uuid)
         cross join lateral (
           select * from reward r where r.tenant_id = p.tenant_id and r.member_id = p.member_id and r.definition_id = p.definition_id offset 0
         ) r
     )
     select 'activity' as row_kind, a.*, null::uuid as r_id, null::uuid as r_member_id, null::uuid as r_definition_id, null::int as r_threshold,
            null::varchar as r_kind, null::float8 as r_points, null::varchar as r_value, null::varchar as r_state,
            null::timestamptz as r_claim_deadline_at, null::timestamptz as r_created_at, null::uuid as r_activity_id
       from new_activities a
     union all
     select 'reward', ${ACTIVITY_COLUMNS.split(", ").map(() => "null").join(", ")},
            r.id, r.member_id, r.definition_id, r.threshold, r.kind, r.points, r.value, r.state, r.claim_deadline_at, r.created_at, r.activity_id
       from (select * from stored_rewards union all select * from new_rewards) r
     union all
     -- Its own branch, so it runs whatever the others return: raises KB001 unless every new activity was inserted.
     select 'check', ${ACTIVITY_COLUMNS.split(", ").map(() => "null").join(", ")}, ${Array.from({ length: 11 }, () => "null").join(", ")}
       from (select kindling_batch_check($7, (select count(*) from new_activities)) as ok) c`;

/**
 * The batch's statements with their parameter types, as each connection prepares them; exported so a test can
 * check how PostgreSQL plans them (every lookup an index probe, whatever the table sizes and statistics).
 */
export const BATCH_STATEMENTS = {
  createMembers: { text: CREATE_MEMBERS_SQL, types: ["uuid[]", "text[]"] },
  classify: { text: CLASSIFY_SQL, types: ["uuid[]", "text[]", "text[]"] },
  prelock: { text: PRELOCK_SQL, types: ["uuid[]", "text[]", "uuid[]"] },
  write: { text: WRITE_SQL, types: ["jsonb", "jsonb", "jsonb", "jsonb", "jsonb", "jsonb", "int", "jsonb"] },
  // Batches with inline profiles (their own round trips, sent as unnamed statements).
  readMembers: { text: MEMBERS_SQL, types: ["uuid[]", "text[]"] },
  lockMembers: { text: `${MEMBERS_SQL}\n            order by m.tenant_id, m.external_id for update of m`, types: ["uuid[]", "text[]"] },
  lockStreaks: { text: LOCK_STREAKS_SQL, types: ["uuid[]", "uuid[]", "uuid[]"] },
} as const satisfies Record<string, { text: string; types: readonly string[] }>;

/**
 * The batch's writes in one statement (data-modifying WITH items), sent with COMMIT in one simple-protocol
 * message: the streak rows, the fresh activities (`on conflict do nothing returning`; a concurrent duplicate is a
 * missing row, and kindling_batch_check then aborts the statement and so the commit), the rewards (once each,
 * by reward_grant_once) with a lifecycle outbox row for each one created that needs it, and the events. Returns
 * the inserted activities by item index, and the reward facts for the responses, read in the same round trip: for
 * item i and one (member, definition), the rewards stored before this statement (its snapshot) plus the ones it
 * created for items 0..i (by their activity_id), so each response shows the rewards as of its own item.
 * Every reward row is written under the lock of its member-streak row (taken in lockStreaks), so the snapshot
 * cannot miss a reward another transaction is writing for the same pair.
 */
async function writeBatch(
  client: PoolClient,
  prepared: boolean,
  w: BatchWrites,
): Promise<{ inserted: Map<number, ActivityRow>; facts: (i: number, memberId: string, definitionId: string) => RewardFactsByDefinition }> {
  const pairs = new Map<string, { tenant_id: string; member_id: string; definition_id: string }>();
  w.items.forEach((p, i) => {
    const member = w.memberOf(i);
    for (const def of p.defs) pairs.set(streakKey(member.id, def.id), { tenant_id: p.input.tenantId, member_id: member.id, definition_id: def.id });
  });
  const byId = new Map(w.fresh.map((i) => [w.activityIds[i]!, i]));
  const activities = w.fresh.map((i) => {
    const input = w.items[i]!.input;
    return {
      id: w.activityIds[i], tenant_id: input.tenantId, member_id: w.memberOf(i).id,
      definition_id: "definitionId" in input.target ? input.target.definitionId : null,
      event_type: "eventType" in input.target ? input.target.eventType : null,
      applied_definition_ids: w.outcomes[i]!.filter((s) => s.applied).map((s) => s.definition.id),
      occurred_at: new Date(input.occurredAt).toISOString(),
      // As text, so NaN and ±Infinity reach float8 as the one-at-a-time path's parameters do.
      value: input.value === undefined ? null : String(input.value),
      distinct_key: input.distinctKey ?? null, unique_identifier: input.uniqueIdentifier, platform: input.platform ?? null,
      metadata: input.metadata, recorded_at: new Date(w.now).toISOString(),
    };
  });
  activities.sort((a, b) => (a.member_id < b.member_id ? -1 : a.member_id > b.member_id ? 1 : a.unique_identifier < b.unique_identifier ? -1 : 1));
  const ms = (v: number | null) => (v === null ? null : new Date(v).toISOString());
  const rewards = w.rewards.map((r) => ({
    id: r.id, tenant_id: r.tenantId, member_id: r.memberId, definition_id: r.definitionId, threshold: r.threshold, cycle: r.cycle,
    repetition: r.repetition, kind: r.kind, name: r.name, value: r.value, points: r.points, state: r.state, mode: r.mode,
    claim_deadline_at: ms(r.claimDeadlineAt), issued_at: ms(r.issuedAt), streak_count: r.streakCount, multiplier: r.multiplier,
    activity_id: r.activityId, created_at: ms(r.createdAt),
  }));
  const outbox = w.rewards
    .filter((r) => r.needsWorkflow)
    .map((r) => {
      const payload: OutboxPayloads["reward.lifecycle"] = { rewardId: r.id, tenantId: r.tenantId, memberId: r.memberId, definitionId: r.definitionId };
      return { reward_id: r.id, tenant_id: r.tenantId, kind: "reward.lifecycle", dedupe_key: `reward:${r.id}`, payload };
    });
  const write: Statement = {
    ...BATCH_STATEMENTS.write,
    values: [
      memberStreakRecords(w.streaks, w.now), numbered(activities), numbered(rewards), numbered(outbox), eventRecords(w.events), JSON.stringify([...pairs.values()]),
      activities.length, streakWindowRecords(w.windows, w.now),
    ],
  };
  const [written] = await batchMessage(client, [write, "commit"], prepared);
  return afterCommit(() => answers(written!));

  // Reads the rows the statement answered (already committed): the inserted activities by item index, and each
  // item's reward facts.
  function answers(result: QueryResult) {
    const rows = result.rows as (ActivityRow & {
      row_kind: "activity" | "reward" | "check"; r_id: string | null; r_member_id: string | null; r_definition_id: string | null; r_threshold: number | null;
      r_kind: string | null; r_points: number | null; r_value: string | null; r_state: string | null; r_claim_deadline_at: Date | null; r_created_at: Date | null;
      r_activity_id: string | null;
    })[];
    const inserted = new Map<number, ActivityRow>();
    const rewardRows: (RewardFactRow & { member_id: string; created_at: Date; createdBy: number })[] = [];
    for (const r of rows) {
      if (r.row_kind === "check") continue;
      if (r.row_kind === "activity") inserted.set(byId.get(r.id)!, r);
      else {
        const createdBy = r.r_activity_id === null ? -1 : byId.get(r.r_activity_id);
        if (createdBy === undefined) throw new Error(`batch: reward ${r.r_id} created for an activity not in the batch`);
        rewardRows.push({
          id: r.r_id!, member_id: r.r_member_id!, definition_id: r.r_definition_id!, threshold: r.r_threshold!, kind: r.r_kind!, points: r.r_points!,
          value: r.r_value!, state: r.r_state!, claim_deadline_at: r.r_claim_deadline_at, created_at: r.r_created_at!, createdBy,
        });
      }
    }
    if (w.fresh.some((i) => !inserted.has(i))) throw new Error("batch: an activity missing after a checked write");
    // The order the single read lists them in.
    rewardRows.sort((a, b) => a.threshold - b.threshold || a.created_at.getTime() - b.created_at.getTime());
    const byKey = new Map<string, typeof rewardRows>();
    for (const r of rewardRows) {
      const key = streakKey(r.member_id, r.definition_id);
      const list = byKey.get(key);
      if (list) list.push(r);
      else byKey.set(key, [r]);
    }
    const facts = (i: number, memberId: string, definitionId: string): RewardFactsByDefinition => {
      const f = new Map<string, RewardFactsByDefinition>();
      for (const r of byKey.get(streakKey(memberId, definitionId)) ?? []) if (r.createdBy <= i) addRewardFact(f, definitionId, r);
      return f.get(definitionId) ?? { unclaimed: [], total: 0 };
    };
    return { inserted, facts };
  }
}

