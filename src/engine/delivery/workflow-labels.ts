// What an operator reads in the Temporal UI instead of `sweeper/<uuid>/<uuid>`: every workflow Kindling starts
// gets Temporal user metadata — a one-line summary and markdown details, both on the workflow's page — a memo
// with the same names, and the summary as plain text in the KindlingSummary search attribute, the one place the
// UI's workflow list (2.54) can show it, as a column. The ids and the id search attributes stay as they are.
//
// The names are looked up by the outbox relay when it starts the workflow, not written into the outbox row: the
// API's write path stays as it is, and a rename between the API's commit and the relay is picked up. They are
// names as of the workflow's start and say so: Temporal keeps static metadata for the life of a run, and a later
// rename of the tenant or definition does not reach it. The memo is carried over continue-as-new by the server;
// the static summary is not (SDK 1.24's continueAsNew cannot set it), so the sweeper shows the memo's summary as
// its current details on every run.

export interface SweeperNames {
  readonly tenantId: string;
  readonly tenantName: string;
  readonly definitionId: string;
  readonly definitionName: string;
}

export interface RewardNames extends SweeperNames {
  readonly rewardId: string;
  readonly rewardName: string;
  readonly rewardKind: string;
  readonly fulfilment: string;
  readonly threshold: number;
  readonly memberId: string;
  readonly memberExternalId: string;
  readonly attempt: number;
}

export interface WorkflowLabel {
  readonly staticSummary: string;
  readonly staticDetails: string;
  readonly memo: Record<string, unknown>;
  /** The summary as plain text (no markdown escapes), at most LIST_SUMMARY_BYTES: the KindlingSummary value. */
  readonly listSummary: string;
}

// The summary is one short line in the UI's list, and a server may cap user metadata's size (the 1.32 dev server
// accepted 1,000 bytes; we stay under 400 to leave room for stricter ones). Names are up to 256 characters each, so
// each part of the summary is cut to 48 characters and 80 bytes, and the whole is bounded again in bytes.
const PART_CHARS = 48;
const PART_BYTES = 80;
const SUMMARY_BYTES = 380;
const DETAIL_CHARS = 256;
// A Keyword search attribute is a VARCHAR(255) in SQL visibility (PostgreSQL, MySQL, SQLite): bound by bytes,
// which bounds characters too.
export const LIST_SUMMARY_BYTES = 255;
const AS_OF_START = "_Names as of this workflow's start; a later rename does not change them._";

/** One line of plain text: control characters and runs of whitespace become one space; cut to `max` characters
 * and `maxBytes` UTF-8 bytes. */
function oneLine(text: string, max: number, maxBytes = Infinity): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f\u2028\u2029\s]+/gu, " ").trim();
  const chars = [...flat];
  if (chars.length <= max && Buffer.byteLength(flat) <= maxBytes) return flat;
  chars.length = Math.min(chars.length, max - 1);
  while (chars.length > 0 && Buffer.byteLength(`${chars.join("")}…`) > maxBytes) chars.pop();
  return `${chars.join("").trimEnd()}…`;
}

/** Names are tenant-chosen text rendered as markdown by the UI: escape what would make links, emphasis or HTML. */
function md(text: string, max = DETAIL_CHARS, maxBytes = Infinity): string {
  return oneLine(text, max, maxBytes).replace(/[\\`*_[\]()<>#|~!]/g, (c) => `\\${c}`) || "\\(unnamed\\)";
}

function summaryOf(parts: readonly string[]): string {
  const text = parts.map((p) => md(p, PART_CHARS, PART_BYTES)).join(" · ");
  if (Buffer.byteLength(text) <= SUMMARY_BYTES) return text;
  const chars = [...text];
  // Cut by characters until it fits; never leave a lone escaping backslash at the end.
  while (chars.length > 0 && (Buffer.byteLength(`${chars.join("")}…`) > SUMMARY_BYTES || chars.at(-1) === "\\")) chars.pop();
  return `${chars.join("").trimEnd()}…`;
}

function listSummaryOf(parts: readonly string[]): string {
  return oneLine(parts.map((p) => oneLine(p, PART_CHARS, PART_BYTES) || "(unnamed)").join(" · "), Infinity, LIST_SUMMARY_BYTES);
}

export function sweeperLabel(n: SweeperNames): WorkflowLabel {
  const parts = [n.tenantName, n.definitionName, "window sweeper"];
  const staticSummary = summaryOf(parts);
  const staticDetails = [
    `**Window sweeper** of streak definition **${md(n.definitionName)}**`,
    "",
    `- Tenant: ${md(n.tenantName)} (\`${n.tenantId}\`)`,
    `- Definition: ${md(n.definitionName)} (\`${n.definitionId}\`)`,
    "",
    AS_OF_START,
  ].join("\n");
  return {
    staticSummary,
    staticDetails,
    memo: { summary: staticSummary, tenant: n.tenantName, definition: n.definitionName },
    listSummary: listSummaryOf(parts),
  };
}

export function rewardLabel(n: RewardNames): WorkflowLabel {
  const what = `${n.rewardKind} reward at milestone ${n.threshold}${n.attempt > 0 ? ` (retry ${n.attempt})` : ""}`;
  const parts = [n.tenantName, n.definitionName, `member ${n.memberExternalId}`, what];
  const staticSummary = summaryOf(parts);
  const staticDetails = [
    `**${md(n.rewardKind)} reward** for member **${md(n.memberExternalId)}** at milestone **${n.threshold}** of **${md(n.definitionName)}**`,
    "",
    `- Tenant: ${md(n.tenantName)} (\`${n.tenantId}\`)`,
    `- Definition: ${md(n.definitionName)} (\`${n.definitionId}\`)`,
    `- Member: ${md(n.memberExternalId)} (\`${n.memberId}\`)`,
    `- Reward: ${n.rewardName ? `${md(n.rewardName)}, ` : ""}${md(n.rewardKind)}, fulfilment ${md(n.fulfilment)} (\`${n.rewardId}\`)`,
    `- Milestone: ${n.threshold}`,
    ...(n.attempt > 0 ? [`- Attempt: ${n.attempt}`] : []),
    "",
    AS_OF_START,
  ].join("\n");
  return {
    staticSummary,
    staticDetails,
    memo: {
      summary: staticSummary,
      tenant: n.tenantName,
      definition: n.definitionName,
      member: n.memberExternalId,
      milestone: n.threshold,
      rewardKind: n.rewardKind,
      rewardName: n.rewardName,
      fulfilment: n.fulfilment,
      attempt: n.attempt,
    },
    listSummary: listSummaryOf(parts),
  };
}
