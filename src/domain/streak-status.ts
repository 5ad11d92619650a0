// Where a member streak stands; its own module so the chain (streak-chain.ts) and the display texts
// (display-templates.ts, which the rules validate) can share it without importing each other.
export type StreakStatus = "NOT_STARTED" | "IN_PROGRESS" | "COMPLETED" | "BROKEN";
