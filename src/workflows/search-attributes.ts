// Kindling's custom search attributes: the names operators filter by in the Temporal UI to find a tenant's,
// definition's or member's workflows (PRODUCT.md §5 "Operability").
//
// Why constants only and no imports: this module is shared by workflow code (which must stay deterministic and
// free of Node built-ins), the worker/client that set the attributes, and the infrastructure that registers them
// on a dev server (`--search-attribute`) or on a real cluster. Keeping it import-free lets every side use it.

export const KINDLING_TENANT_ID = "KindlingTenantId";
export const KINDLING_DEFINITION_ID = "KindlingDefinitionId";
export const KINDLING_MEMBER_ID = "KindlingMemberId";
// The workflow's one-line summary in plain text ("Acme Coffee · Daily Espresso · member ella-1001 · …"), so the
// Temporal UI's workflow list can show it as a column: that list shows search attributes but not user metadata.
// Optional on an external Temporal: where it is not registered, workflows start without it (outbox-relay.ts).
export const KINDLING_SUMMARY = "KindlingSummary";

// Temporal's own type names (as `temporal operator search-attribute create --type` and `start-dev
// --search-attribute NAME=TYPE` spell them). Keyword: exact-match filtering on ids, no tokenisation.
export const KINDLING_SEARCH_ATTRIBUTES = [
  { name: KINDLING_TENANT_ID, type: "Keyword" },
  { name: KINDLING_DEFINITION_ID, type: "Keyword" },
  { name: KINDLING_MEMBER_ID, type: "Keyword" },
  // Keyword, not Text: shown and matched whole (no tokenising is wanted), and SQL visibility stores a Keyword as
  // VARCHAR(255), which the summary's 255-byte bound fits.
  { name: KINDLING_SUMMARY, type: "Keyword" },
] as const;

export type KindlingSearchAttributeName = (typeof KINDLING_SEARCH_ATTRIBUTES)[number]["name"];
