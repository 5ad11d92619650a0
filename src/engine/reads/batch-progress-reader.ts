// Progress reads with group commit: concurrent reads of one member streak each (GetMemberStreak) are answered
// together, in one query — the streak row of every (member, definition) pair of the batch with its rewards beside
// it — instead of two queries per call. What each call gets is exactly what
// ProgressReader.read gives for it; reads of all of a member's streaks (ListMemberStreaks) and reward facts go
// to the plain reader. If a batch query fails, its calls are answered one at a time, so one bad call fails alone.
import type { Pool } from "pg";
import type { CatalogDefinition, DefinitionCatalog } from "../definitions/definition-catalog.ts";
import { arrayParameter, hashedStatementName } from "../ingest/batch-message.ts";
import { createBatcher, type BatcherOptions, type BatchStats, type Settled } from "../group-batcher.ts";
import { addRewardFact, createProgressReader, streakRow, type MemberProgressRows, type ProgressReader, type RewardFactRow, type RewardFactsByDefinition, type StreakRow } from "./progress-reader.ts";

interface ReadKey {
  readonly tenantId: string;
  readonly memberExternalId: string;
  readonly definitionId: string;
}

export interface BatchProgressReader extends ProgressReader {
  stats(): BatchStats;
}

export function createBatchProgressReader(
  pool: Pool,
  catalog: DefinitionCatalog,
  options: Partial<BatcherOptions> & { readonly preparedStatements?: boolean; readonly citus?: boolean } = {},
): BatchProgressReader {
  const named = options.preparedStatements ?? true;
  const plain = createProgressReader(pool, catalog, { citus: options.citus ?? false });
  const known = createKnownStates();

  async function run(keys: readonly ReadKey[]): Promise<Settled<MemberProgressRows>[]> {
    try {
      return await readMany(pool, catalog, keys, named, known);
    } catch {
      return Promise.all(
        keys.map((k) =>
          plain.read(k.tenantId, k.memberExternalId, k.definitionId).then(
            (value): Settled<MemberProgressRows> => ({ ok: true, value }),
            (error: unknown): Settled<MemberProgressRows> => ({ ok: false, error }),
          ),
        ),
      );
    }
  }

  const batcher = createBatcher<ReadKey, MemberProgressRows>(run, { maxBatch: options.maxBatch ?? 256, maxInFlight: options.maxInFlight ?? 4 });

  return {
    rewardFacts: (tenantId, memberId, definitionIds) => plain.rewardFacts(tenantId, memberId, definitionIds),
    read(tenantId, memberExternalId, definitionId) {
      // On Citus every read is the plain one, a query on the member's shard: the batched statement joins members
      // found by external id to their streaks (LATERAL on other columns than the distribution column).
      if (!definitionId || options.citus === true) return plain.read(tenantId, memberExternalId, definitionId);
      return batcher.submit({ tenantId, memberExternalId, definitionId });
    },
    stats: () => batcher.stats(),
  };
}

/** The version of a stored state (KnownState): its member streak and the transaction that wrote the row. */
const STATE_VERSION = "st.member_streak_id::text || '/' || st.xmin::text";

/**
 * The batched progress read (parameters uuid[] tenants, text[] external ids, uuid[] definitions, text[] the state
 * versions held, or nulls): exported so a test can check its plan.
 */
export const PROGRESS_READ_SQL = `select k.i, m.id as member_id, s.id, s.definition_id,
     case when ${STATE_VERSION} = k.known then null else st.state::text end as state, ${STATE_VERSION} as state_version,
     floor(extract(epoch from s.created_at) * 1000)::float8 as created_ms, floor(extract(epoch from s.updated_at) * 1000)::float8 as updated_ms, rw.rewards
   from unnest(${arrayParameter(1, "uuid")}, ${arrayParameter(2, "text")}, ${arrayParameter(3, "uuid")}, ${arrayParameter(4, "text")})
        with ordinality as k(tenant_id, external_id, definition_id, known, i)
   cross join lateral (select m.id, m.tenant_id from member m where m.tenant_id = k.tenant_id and m.external_id = k.external_id offset 0) m
   left join lateral (
     select s.id, s.definition_id, s.created_at, s.updated_at from member_streak s
      where s.member_id = m.id and s.tenant_id = m.tenant_id and s.definition_id = k.definition_id offset 0
   ) s on true
   left join member_streak_state st on st.member_streak_id = s.id
   left join lateral (
     select json_agg(json_build_object('id', r.id, 'definition_id', r.definition_id, 'threshold', r.threshold, 'kind', r.kind,
              'points', r.points, 'value', r.value, 'state', r.state, 'claim_deadline_at', r.claim_deadline_at)
              order by r.threshold, r.created_at) as rewards
       from reward r
      where s.id is not null and r.tenant_id = k.tenant_id and r.member_id = m.id and r.definition_id = k.definition_id
   ) rw on true`;

const PROGRESS_READ_NAME = hashedStatementName("kindling_read_", PROGRESS_READ_SQL);

/**
 * The state text last read for each member streak this process reads, with the version of the stored row it is
 * the text of: `<member streak id>/<xmin>`, the id of the transaction that wrote that row version. Any write of
 * the state row — by any process, through any path, even one that stores the same text — makes a row version with
 * another xmin, so a read that names the version it holds gets the state only when it changed (and the state's
 * text is neither rendered by PostgreSQL nor sent nor parsed again). The one way a version could be named again is
 * a transaction id coming round after 2³² transactions (or a database restored under a running API): so that an
 * entry cannot outlive either, entries are bounded in number and dropped on first use after KNOWN_STATE_MAX_AGE_MS.
 */
interface KnownState {
  readonly version: string;
  readonly text: string;
  readonly readAt: number;
}

const KNOWN_STATES = 20_000;
const KNOWN_STATE_MAX_AGE_MS = 10 * 60_000;

const knownTotals = { sent: 0, reused: 0 };

/** States the batched read received, and states it did not need sent again (tests, benchmark). */
export function knownStateTotals(): { readonly sent: number; readonly reused: number } {
  return { ...knownTotals };
}

function createKnownStates(limit = KNOWN_STATES) {
  const entries = new Map<string, KnownState>();
  return {
    get(key: string, now: number): KnownState | undefined {
      const entry = entries.get(key);
      if (entry === undefined || now - entry.readAt < KNOWN_STATE_MAX_AGE_MS) return entry;
      entries.delete(key);
      return undefined;
    },
    set(key: string, entry: KnownState): void {
      // Oldest first: the entry moves to the end; the first one goes when full.
      entries.delete(key);
      if (entries.size >= limit) entries.delete(entries.keys().next().value!);
      entries.set(key, entry);
    },
  };
}

type KnownStates = ReturnType<typeof createKnownStates>;

async function readMany(pool: Pool, catalog: DefinitionCatalog, keys: readonly ReadKey[], named: boolean, known: KnownStates): Promise<Settled<MemberProgressRows>[]> {
  // Each call's key as one string, made once: calls of the same key share a slot (one row of the query).
  const slotOf = new Map<string, number>();
  const distinct: ReadKey[] = [];
  const names: string[] = [];
  const slots = keys.map((k) => {
    const name = `${k.tenantId}\u0000${k.memberExternalId}\u0000${k.definitionId}`;
    let slot = slotOf.get(name);
    if (slot === undefined) {
      slot = distinct.length;
      slotOf.set(name, slot);
      distinct.push(k);
      names.push(name);
    }
    return slot;
  });
  // The states this read already holds, taken now: what the answer relies on is this very entry, whatever happens
  // to the map while the query runs.
  const now = Date.now();
  const held = names.map((name) => known.get(name, now));
  // One round trip: each key's member and streak row, with that streak's rewards aggregated beside it (in the
  // order the single read lists them; none when there is no streak, as the single read asks for them only then).
  // Per-key lookups are LATERAL with `offset 0` so each stays a unique-index probe whatever the statistics say
  // (see classify in batch-attempt.ts). The state is sent only when it is not the version this read holds.
  const { rows } = await pool.query<{
    // Row times as epoch milliseconds (what Date#getTime gives for the timestamps, without parsing their text).
    i: string; member_id: string; id: string | null; definition_id: string | null; state: string | null; state_version: string | null;
    created_ms: number | null; updated_ms: number | null;
    rewards: (Omit<RewardFactRow, "claim_deadline_at"> & { claim_deadline_at: string | null })[] | null;
  }>({
    // Named: prepared once per connection, and after five runs PostgreSQL keeps a generic plan instead of
    // planning this statement for every batch (its arrays are init plans' values: see arrayParameter).
    ...(named ? { name: PROGRESS_READ_NAME } : {}),
    text: PROGRESS_READ_SQL,
    values: [distinct.map((k) => k.tenantId), distinct.map((k) => k.memberExternalId), distinct.map((k) => k.definitionId), held.map((h) => h?.version ?? null)],
  });
  const found: ({ memberId: string; streak: { row: StreakRow; definition: CatalogDefinition } | null; facts: RewardFactsByDefinition } | undefined)[] = [];
  for (const r of rows) {
    const index = Number(r.i) - 1;
    const key = distinct[index]!;
    let streak: { row: StreakRow; definition: CatalogDefinition } | null = null;
    let state = r.state;
    if (state === null && r.state_version !== null) {
      // Not sent: the version named is the one stored, whose text this read holds.
      const hold = held[index];
      if (hold === undefined || hold.version !== r.state_version) throw new Error(`progress read: state ${r.state_version} was not sent and is not held`);
      state = hold.text;
      knownTotals.reused++;
    } else if (state !== null && r.state_version !== null) {
      known.set(names[index]!, { version: r.state_version, text: state, readAt: now });
      knownTotals.sent++;
    }
    if (r.id !== null && r.definition_id !== null && state !== null) {
      const definition = await catalog.get(key.tenantId, r.definition_id);
      if (definition) {
        streak = { row: streakRow(r.id, r.member_id, r.definition_id, state, r.created_ms!, r.updated_ms!), definition };
      }
    }
    const facts = new Map<string, RewardFactsByDefinition>();
    if (streak) {
      for (const reward of r.rewards ?? []) {
        addRewardFact(facts, key.definitionId, { ...reward, claim_deadline_at: reward.claim_deadline_at === null ? null : new Date(reward.claim_deadline_at) });
      }
    }
    found[index] = { memberId: r.member_id, streak, facts: facts.get(key.definitionId) ?? { unclaimed: [], total: 0 } };
  }
  const none = (): RewardFactsByDefinition => ({ unclaimed: [], total: 0 });
  return keys.map((k, i) => {
    const hit = found[slots[i]!];
    if (!hit) return { ok: true, value: { memberId: null, streaks: [], rewards: none } };
    const byDefinition = (definitionId: string) => (definitionId === k.definitionId ? hit.facts : none());
    return { ok: true, value: { memberId: hit.memberId, streaks: hit.streak ? [hit.streak] : [], rewards: hit.streak ? byDefinition : none } };
  });
}
