// Sending the batched ingestor's statements: several in one round trip (simple query protocol), as session-level
// prepared statements or, without them, as plain SQL with literal values.
import { createHash } from "node:crypto";
import type { PoolClient, QueryResult } from "pg";
import { sqlLiteral } from "./sql-literal.ts";

/** A statement as plain SQL with its values as literals (batchMessage without prepared statements). */
function inlineParameters(statement: Statement): string {
  return statement.text.replace(/\$(\d+)/g, (_, n: string) => {
    if (Number(n) < 1 || Number(n) > statement.values.length) throw new Error(`inlineParameters: no value for $${n}`);
    return sqlLiteral(statement.values[Number(n) - 1]);
  });
}

/** A statement of a batch message: its text with `$n` parameters, their values, and their types (for PREPARE). */
export interface Statement {
  readonly text: string;
  readonly values: readonly unknown[];
  readonly types: readonly string[];
}

// The batch's statements are session-level prepared statements (SQL PREPARE, then EXECUTE with literal
// arguments), so each connection parses them once and PostgreSQL can settle on a generic plan instead of planning
// them for every batch (about 2 ms of server CPU per batch, mostly the write statement). Names are derived from
// the text. Which names a connection holds is tracked here; after a failed message it is read back from the
// server (preparedStatementsOf), since how far the message got before the error is unknown.
const statementNames = new Map<string, string>();
const preparedOn = new WeakMap<PoolClient, Set<string>>();
const PREPARED_PREFIX = "kindling_batch_";

/**
 * A prepared statement's name derived from its text: a changed text gets a new name by itself, so no connection
 * can hold an older text under the same name. Also names the batched progress read (batch-progress-reader.ts).
 */
export function hashedStatementName(prefix: string, text: string): string {
  return `${prefix}${createHash("sha256").update(text).digest("hex").slice(0, 20)}`;
}

/**
 * An array parameter of a prepared statement, read through an init plan: `(select $n::type[])`. PostgreSQL plans
 * a prepared statement's first five executions for their values, then keeps one generic plan only if it costs no
 * more than those did. A custom plan knows an array's length (a batch of one), the generic plan assumes ten
 * elements, so a statement over bare array parameters costs more generic and was planned again at every execution
 * (its planning cost more than running it). Behind an init plan no plan knows the length, both cost the same, and
 * the generic plan is kept (test/db/batch-plans.test.ts checks each statement's counts).
 */
export const arrayParameter = (n: number, type: string): string => `(select $${n}::${type}[])`;

function statementName(text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    name = hashedStatementName(PREPARED_PREFIX, text);
    statementNames.set(text, name);
  }
  return name;
}

/** Reads back which of this module's statements the connection holds (after a message failed part way). */
export async function preparedStatementsOf(client: PoolClient): Promise<void> {
  const { rows } = await client.query<{ name: string }>("select name from pg_prepared_statements where starts_with(name, $1)", [PREPARED_PREFIX]);
  preparedOn.set(client, new Set(rows.map((r) => r.name)));
}

/**
 * Several statements in one round trip (simple query protocol): plain SQL strings, and Statements sent as
 * EXECUTE of a prepared statement (PREPAREd first where this connection lacks it). One result per part.
 */
export async function batchMessage(client: PoolClient, parts: readonly (string | Statement)[], prepared: boolean): Promise<QueryResult[]> {
  const held = preparedOn.get(client) ?? new Set<string>();
  const sql: string[] = [];
  const resultAt: number[] = [];
  const preparing: string[] = [];
  for (const part of parts) {
    if (typeof part === "string") {
      resultAt.push(sql.push(part) - 1);
      continue;
    }
    if (!prepared) {
      resultAt.push(sql.push(inlineParameters(part)) - 1);
      continue;
    }
    const name = statementName(part.text);
    if (!held.has(name) && !preparing.includes(name)) {
      sql.push(`prepare ${name}(${part.types.join(", ")}) as ${part.text}`);
      preparing.push(name);
    }
    resultAt.push(sql.push(`execute ${name}(${part.values.map(sqlLiteral).join(", ")})`) - 1);
  }
  const result = (await client.query(sql.join(";\n"))) as unknown as QueryResult | QueryResult[];
  for (const name of preparing) held.add(name);
  preparedOn.set(client, held);
  const results = Array.isArray(result) ? result : [result];
  return resultAt.map((k) => results[k]!);
}
