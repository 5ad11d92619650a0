/**
 * Stable, machine-readable reasons for rule violations. The API maps these to INVALID_ARGUMENT with a
 * `google.rpc.ErrorInfo` whose `reason` is the value below, so they must never be renamed.
 */
export type DomainErrorReason =
  | "INVALID_TIMEZONE"
  | "INVALID_RESET_TIME"
  | "INVALID_WEEK_START"
  | "INVALID_PERIOD"
  | "INVALID_ROLLING_WINDOW"
  | "INVALID_CONDITION"
  | "INVALID_GRACE"
  | "INVALID_MILESTONE"
  | "INVALID_MULTIPLIER_TIER"
  | "INVALID_COMPLETION_TARGET"
  | "INVALID_FREEZE_POLICY"
  | "INVALID_REPAIR_WINDOW"
  | "INVALID_AT_RISK_LEAD"
  | "INVALID_DISPLAY"
  | "INVALID_TEAM_RULE"
  | "ALREADY_TEAM_MEMBER"
  | "NOT_TEAM_MEMBER"
  | "INVALID_TEAM_SIZE";

export class DomainError extends Error {
  readonly reason: DomainErrorReason;
  /** Dotted path of the offending rule field, e.g. `window.resetTime` or `milestones[2].threshold`. */
  readonly field: string;

  constructor(reason: DomainErrorReason, field: string, message: string) {
    super(message);
    this.name = "DomainError";
    this.reason = reason;
    this.field = field;
  }
}
