// Expected failures of engine operations (rewards, members, events): a kind that says which API code they mean,
// and a stable UPPER_SNAKE reason that is part of the contract. The API's one error mapper (src/api/errors.ts)
// turns them into Connect errors; the engine itself never imports Connect.
export type EngineErrorKind = "NOT_FOUND" | "FAILED_PRECONDITION" | "INVALID_ARGUMENT" | "PERMISSION_DENIED";

export class EngineError extends Error {
  readonly kind: EngineErrorKind;
  readonly reason: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** For INVALID_ARGUMENT: the input field at fault (an API field name such as `value`), as a field violation. */
  readonly field: string | undefined;

  constructor(kind: EngineErrorKind, reason: string, message: string, metadata: Record<string, string> = {}, field?: string) {
    super(message);
    this.name = "EngineError";
    this.kind = kind;
    this.reason = reason;
    this.metadata = metadata;
    this.field = field;
  }
}

export const notFoundError = (what: string, metadata: Record<string, string> = {}) =>
  new EngineError("NOT_FOUND", `${what.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}_NOT_FOUND`, `${what} not found`, metadata);

/** End users act only on their own member (PRODUCT §2). */
export const memberMismatch = () => new EngineError("PERMISSION_DENIED", "MEMBER_MISMATCH", "end users may only access their own member");

/** A member session scoped to one definition acts in that definition only. */
export const definitionMismatch = () => new EngineError("PERMISSION_DENIED", "DEFINITION_MISMATCH", "this member session is limited to another definition");
