/**
 * Kindling's streak domain: pure, deterministic, no I/O. Every instant is epoch milliseconds, `now` is always
 * an argument, and every state and effect is plain JSON, so this module can be imported inside Temporal workflows.
 *
 * Public API
 * - `StreakRules`, `validateRules(rules): DomainError[]`, `assertValidRules`. Each `DomainError` has a stable
 *   `reason` (INVALID_TIMEZONE, INVALID_RESET_TIME, …) and the `field` it concerns.
 * - `initialState(rules)`, then
 *   `applyActivity(rules, state, {id, occurredAt, value?, distinctKey?, memberTimezone?}, {now, pausedIntervals?})`
 *   → `{state, outcome, effects}`. `outcome` is APPLIED {isNewActivity, wasReset, previousStreak, windowKey},
 *   DUPLICATE, or NOT_APPLIED {TOO_LATE | IN_FUTURE | INVALID_VALUE}.
 * - `advance(rules, state, now, {pausedIntervals?})` finalises every window whose close plus grace is ≤ now.
 *   It may break the streak, use a freeze, leave a window neutral because of a pause, or count windows that were
 *   waiting. `repair(…)` and `grantFreezes(…)` are the admin operations.
 * - `recompute(rules, activities, now)` folds the applied activity history from the initial state in event-time
 *   order. It always equals incremental processing (property test (a)).
 * - `deadlines(rules, state)` → `{windowCloseAt, atRiskAt, breakAt, breakKind}`.
 * - `progressView(rules, state, now, {language})`: the read model, evaluated lazily at `now`.
 *   `renderDisplay` / `renderTemplate` render the Gamopanda labels and messages.
 * - `windowFor(spec, instantMs, zone)` → `{key, startMs, endMs}`, plus `nextWindow` and `previousWindow`.
 *
 * Contract for persistence and sweeps
 * - Keep `current`, `longest`, `status` and the three `deadlines()` values in columns, and refresh them every
 *   time the JSON state is written.
 * - A set-based sweep `UPDATE … SET current = 0, status = 'BROKEN', break_at = NULL WHERE definition_id = $1
 *   AND break_kind = 'BREAK' AND break_at <= $2` is exactly what `advance(rules, state, t)` does for `t ≥ breakAt`.
 *   It does not need to rewrite the JSON state: every entry point calls `advance` first, and that is deterministic,
 *   so the stored JSON stays equivalent. The streak.broken event is
 *   `{finalCount: current before the sweep, windowKey of the window that closed, brokenAt: breakAt}`.
 * - Rows with `break_kind` FREEZE or SETTLE, and every row of a definition that was paused while its break was
 *   due, must go through `advance(…, {pausedIntervals})`. The sweep cannot decide these.
 * - Pass the definition's pause history (`pausedIntervals`) on every call. Windows whose close or grace falls in
 *   a pause are neutral.
 * - Store only APPLIED activities' ids as applied. `recompute` must receive exactly those.
 */
export * from "./domain-error.ts";
export * from "./rules.ts";
export * from "./calendar-window.ts";
export * from "./condition.ts";
export * from "./streak-status.ts";
export * from "./streak-chain.ts";
export * from "./streak-machine.ts";
export * from "./display-templates.ts";
export * from "./progress-view.ts";
export * from "./reward-lifecycle.ts";
export * from "./team-streak.ts";
