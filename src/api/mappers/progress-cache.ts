// Progress answers computed once per stored state. A member streak read again and again (a widget polled, an app
// opened) has the same stored state between writes, and its answer then changes only with the clock: its
// countdown every second, and everything else only when a window opens, closes, settles or turns at risk
// (ProgressView.validUntil). So an answer is built once and reused, with the countdown and the reward fields filled
// in per read, until then — for the very same inputs only:
//   - the stored state as read on this call (its JSON text, compared whole), with the row's id, created and updated
//     times: every read still reads the row, and a state another process wrote is a different text;
//   - the same definition object (the catalog makes a new one for every change, and reloads them on a TTL);
//   - the same member external id and language, and `now` within [computed at, valid until).
// Reward facts are read on every call and filled in fresh. A state without its text (computed, not read) is
// never cached. Bounded: the oldest entry goes when the cache is full.
import { MemberStreakProgressSchema, type MemberStreakProgress } from "../../gen/kindling/v1/member_streak_pb.js";
import { encodeWithout, withKnownEncoding } from "../known-encoding.ts";
import type { CatalogDefinition } from "../../engine/definitions/definition-catalog.ts";
import { secondsUntil } from "../../domain/progress-view.ts";
import { progressAnswer, rewardFields, type RewardFacts, type StoredMemberStreak } from "./progress.mapper.ts";

/** A stored member streak as read, with its state's JSON text as the database returned it. */
export interface ReadMemberStreak extends StoredMemberStreak {
  readonly stateText?: string;
}

export interface ProgressCache {
  /** What `progressMessage` answers for these inputs, built at most once per stored state and clock span. */
  message(def: CatalogDefinition, memberExternalId: string, stored: ReadMemberStreak, rewards: RewardFacts, now: number, language: string | undefined): MemberStreakProgress;
  /** Answers reused and built so far (tests, benchmark). */
  stats(): { readonly hits: number; readonly misses: number; readonly size: number };
}

interface Entry {
  readonly stateText: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly def: CatalogDefinition;
  readonly memberExternalId: string;
  readonly from: number;
  readonly until: number;
  readonly countdownTo: number | null;
  /** The answer as built (never handed out: callers get copies). */
  readonly message: MemberStreakProgress;
  /**
   * Made on the first reuse, so that an answer read only once costs no more than before: a spread copy of the
   * answer (`create` sets a message's fields one by one, which leaves an object of this many fields in V8's
   * dictionary mode, and copying one of those costs ~5 µs against ~0.1 µs for the copy of a copy) and its binary
   * form without the PER_CALL fields (src/api/known-encoding.ts).
   */
  reused?: { readonly message: MemberStreakProgress; readonly prefix: Uint8Array };
}

/** The fields of an answer filled in on every read (and the team, added by the service): encoded per call. */
const PER_CALL = ["secondsUntilWindowClose", "unclaimedMilestones", "totalRewardsEarned", "team"] as const;

export const PROGRESS_CACHE_ENTRIES = 20_000;

const totals = { hits: 0, misses: 0 };

/** Answers reused and built by every progress cache of this process (tests, benchmark). */
export function progressCacheTotals(): { readonly hits: number; readonly misses: number } {
  return { ...totals };
}

export function createProgressCache(limit = PROGRESS_CACHE_ENTRIES): ProgressCache {
  const entries = new Map<string, Entry>();
  let hits = 0;
  let misses = 0;
  return {
    message(def, memberExternalId, stored, rewards, now, language) {
      const stateText = stored.stateText;
      if (stateText === undefined || stored.id === "") return progressAnswer(def, memberExternalId, stored, rewards, now, language).message;
      const key = language === undefined ? stored.id : `${stored.id}\u0000${language}`;
      const hit = entries.get(key);
      if (
        hit !== undefined && hit.stateText === stateText && hit.def === def && hit.updatedAt === stored.updatedAt && hit.createdAt === stored.createdAt &&
        hit.memberExternalId === memberExternalId && now >= hit.from && now < hit.until
      ) {
        hits++;
        totals.hits++;
        let reused = hit.reused;
        if (reused === undefined) {
          const fast = { ...hit.message };
          reused = hit.reused = { message: fast, prefix: encodeWithout(MemberStreakProgressSchema, fast, PER_CALL) };
        }
        // A new message per answer (callers add the team to it); the fields shared with the cached one are never
        // changed once built.
        // One plain spread (a shallow clone of a fast-mode object), then stores to fields it already has.
        const message: MemberStreakProgress = { ...reused.message };
        const facts = rewardFields(rewards);
        message.unclaimedMilestones = facts.unclaimedMilestones;
        message.totalRewardsEarned = facts.totalRewardsEarned;
        if (hit.countdownTo !== null) message.secondsUntilWindowClose = BigInt(secondsUntil(hit.countdownTo, now));
        return withKnownEncoding(MemberStreakProgressSchema, message, reused.prefix, PER_CALL);
      }
      misses++;
      totals.misses++;
      const answer = progressAnswer(def, memberExternalId, stored, rewards, now, language);
      if (answer.validUntil <= now) return answer.message;
      if (hit === undefined && entries.size >= limit) entries.delete(entries.keys().next().value!);
      entries.set(key, {
        stateText, createdAt: stored.createdAt, updatedAt: stored.updatedAt, def, memberExternalId,
        from: now, until: answer.validUntil, countdownTo: answer.countdownTo, message: answer.message,
      });
      return { ...answer.message };
    },
    stats: () => ({ hits, misses, size: entries.size }),
  };
}
