import { effectiveZone, isValidZone, rollingKey, windowFor, nextWindow } from "./calendar-window.ts";
import type { CalendarWindowSpec, WindowBounds } from "./calendar-window.ts";
import { compareEntries, evaluateCondition } from "./condition.ts";
import type { ActivityEntry, WindowProgress } from "./condition.ts";
import { credit, grantFreezeCount, initialChain, isAlive, milestoneKey, miss, restore } from "./streak-chain.ts";
import type { BreakRecord, ChainState, EarnedMilestone, MissKind } from "./streak-chain.ts";
import type { Milestone, RollingWindowSpec, StreakRules } from "./rules.ts";

/** An activity as sent by the tenant (Gamopanda streak log / Phoenix event / Loyalteez check-in). */
export interface ActivityInput {
  /** Idempotency key (`unique_identifier`); the same id is a duplicate. */
  readonly id: string;
  /** Event time; it decides the window. */
  readonly occurredAt: number;
  /** Summed by SUM conditions; ignored by COUNT. Must be finite and >= 0. Default 0. */
  readonly value?: number;
  /** Counted by DISTINCT conditions (e.g. Phoenix game mode). */
  readonly distinctKey?: string | null;
  /** The member's IANA zone, used when the definition follows member time zones. */
  readonly memberTimezone?: string | null;
}

/** A definition pause: windows whose close (or grace) falls inside it are neutral. `to` null = still paused. */
export interface PauseInterval {
  readonly from: number;
  readonly to: number | null;
}

export interface EvalOptions {
  readonly pausedIntervals?: readonly PauseInterval[];
}

export interface ApplyContext extends EvalOptions {
  /** Arrival time: decides what is already final (too late) and which windows have closed. */
  readonly now: number;
  /** How far in the future an event may be dated (client clock skew). Default 0. */
  readonly futureToleranceMs?: number;
}

/** The finalised part of a member streak: windows that can no longer change, folded. */
export interface StreakBase {
  readonly chain: ChainState;
  /** Events dated before this instant can no longer be applied (their windows are final). */
  readonly cursor: number | null;
  /** Rolling only: the instant the next window is measured from (last counted activity, or a bridged deadline). */
  readonly anchor: number | null;
}

/**
 * A member's streak for one definition, as stored (JSONB) and passed between activities and workflows.
 * The top-level chain fields are the state as of `evaluatedAt`; `base` + `tail` are what it is derived from,
 * so a late event inside the grace horizon re-derives the state exactly as if it had arrived on time.
 */
export interface MemberStreakState extends ChainState {
  readonly version: 1;
  /** Zone the calendar windows use for this member (pinned on the first activity of a run). */
  readonly zone: string | null;
  readonly lastActivityAt: number | null;
  /** Activities ever applied. */
  readonly activityCount: number;
  readonly evaluatedAt: number | null;
  readonly base: StreakBase;
  /** Applied activities whose windows are not final yet, in event-time order. */
  readonly tail: readonly ActivityEntry[];
}

export type NotAppliedReason = "TOO_LATE" | "IN_FUTURE" | "INVALID_VALUE";

export type ApplyOutcome =
  | {
      readonly kind: "APPLIED";
      /** Loyalteez `isNewActivity`: this activity satisfied its window (false: "already checked in"). */
      readonly isNewActivity: boolean;
      /** Loyalteez `wasReset`: this activity started a new run after the streak broke. */
      readonly wasReset: boolean;
      readonly previousStreak: number;
      /** Window the activity counts towards; null for a rolling check-in inside the minimum spacing. */
      readonly windowKey: string | null;
    }
  | { readonly kind: "DUPLICATE" }
  | { readonly kind: "NOT_APPLIED"; readonly reason: NotAppliedReason };

export type StreakEffect =
  | {
      readonly type: "streak.incremented";
      readonly count: number;
      readonly previousCount: number;
      /** Windows counted by this change (more than 1 when held windows settle together). */
      readonly increments: number;
      readonly windowKey: string;
    }
  | {
      readonly type: "streak.milestone_reached";
      readonly threshold: number;
      readonly occurrence: number;
      readonly cycle: number;
      readonly count: number;
      readonly earnedAt: number;
      readonly viaRepair: boolean;
      readonly milestone: Milestone;
    }
  | { readonly type: "streak.completed"; readonly cycle: number; readonly count: number }
  | { readonly type: "streak.broken"; readonly finalCount: number; readonly windowKey: string; readonly brokenAt: number }
  | { readonly type: "streak.freeze_used"; readonly windowKey: string; readonly freezesUsed: number; readonly freezesLeft: number }
  | { readonly type: "streak.repaired"; readonly restoredCount: number };

export interface Transition<O> {
  readonly state: MemberStreakState;
  readonly outcome: O;
  readonly effects: readonly StreakEffect[];
  /** Windows this transition finalised (moved into the base), oldest first: the history to store with the state. */
  readonly finalised?: readonly WindowRecord[];
  /** Set by a repair: the windows it bridged and how it rewrote the history of the run since the break. */
  readonly bridge?: Bridge;
}

/** What a window came to, once final. Live windows (not final yet) are OPEN, IN_GRACE or SATISFIED. */
export type WindowOutcome = "SATISFIED" | "MISSED" | "FROZEN" | "NEUTRAL" | "BRIDGED" | "OPEN" | "IN_GRACE";

/** One window of a member streak's history: its bounds, outcome, aggregate and the streak count after it. */
export interface WindowRecord {
  readonly key: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly outcome: WindowOutcome;
  readonly count: number;
  readonly sum: number;
  readonly distinct: readonly string[];
  readonly countAfter: number;
  /** Whether the window can no longer change (its close plus grace passed and the fold moved past it). */
  readonly final: boolean;
}

/**
 * A repair's rewrite of stored history: windows from `fromMs` (the start of the window that broke the run) up to
 * `untilMs` that were stored with a count of 0 become BRIDGED at `previousStreak`, windows of the run since the
 * break (stored with a count above 0) count `previousStreak` more, and `windows` lists the calendar windows in
 * that range with no stored row (no activity) to store as BRIDGED.
 */
export interface Bridge {
  readonly fromMs: number;
  readonly untilMs: number;
  readonly previousStreak: number;
  readonly windows: readonly WindowRecord[];
}

export function initialState(rules: StreakRules): MemberStreakState {
  const chain = initialChain(rules);
  return {
    ...chain,
    version: 1,
    zone: null,
    lastActivityAt: null,
    activityCount: 0,
    evaluatedAt: null,
    base: { chain, cursor: null, anchor: null },
    tail: [],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Folding: base + tail at `now` -> current chain, new base, remaining tail.

export interface Frontier {
  /** First window whose outcome is still open; null when nothing is pending (dead run with no activity). */
  readonly window: WindowBounds | null;
  /** Satisfied windows after the frontier that wait for it to settle. */
  readonly held: boolean;
  /** Whether a live run would break/freeze/settle when the frontier finalises. */
  readonly alive: boolean;
}

export interface FoldResult {
  readonly chain: ChainState;
  readonly base: StreakBase;
  readonly tail: readonly ActivityEntry[];
  readonly frontier: Frontier;
  readonly misses: readonly { readonly windowKey: string; readonly kind: MissKind }[];
  /** Rolling: window each tail entry counted towards (null inside the minimum spacing). */
  readonly entryWindows: ReadonlyMap<string, string | null>;
  /** Every window the fold settled or evaluated, in order; `final` ones were moved into the new base. */
  readonly windows: readonly WindowRecord[];
}

const MISS_OUTCOME: Record<MissKind, WindowOutcome> = { NONE: "MISSED", BREAK: "MISSED", FREEZE: "FROZEN", NEUTRAL: "NEUTRAL" };

function windowRecord(
  w: { readonly key: string; readonly startMs: number; readonly endMs: number },
  outcome: WindowOutcome,
  progress: Pick<WindowProgress, "count" | "sum" | "distinct"> | null,
  countAfter: number,
  final: boolean,
): WindowRecord {
  return { key: w.key, startMs: w.startMs, endMs: w.endMs, outcome, count: progress?.count ?? 0, sum: progress?.sum ?? 0, distinct: progress?.distinct ?? [], countAfter, final };
}

function graceMs(rules: StreakRules): number {
  return (rules.graceSeconds ?? 0) * 1000;
}

/** A window is neutral when a pause covers its close or any part of its grace. */
export function isNeutral(closeAt: number, grace: number, pauses: readonly PauseInterval[] | undefined): boolean {
  return (pauses ?? []).some((p) => p.from <= closeAt + grace && (p.to === null || p.to > closeAt));
}

function foldCalendar(
  rules: StreakRules,
  spec: CalendarWindowSpec,
  zone: string,
  base: StreakBase,
  tail: readonly ActivityEntry[],
  now: number,
  opts: EvalOptions,
): FoldResult {
  const grace = graceMs(rules);
  const groups: { w: WindowBounds; entries: ActivityEntry[] }[] = [];
  for (const e of tail) {
    const w = windowFor(spec, e.at, zone);
    const last = groups[groups.length - 1];
    if (last !== undefined && last.w.key === w.key) last.entries.push(e);
    else groups.push({ w, entries: [e] });
  }
  let ch = base.chain;
  let newBase = base;
  let absorbed = 0;
  let prefixFinal = true;
  let gi = 0;
  const misses: { windowKey: string; kind: MissKind }[] = [];
  const windows: WindowRecord[] = [];
  let frontier: Frontier = { window: null, held: false, alive: false };
  let w: WindowBounds | null =
    isAlive(ch) && base.cursor !== null ? windowFor(spec, base.cursor, zone) : (groups[0]?.w ?? null);

  while (w !== null) {
    while (gi < groups.length && (groups[gi] as { w: WindowBounds }).w.startMs < w.startMs) gi++;
    const group = groups[gi]?.w.key === w.key ? groups[gi] : undefined;
    const final = now >= w.endMs + grace;
    const progress = group === undefined ? null : evaluateCondition(rules.condition, group.entries);
    let outcome: WindowOutcome;
    if (progress !== null && progress.satisfiedAt !== null) {
      ch = credit(rules, ch, { key: w.key, startMs: w.startMs, endMs: w.endMs, at: progress.satisfiedAt });
      outcome = "SATISFIED";
    } else if (final) {
      const r = miss(ch, w.key, isNeutral(w.endMs, grace, opts.pausedIntervals), w.endMs + grace);
      ch = r.chain;
      if (r.kind !== "NONE") misses.push({ windowKey: w.key, kind: r.kind });
      outcome = MISS_OUTCOME[r.kind];
    } else if (isAlive(ch)) {
      // Later windows wait: counting them now could grant what a miss here would take back.
      frontier = { window: w, held: groups.some((g) => g.w.startMs > w!.startMs), alive: true };
      windows.push(windowRecord(w, now < w.endMs ? "OPEN" : "IN_GRACE", progress, ch.current, false));
      break;
    } else {
      prefixFinal = false;
      outcome = now < w.endMs ? "OPEN" : "IN_GRACE";
    }
    if (final && prefixFinal) {
      newBase = { chain: ch, cursor: w.endMs, anchor: null };
      if (group !== undefined) absorbed += group.entries.length;
      windows.push(windowRecord(w, outcome, progress, ch.current, true));
    } else {
      prefixFinal = false;
      windows.push(windowRecord(w, outcome, progress, ch.current, false));
    }
    if (isAlive(ch)) {
      w = nextWindow(spec, w, zone);
    } else {
      const endMs: number = w.endMs;
      const nextGroup = groups.find((g) => g.w.startMs >= endMs);
      w = nextGroup?.w ?? null;
    }
  }
  if (frontier.window === null && !isAlive(ch) && groups.length > 0) {
    const latest = groups[groups.length - 1] as { w: WindowBounds };
    if (now < latest.w.endMs + grace) frontier = { window: latest.w, held: false, alive: false };
  }
  return { chain: ch, base: newBase, tail: tail.slice(absorbed), frontier, misses, entryWindows: new Map(), windows };
}

interface RollingOpen {
  readonly openAt: number;
  /** null: no deadline (after completion the next cycle waits for the member). */
  readonly closeAt: number | null;
  readonly fresh: boolean;
  readonly entries: ActivityEntry[];
}

function chainWindow(spec: RollingWindowSpec, ch: ChainState, anchor: number | null): RollingOpen | null {
  if (anchor === null) return null;
  const min = spec.minSpacingSeconds * 1000;
  if (isAlive(ch)) return { openAt: anchor + min, closeAt: anchor + spec.maxGapSeconds * 1000, fresh: false, entries: [] };
  if (ch.status === "COMPLETED") return { openAt: anchor + min, closeAt: null, fresh: false, entries: [] };
  return null;
}

function foldRolling(
  rules: StreakRules,
  spec: RollingWindowSpec,
  base: StreakBase,
  tail: readonly ActivityEntry[],
  now: number,
  opts: EvalOptions,
): FoldResult {
  const grace = graceMs(rules);
  const min = spec.minSpacingSeconds * 1000;
  const max = spec.maxGapSeconds * 1000;
  let ch = base.chain;
  let anchor = base.anchor;
  let newBase = base;
  let absorbed = 0;
  let prefixFinal = true;
  const misses: { windowKey: string; kind: MissKind }[] = [];
  const windows: WindowRecord[] = [];
  const entryWindows = new Map<string, string | null>();
  let open = chainWindow(spec, ch, anchor);
  let held = false;
  let i = 0;
  for (;;) {
    const e = tail[i];
    if (open !== null && open.closeAt !== null && (e === undefined || e.at >= open.closeAt)) {
      const closeAt = open.closeAt;
      if (now >= closeAt + grace) {
        const closed = open;
        let outcome: WindowOutcome = "MISSED";
        if (!open.fresh) {
          const r = miss(ch, rollingKey(open.openAt), isNeutral(closeAt, grace, opts.pausedIntervals), closeAt + grace);
          ch = r.chain;
          misses.push({ windowKey: rollingKey(open.openAt), kind: r.kind });
          outcome = MISS_OUTCOME[r.kind];
          // A bridged window is replaced by one of the same length opening at the old deadline.
          if (isAlive(ch)) anchor = closeAt - min;
        }
        open = chainWindow(spec, ch, anchor);
        if (prefixFinal) {
          newBase = { chain: ch, cursor: closeAt, anchor };
          absorbed = i;
        }
        // A window a dead run's activity opened and never satisfied is history only if it holds activity.
        if (!closed.fresh || closed.entries.length > 0) {
          const bounds = { key: rollingKey(closed.openAt), startMs: closed.openAt, endMs: closeAt };
          windows.push(windowRecord(bounds, outcome, evaluateCondition(rules.condition, closed.entries), ch.current, prefixFinal));
        }
        continue;
      }
      held = e !== undefined;
      break;
    }
    if (e === undefined) break;
    if (open === null) open = { openAt: e.at, closeAt: e.at + max, fresh: true, entries: [] };
    if (e.at < open.openAt) {
      entryWindows.set(e.id, null);
      i++;
      continue;
    }
    open.entries.push(e);
    entryWindows.set(e.id, rollingKey(open.openAt));
    const progress = evaluateCondition(rules.condition, open.entries);
    if (progress.satisfied) {
      const bounds = { key: rollingKey(open.openAt), startMs: open.openAt, endMs: open.closeAt ?? e.at };
      ch = credit(rules, ch, { ...bounds, at: e.at });
      anchor = e.at;
      open = chainWindow(spec, ch, anchor);
      windows.push(windowRecord(bounds, "SATISFIED", progress, ch.current, prefixFinal && now >= e.at + grace));
      if (prefixFinal && now >= e.at + grace) {
        // Final up to this instant, which stays open: another check-in at the very same instant is still
        // accepted (it falls inside the minimum spacing, at least a second, so it is applied without counting);
        // an exclusive cursor refused it as TOO_LATE. The entries at this instant stay in the tail, so a replay
        // of one is still recognised as a DUPLICATE; folding them again from this base changes nothing (they lie
        // before the next window's opening), and the next credit or closed window absorbs them.
        let first = i;
        while (first > absorbed && tail[first - 1]!.at === e.at) first--;
        newBase = { chain: ch, cursor: e.at, anchor };
        absorbed = first;
      } else {
        prefixFinal = false;
      }
    }
    i++;
  }
  const frontierWindow =
    open === null ? null : { key: rollingKey(open.openAt), startMs: open.openAt, endMs: open.closeAt ?? Number.MAX_SAFE_INTEGER };
  return {
    chain: ch,
    base: newBase,
    tail: tail.slice(absorbed),
    frontier: { window: frontierWindow, held, alive: isAlive(ch) && open !== null },
    misses,
    entryWindows,
    windows,
  };
}

/** Folds `base` + `tail` at `now`: the single definition of streak semantics every entry point goes through. */
export function fold(
  rules: StreakRules,
  zone: string | null,
  base: StreakBase,
  tail: readonly ActivityEntry[],
  now: number,
  opts: EvalOptions = {},
): FoldResult {
  const pauses = opts.pausedIntervals;
  const seen = foldMemo.get(base);
  const hit = seen?.find((m) => m.tail === tail && m.now === now && m.rules === rules && m.zone === zone && m.pauses === pauses);
  if (hit !== undefined) return hit.result;
  const spec = rules.window;
  const result = spec.type === "ROLLING" ? foldRolling(rules, spec, base, tail, now, opts) : foldCalendar(rules, spec, zone ?? spec.timezone, base, tail, now, opts);
  const entry = { rules, zone, tail, now, pauses, result };
  if (seen === undefined) foldMemo.set(base, [entry]);
  else if (seen.length < 4) seen.push(entry);
  else seen[0] = entry;
  return result;
}

// A fold is a pure function of immutable inputs, and one state is folded at the same instant several times on
// the way to a response (advance, the progress view, its deadlines, the stored projections). Results are
// remembered per `base` object (weakly, so they go with the state) and reused only for the very same inputs:
// rules, zone, tail array, instant and pause list, compared by identity. Callers never mutate a FoldResult.
const foldMemo = new WeakMap<StreakBase, { rules: StreakRules; zone: string | null; tail: readonly ActivityEntry[]; now: number; pauses: readonly PauseInterval[] | undefined; result: FoldResult }[]>();

function materialise(prev: MemberStreakState, r: FoldResult, now: number, extra: Partial<MemberStreakState> = {}): MemberStreakState {
  return { ...prev, ...r.chain, ...extra, base: r.base, tail: r.tail, evaluatedAt: now };
}

// ---------------------------------------------------------------------------------------------------------------
// Effects are the difference between two states, so they cannot disagree with what was stored.

export function diffEffects(
  rules: StreakRules,
  before: ChainState,
  after: ChainState,
  misses: readonly { readonly windowKey: string; readonly kind: MissKind }[] = [],
): StreakEffect[] {
  const effects: StreakEffect[] = [];
  const freezes = misses.filter((m) => m.kind === "FREEZE");
  for (let k = 0; k < after.freezesUsed - before.freezesUsed; k++) {
    effects.push({
      type: "streak.freeze_used",
      windowKey: freezes[k]?.windowKey ?? after.lastFreezeKey ?? "",
      freezesUsed: before.freezesUsed + k + 1,
      freezesLeft: after.freezesHeld,
    });
  }
  if (after.breaks > before.breaks && after.lastBreak !== null) {
    effects.push({
      type: "streak.broken",
      finalCount: after.lastBreak.previousStreak,
      windowKey: after.lastBreak.windowKey,
      brokenAt: after.lastBreak.brokenAt,
    });
  }
  if (after.repairs > before.repairs) effects.push({ type: "streak.repaired", restoredCount: after.current });
  if (after.increments > before.increments && after.lastCredited !== null) {
    effects.push({
      type: "streak.incremented",
      count: after.current,
      previousCount: before.current,
      increments: after.increments - before.increments,
      windowKey: after.lastCredited.key,
    });
  }
  const had = new Set(before.earned.map(milestoneKey));
  for (const m of after.earned) {
    if (had.has(milestoneKey(m))) continue;
    const milestone = (rules.milestones ?? []).find((x) => x.threshold === m.threshold) ?? { threshold: m.threshold };
    effects.push({ type: "streak.milestone_reached", ...pickEarned(m), milestone });
  }
  if (after.completions > before.completions) {
    effects.push({ type: "streak.completed", cycle: after.cycle, count: after.current });
  }
  return effects;
}

function pickEarned(m: EarnedMilestone) {
  return {
    threshold: m.threshold,
    occurrence: m.occurrence,
    cycle: m.cycle,
    count: m.count,
    earnedAt: m.earnedAt,
    viaRepair: m.viaRepair,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Entry points.

/**
 * Finalises every window whose close plus grace is at or before `now` (broken, freeze used, or neutral while
 * paused) and settles windows that were waiting on them. Idempotent: advancing twice to the same `now` changes
 * nothing the second time.
 */
export function advance(
  rules: StreakRules,
  state: MemberStreakState,
  now: number,
  opts: EvalOptions = {},
): Transition<null> {
  const r = fold(rules, state.zone, state.base, state.tail, now, opts);
  const next = materialise(state, r, now);
  return { state: next, outcome: null, effects: diffEffects(rules, state, next, r.misses), finalised: finalOnly(r) };
}

function finalOnly(r: FoldResult): WindowRecord[] {
  return r.windows.filter((w) => w.final);
}

/**
 * Re-derives `state` at `now` with `tail` as its not-final activities, for compositions that derive the tail
 * themselves (team streaks feed one "window satisfied" entry per team window). `state` must already be advanced
 * to `now`, and `tail` must hold every entry of its not-final windows (it replaces `state.tail`). Effects are the
 * difference from `state`, exactly as for `applyActivity`.
 */
export function withTail(
  rules: StreakRules,
  state: MemberStreakState,
  tail: readonly ActivityEntry[],
  now: number,
  opts: EvalOptions = {},
  extra: Pick<MemberStreakState, "zone" | "lastActivityAt" | "activityCount">,
): Transition<null> {
  const sorted = [...tail].sort(compareEntries);
  const r = fold(rules, extra.zone, state.base, sorted, now, opts);
  const next = materialise(state, r, now, extra);
  return { state: next, outcome: null, effects: diffEffects(rules, state, next, r.misses) };
}

function pinZone(rules: StreakRules, state: MemberStreakState, memberZone: string | null | undefined): string | null {
  const spec = rules.window;
  if (spec.type === "ROLLING") return null;
  // Re-pinning mid-run would move window boundaries under existing progress, so only idle streaks follow a move.
  const idle = state.tail.length === 0 && !isAlive(state.base.chain);
  if (state.zone !== null && !idle) return state.zone;
  if (memberZone == null && state.zone !== null) return state.zone;
  return effectiveZone(spec, memberZone);
}

function windowProgressBefore(rules: StreakRules, zone: string | null, tail: readonly ActivityEntry[], at: number): boolean {
  const spec = rules.window;
  if (spec.type !== "CALENDAR") return false;
  const z = zone ?? spec.timezone;
  const key = windowFor(spec, at, z).key;
  return evaluateCondition(rules.condition, tail.filter((e) => windowFor(spec, e.at, z).key === key)).satisfied;
}

/**
 * Applies one activity. `ctx.now` is its arrival time: windows that finalised before it are finalised first (with
 * their effects), then the activity is counted in the window its event time falls in — unless that window is
 * already final (NOT_APPLIED / TOO_LATE, the state is unchanged apart from that finalisation).
 */
export function applyActivity(
  rules: StreakRules,
  state: MemberStreakState,
  activity: ActivityInput,
  ctx: ApplyContext,
): Transition<ApplyOutcome> {
  const value = activity.value ?? 0;
  if (state.tail.some((e) => e.id === activity.id)) {
    return { state, outcome: { kind: "DUPLICATE" }, effects: [] };
  }
  const advanced = advance(rules, state, ctx.now, ctx);
  const notApplied = (reason: NotAppliedReason): Transition<ApplyOutcome> => ({
    state: advanced.state,
    outcome: { kind: "NOT_APPLIED", reason },
    effects: advanced.effects,
    finalised: advanced.finalised,
  });
  if (!Number.isFinite(value) || value < 0 || !Number.isFinite(activity.occurredAt)) return notApplied("INVALID_VALUE");
  if (activity.occurredAt > ctx.now + (ctx.futureToleranceMs ?? 0)) return notApplied("IN_FUTURE");
  const s = advanced.state;
  const grace = graceMs(rules);
  const zone = pinZone(rules, s, activity.memberTimezone);
  if (s.base.cursor !== null && activity.occurredAt < s.base.cursor) return notApplied("TOO_LATE");
  const spec = rules.window;
  if (spec.type === "CALENDAR") {
    const w = windowFor(spec, activity.occurredAt, zone ?? spec.timezone);
    if (ctx.now >= w.endMs + grace) return notApplied("TOO_LATE");
  }

  const entry: ActivityEntry = {
    id: activity.id,
    at: activity.occurredAt,
    value,
    key: activity.distinctKey ?? null,
  };
  const wasSatisfied = windowProgressBefore(rules, zone, s.tail, entry.at);
  const tail = [...s.tail, entry].sort(compareEntries);
  const r = fold(rules, zone, s.base, tail, ctx.now, ctx);
  const next = materialise(s, r, ctx.now, {
    zone,
    lastActivityAt: Math.max(s.lastActivityAt ?? entry.at, entry.at),
    activityCount: s.activityCount + 1,
  });
  const effects = [...advanced.effects, ...diffEffects(rules, s, next, r.misses)];
  let isNewActivity: boolean;
  let windowKey: string | null;
  if (spec.type === "CALENDAR") {
    windowKey = windowFor(spec, entry.at, zone ?? spec.timezone).key;
    isNewActivity = !wasSatisfied && windowProgressBefore(rules, zone, tail, entry.at);
  } else {
    windowKey = r.entryWindows.get(entry.id) ?? null;
    isNewActivity = windowKey !== null && next.increments > s.increments && next.lastCredited?.at === entry.at;
  }
  const wasReset = next.lastReset !== null && next.lastReset.runStartKey !== s.lastReset?.runStartKey && next.current > 0;
  return {
    state: next,
    outcome: {
      kind: "APPLIED",
      isNewActivity,
      wasReset,
      previousStreak: wasReset && next.lastReset !== null ? next.lastReset.previousStreak : 0,
      windowKey,
    },
    effects,
    finalised: [...(advanced.finalised ?? []), ...finalOnly(r)],
  };
}

/**
 * The state the full history gives at `now`: initial state, activities folded in event-time order. Pass only the
 * activities that were applied; admin operations (freeze grants, repairs) are not part of activity history.
 */
export function recompute(
  rules: StreakRules,
  activities: readonly ActivityInput[],
  now: number,
  opts: EvalOptions = {},
): MemberStreakState {
  const seen = new Set<string>();
  const entries: ActivityEntry[] = [];
  let lastActivityAt: number | null = null;
  for (const a of activities) {
    if (seen.has(a.id)) continue;
    seen.add(a.id);
    entries.push({ id: a.id, at: a.occurredAt, value: a.value ?? 0, key: a.distinctKey ?? null });
    lastActivityAt = Math.max(lastActivityAt ?? a.occurredAt, a.occurredAt);
  }
  entries.sort(compareEntries);
  const init = initialState(rules);
  const firstZone = [...activities].sort((a, b) => a.occurredAt - b.occurredAt || (a.id < b.id ? -1 : 1))[0]?.memberTimezone;
  const zone = rules.window.type === "CALENDAR" && entries.length > 0 ? effectiveZone(rules.window, firstZone) : null;
  const r = fold(rules, zone, init.base, entries, now, opts);
  return materialise(init, r, now, { zone, lastActivityAt, activityCount: entries.length });
}

export type RepairOutcome =
  | { readonly kind: "REPAIRED"; readonly restoredCount: number }
  | { readonly kind: "NOT_REPAIRABLE"; readonly reason: "REPAIR_DISABLED" | "NOT_BROKEN" | "ALREADY_REPAIRED" | "WINDOW_EXPIRED" };

/** Calendar: the first tail window that meets the condition, i.e. where a run started on a dead chain begins. */
function firstSatisfiedWindow(
  rules: StreakRules,
  spec: CalendarWindowSpec,
  zone: string,
  tail: readonly ActivityEntry[],
): WindowBounds | null {
  let i = 0;
  while (i < tail.length) {
    const w = windowFor(spec, (tail[i] as ActivityEntry).at, zone);
    let j = i;
    while (j < tail.length && (tail[j] as ActivityEntry).at < w.endMs) j++;
    if (evaluateCondition(rules.condition, tail.slice(i, j)).satisfied) return w;
    i = j;
  }
  return null;
}

/**
 * Restores a broken streak within `repairWindowSeconds` of the break: the windows missed since are bridged and
 * the run since the break joins the restored one. Never grants a milestone that was already granted.
 *
 * The restored chain is written to the base and the tail is folded on top of it again. The run since the break
 * may still be (partly) in the tail, because its windows are not final yet. The restored run then goes on
 * exactly where that run started, so folding the tail again joins it. Every window before that point is
 * bridged, including ones still in grace that the new run had skipped. If the restored run went on at an
 * earlier window instead (the first one still in grace), that skipped window would hold the joined run and
 * then break it. Or, for rolling windows, the tail would be dropped. Either way, the milestones the run had
 * earned would be taken back and granted a second time later.
 */
export function repair(rules: StreakRules, state: MemberStreakState, now: number, opts: EvalOptions = {}): Transition<RepairOutcome> {
  const advanced = advance(rules, state, now, opts);
  const s = advanced.state;
  const no = (reason: Extract<RepairOutcome, { kind: "NOT_REPAIRABLE" }>["reason"]): Transition<RepairOutcome> => ({
    state: s,
    outcome: { kind: "NOT_REPAIRABLE", reason },
    effects: advanced.effects,
    finalised: advanced.finalised,
  });
  const windowSec = rules.repairWindowSeconds ?? 0;
  if (windowSec <= 0) return no("REPAIR_DISABLED");
  const lb = s.base.chain.lastBreak;
  if (lb === null) return no("NOT_BROKEN");
  if (lb.repaired) return no("ALREADY_REPAIRED");
  if (now > lb.brokenAt + windowSec * 1000) return no("WINDOW_EXPIRED");
  const spec = rules.window;
  const grace = graceMs(rules);
  let cursor = s.base.cursor;
  let anchor = s.base.anchor;
  let repairKey = lb.windowKey;
  // A run started since the break whose windows are all still in the tail (the base is still at the break).
  const runInTail = s.base.chain.current === 0 && s.current > 0;
  const firstTail = s.tail[0];
  if (spec.type === "CALENDAR") {
    const zone = s.zone ?? spec.timezone;
    const runStart = runInTail ? firstSatisfiedWindow(rules, spec, zone, s.tail) : null;
    if (runStart !== null) {
      // Bridge everything up to where the run since the break started; it joins the restored run from there.
      cursor = Math.max(cursor ?? runStart.startMs, runStart.startMs);
      repairKey = runStart.key;
    } else {
      // Every window that is already final since the break is bridged; the first open one is where the run goes on.
      const firstOpen = windowFor(spec, now - grace, zone);
      cursor = Math.max(cursor ?? firstOpen.startMs, firstOpen.startMs);
      repairKey = firstOpen.key;
    }
  } else if (runInTail && firstTail !== undefined) {
    // The first tail activity opened the run since the break. With no anchor, the restored run lets that
    // activity open the same window again, [at, at + maxGap), so the tail is counted on top of the restored count.
    anchor = null;
    repairKey = rollingKey(firstTail.at);
  } else if (!isAlive(s.base.chain)) {
    anchor = now - spec.minSpacingSeconds * 1000;
    cursor = Math.max(cursor ?? now, now);
    repairKey = rollingKey(now);
  }
  const chain = restore(rules, s.base.chain, repairKey, now);
  const base: StreakBase = { chain, cursor, anchor };
  const tail = s.tail.filter((e) => cursor === null || e.at >= cursor);
  const r = fold(rules, s.zone, base, tail, now, opts);
  const next = materialise(s, r, now);
  return {
    state: next,
    outcome: { kind: "REPAIRED", restoredCount: next.current },
    effects: [...advanced.effects, ...diffEffects(rules, s, next, r.misses)],
    finalised: [...(advanced.finalised ?? []), ...finalOnly(r)],
    bridge: bridgeOf(rules, s, lb, cursor ?? now, s.base.chain.current > 0 ? s.base.chain.runStartKey : null),
  };
}

// Bridged calendar windows are stored one row each; a repair window spans at most a few hundred of them, and
// this bound keeps a misconfigured one (hourly windows, a year to repair) from writing without limit.
const MAX_BRIDGED_WINDOWS = 5_000;

/**
 * The history a repair rewrites (see `Bridge`): from the window that broke the run up to the restored base's
 * cursor, or up to the start of the run since the break when that run is already final (`runStartKey`).
 */
function bridgeOf(rules: StreakRules, s: MemberStreakState, lb: BreakRecord, untilMs: number, runStartKey: string | null): Bridge {
  const spec = rules.window;
  const closeAt = lb.brokenAt - graceMs(rules);
  const windows: WindowRecord[] = [];
  if (spec.type === "ROLLING") {
    const fromMs = closeAt - (spec.maxGapSeconds - spec.minSpacingSeconds) * 1000;
    return { fromMs, untilMs: Math.max(untilMs, fromMs + 1), previousStreak: lb.previousStreak, windows };
  }
  const zone = s.zone ?? spec.timezone;
  let w = windowFor(spec, closeAt - 1, zone);
  const fromMs = w.startMs;
  while (w.startMs < untilMs && w.key !== runStartKey && windows.length < MAX_BRIDGED_WINDOWS) {
    windows.push(windowRecord(w, "BRIDGED", null, lb.previousStreak, true));
    w = nextWindow(spec, w, zone);
  }
  return { fromMs, untilMs: Math.max(untilMs, fromMs + 1), previousStreak: lb.previousStreak, windows };
}

/** Adds freezes (admin grant), capped at the policy's `maxHeld`. */
export function grantFreezes(
  rules: StreakRules,
  state: MemberStreakState,
  count: number,
  now: number,
  opts: EvalOptions = {},
): Transition<{ readonly kind: "GRANTED"; readonly freezesHeld: number }> {
  const advanced = advance(rules, state, now, opts);
  const s = advanced.state;
  const base: StreakBase = { ...s.base, chain: grantFreezeCount(rules, s.base.chain, count) };
  const r = fold(rules, s.zone, base, s.tail, now, opts);
  const next = materialise(s, r, now);
  return {
    state: next,
    outcome: { kind: "GRANTED", freezesHeld: next.freezesHeld },
    effects: [...advanced.effects, ...diffEffects(rules, s, next, r.misses)],
    finalised: [...(advanced.finalised ?? []), ...finalOnly(r)],
  };
}

/** The fold's view of what is still open, for deadlines and progress. */
export function frontierOf(rules: StreakRules, state: MemberStreakState, now: number, opts: EvalOptions = {}): FoldResult {
  return fold(rules, state.zone, state.base, state.tail, now, opts);
}

export type BreakKind = "BREAK" | "FREEZE" | "SETTLE";

export interface Deadlines {
  /** Close of the first window the streak still needs (the current one, or the next once the current is satisfied). */
  readonly windowCloseAt: number | null;
  /** When the at-risk reminder is due (close − atRiskLeadSeconds); null without a lead or a live run. */
  readonly atRiskAt: number | null;
  /** Close + grace: when, absent new activity, `advance` changes this streak; null when nothing would change. */
  readonly breakAt: number | null;
  /**
   * What happens at `breakAt`. BREAK: exactly `current = 0, status = BROKEN, breaks + 1` — safe for a set-based
   * SQL sweep. FREEZE / SETTLE (a freeze is consumed, or held windows are counted): the row must go through
   * `advance`.
   */
  readonly breakKind: BreakKind | null;
}

/**
 * Deadlines as of the state's last evaluation; stored as indexed columns so sweeps can find due streaks.
 * Contract: for any `t >= breakAt` (and no activity in between, no pause covering the window)
 * `advance(rules, state, t)` yields the `breakKind` transition described above, and for `t < breakAt` it changes
 * nothing but settles nothing either.
 */
export function deadlines(rules: StreakRules, state: MemberStreakState, opts: EvalOptions = {}): Deadlines {
  const now = state.evaluatedAt ?? 0;
  const r = frontierOf(rules, state, now, opts);
  const f = r.frontier;
  if (f.window === null || (!f.alive && !f.held)) {
    return { windowCloseAt: null, atRiskAt: null, breakAt: null, breakKind: null };
  }
  const grace = graceMs(rules);
  const closeAt = f.window.endMs;
  const lead = rules.atRiskLeadSeconds;
  const kind: BreakKind = f.held ? "SETTLE" : r.chain.freezesHeld > 0 ? "FREEZE" : "BREAK";
  return {
    windowCloseAt: closeAt,
    atRiskAt: f.alive && lead !== undefined && lead > 0 ? closeAt - lead * 1000 : null,
    breakAt: closeAt + grace,
    breakKind: kind,
  };
}

/** Whether a live run's open window is unsatisfied and within the at-risk lead of closing, at `now`. */
export function atRisk(rules: StreakRules, state: MemberStreakState, now: number, opts: EvalOptions = {}): boolean {
  const s = advance(rules, state, now, opts).state;
  const d = deadlines(rules, s, opts);
  if (d.windowCloseAt === null || d.breakAt === null) return false;
  const r = frontierOf(rules, s, now, opts);
  if (r.frontier.window === null || r.frontier.window.startMs > now) return false;
  const from = d.atRiskAt ?? d.windowCloseAt;
  return now >= from && now < d.breakAt;
}

export type { WindowProgress };
export { isValidZone };

/**
 * The windows after the stored base at `now`, oldest first: the ones that became final since the state was last
 * saved (stored by the next write or sweep, with exactly these values) and the live ones — the open window
 * (OPEN, or IN_GRACE past its close), satisfied windows whose grace has not passed (SATISFIED, not final) and
 * satisfied windows held behind an unsettled one (their count after is the count as it stands, without them).
 * Windows that have not started at `now` are left out.
 * A rolling window with no deadline (after a completion, until the member's next activity) is left out.
 */
export function unsavedWindows(rules: StreakRules, state: MemberStreakState, now: number, opts: EvalOptions = {}): WindowRecord[] {
  const r = fold(rules, state.zone, state.base, state.tail, now, opts);
  const out = [...r.windows];
  const f = r.frontier.window;
  const spec = rules.window;
  if (f !== null && f.endMs !== Number.MAX_SAFE_INTEGER && !out.some((w) => w.key === f.key)) {
    const entries = r.tail.filter((e) => e.at >= f.startMs && e.at < f.endMs);
    out.push(windowRecord(f, now < f.endMs ? "OPEN" : "IN_GRACE", evaluateCondition(rules.condition, entries), r.chain.current, false));
  }
  if (spec.type === "CALENDAR" && f !== null && r.frontier.held) {
    const zone = state.zone ?? spec.timezone;
    const later = new Map<string, { w: WindowBounds; entries: ActivityEntry[] }>();
    for (const e of r.tail) {
      if (e.at < f.endMs) continue;
      const w = windowFor(spec, e.at, zone);
      const group = later.get(w.key) ?? { w, entries: [] };
      group.entries.push(e);
      later.set(w.key, group);
    }
    for (const { w, entries } of later.values()) {
      const p = evaluateCondition(rules.condition, entries);
      out.push(windowRecord(w, p.satisfied ? "SATISFIED" : now < w.endMs ? "OPEN" : "IN_GRACE", p, r.chain.current, false));
    }
  }
  // The fold looks one window ahead of a satisfied one; a window that has not started yet is not history.
  return out.filter((w) => w.startMs <= now).sort((a, b) => a.startMs - b.startMs);
}
