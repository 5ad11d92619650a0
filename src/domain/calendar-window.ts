import { DateTime, IANAZone } from "luxon";

export type Period = "DAILY" | "WEEKLY" | "MONTHLY";

/** Calendar windows: consecutive local days, weeks or months in one IANA zone. */
export interface CalendarWindowSpec {
  readonly type: "CALENDAR";
  readonly period: Period;
  /** IANA zone of the definition; also the fallback when the member's own zone is unknown. */
  readonly timezone: string;
  /** When true each member's windows follow the member's own zone (pinned on their first activity). */
  readonly useMemberTimezone?: boolean;
  /** Local wall-clock time at which a window starts, `HH:MM` (24 h). */
  readonly resetTime: string;
  /** ISO weekday a week starts on: 1 = Monday … 7 = Sunday. Only used by WEEKLY. */
  readonly weekStart: number;
}

/** One window: `[startMs, endMs)` in epoch milliseconds, with its stable key. */
export interface WindowBounds {
  readonly key: string;
  readonly startMs: number;
  readonly endMs: number;
}

export interface LocalTime {
  readonly hour: number;
  readonly minute: number;
}

const RESET_TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;

export function parseResetTime(text: string): LocalTime | null {
  const m = RESET_TIME.exec(text);
  if (m === null) return null;
  return { hour: Number(m[1]), minute: Number(m[2]) };
}

export function isValidZone(zone: string): boolean {
  return typeof zone === "string" && zone.length > 0 && IANAZone.isValidZone(zone);
}

/**
 * The instant local `date` reaches `time`, resolved like RFC 5545 and TC39 Temporal's "compatible" mode: a time
 * that exists twice (clocks fall back) is its first occurrence; a time that does not exist (clocks spring
 * forward over it) is shifted forward by the gap, e.g. 02:30 on a 02:00→03:00 night becomes 03:30. This keeps
 * every day 23, 24 or 25 hours long (for 1-hour shifts) instead of splitting the lost hour across two days.
 */
function boundaryInstant(date: DateTime, time: LocalTime, zone: string): number {
  const guess = DateTime.fromObject(
    { year: date.year, month: date.month, day: date.day, hour: time.hour, minute: time.minute },
    { zone },
  );
  // Luxon already shifts a skipped time forward; for a repeated time it picks the later offset, so take the first.
  return Math.min(...guess.getPossibleOffsets().map((d) => d.toMillis()), guess.toMillis());
}

/** The local date on which the period containing `date` starts (dates are plain UTC calendar dates). */
function periodAnchor(period: Period, weekStart: number, date: DateTime): DateTime {
  switch (period) {
    case "DAILY":
      return date;
    case "WEEKLY":
      return date.minus({ days: (date.weekday - weekStart + 7) % 7 });
    case "MONTHLY":
      return date.startOf("month");
  }
}

function stepAnchor(period: Period, date: DateTime, steps: number): DateTime {
  switch (period) {
    case "DAILY":
      return date.plus({ days: steps });
    case "WEEKLY":
      return date.plus({ weeks: steps });
    case "MONTHLY":
      return date.plus({ months: steps });
  }
}

function keyOf(period: Period, anchor: DateTime): string {
  return period === "MONTHLY" ? anchor.toFormat("yyyy-MM") : (anchor.toISODate() as string);
}

// Folds recompute the same windows over and over; results are pure functions of their inputs, so a bounded
// memo is safe (also inside Temporal workflows, where it only ever holds deterministic values).
const memo = new Map<string, WindowBounds>();
const MEMO_LIMIT = 20_000;

function remember(cacheKey: string, bounds: WindowBounds): WindowBounds {
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(cacheKey, bounds);
  return bounds;
}

/**
 * The calendar window containing `instantMs` in `zone`: windows start at the reset time on the period's first
 * local day (every day, the week-start weekday, the 1st of the month) and end where the next one starts, so
 * consecutive windows touch and every instant belongs to exactly one.
 */
export function windowFor(spec: CalendarWindowSpec, instantMs: number, zone: string): WindowBounds {
  // Windows partition time, so a window already computed for this spec and zone answers every instant inside it.
  let zones = recent.get(spec);
  if (zones === undefined) recent.set(spec, (zones = new Map()));
  let near = zones.get(zone);
  if (near === undefined) zones.set(zone, (near = []));
  for (const w of near) if (instantMs >= w.startMs && instantMs < w.endMs) return w;
  const bounds = computeWindow(spec, instantMs, zone);
  if (near.length >= RECENT_PER_ZONE) near.shift();
  near.push(bounds);
  return bounds;
}

// The last few windows per (spec object, zone), checked by containment before the keyed memo and luxon.
const recent = new WeakMap<CalendarWindowSpec, Map<string, WindowBounds[]>>();
const RECENT_PER_ZONE = 8;

function computeWindow(spec: CalendarWindowSpec, instantMs: number, zone: string): WindowBounds {
  const cacheKey = `${zone}|${spec.period}|${spec.resetTime}|${spec.weekStart}|${instantMs}`;
  const hit = memo.get(cacheKey);
  if (hit !== undefined) return hit;
  const time = parseResetTime(spec.resetTime);
  if (time === null) throw new RangeError(`invalid reset time ${spec.resetTime}; validate rules first`);
  const local = DateTime.fromMillis(instantMs, { zone });
  if (!local.isValid) throw new RangeError(`invalid zone ${zone}; validate rules first`);
  let anchor = periodAnchor(spec.period, spec.weekStart, DateTime.utc(local.year, local.month, local.day));
  let start = boundaryInstant(anchor, time, zone);
  while (instantMs < start) {
    anchor = stepAnchor(spec.period, anchor, -1);
    start = boundaryInstant(anchor, time, zone);
  }
  let end = boundaryInstant(stepAnchor(spec.period, anchor, 1), time, zone);
  // A fall-back transition at midnight can show an instant under yesterday's date after today's boundary.
  while (instantMs >= end) {
    anchor = stepAnchor(spec.period, anchor, 1);
    start = end;
    end = boundaryInstant(stepAnchor(spec.period, anchor, 1), time, zone);
  }
  return remember(cacheKey, { key: keyOf(spec.period, anchor), startMs: start, endMs: end });
}

/** The window right after `w` (they touch: its start is `w.endMs`). */
export function nextWindow(spec: CalendarWindowSpec, w: WindowBounds, zone: string): WindowBounds {
  return windowFor(spec, w.endMs, zone);
}

/** The window right before `w`. */
export function previousWindow(spec: CalendarWindowSpec, w: WindowBounds, zone: string): WindowBounds {
  return windowFor(spec, w.startMs - 1, zone);
}

/** The zone a member's calendar windows use: their own when the definition says so and it is known. */
export function effectiveZone(spec: CalendarWindowSpec, memberZone: string | null | undefined): string {
  return spec.useMemberTimezone === true && memberZone != null && isValidZone(memberZone) ? memberZone : spec.timezone;
}

/** Rolling windows are keyed by the instant they open, in UTC ISO-8601, e.g. `2025-01-15T08:30:00.000Z`. */
export function rollingKey(openMs: number): string {
  return new Date(openMs).toISOString();
}
