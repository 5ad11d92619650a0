// ExportMember: everything the coverage map lists about one member, as one JSON document written piece by piece.
// Read in one REPEATABLE READ, READ ONLY transaction, so the document is one consistent snapshot even while the
// member keeps checking in; each table is read through a cursor, FETCH_ROWS rows at a time, and the text is cut
// into pieces of at most CHUNK_BYTES, so memory stays bounded whatever the member's history.
import type { Pool, PoolClient } from "pg";
import { notFoundError } from "../engine-error.ts";
import { MEMBER_DATA, memberRowsSql } from "./coverage.ts";

export const EXPORT_FORMAT = "kindling.member_export.v1";
const CHUNK_BYTES = 64 * 1024;
const FETCH_ROWS = 500;

/** Cuts a text written in small strings into byte pieces of exactly `size` (the last one shorter). */
function createChunker(size: number) {
  let parts: Buffer[] = [];
  let length = 0;
  return {
    /** Appends `text`; returns the pieces that became full. */
    push(text: string): Buffer[] {
      parts.push(Buffer.from(text, "utf8"));
      length += parts[parts.length - 1]!.length;
      if (length < size) return [];
      const all = Buffer.concat(parts);
      const full: Buffer[] = [];
      let at = 0;
      for (; all.length - at >= size; at += size) full.push(all.subarray(at, at + size));
      parts = at < all.length ? [all.subarray(at)] : [];
      length = all.length - at;
      return full;
    },
    rest(): Buffer[] {
      return length > 0 ? [Buffer.concat(parts)] : [];
    },
  };
}

async function findMember(client: PoolClient, tenantId: string, externalId: string): Promise<string> {
  const { rows } = await client.query<{ id: string }>("select id from member where tenant_id = $1 and external_id = $2", [tenantId, externalId]);
  if (!rows[0]) throw notFoundError("member", { member_external_id: externalId });
  return rows[0].id;
}

/**
 * The export document of one member, as byte pieces. The member is looked up before the first piece, so a
 * missing member is a NOT_FOUND error, not an empty stream. `signal` stops the reading (the client went away).
 */
export async function* exportMember(pool: Pool, tenantId: string, externalId: string, now: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const client = await pool.connect();
  let open = false;
  try {
    await client.query("begin isolation level repeatable read read only");
    open = true;
    const memberId = await findMember(client, tenantId, externalId);
    const params = [tenantId, memberId, externalId];
    const chunker = createChunker(CHUNK_BYTES);
    const head = { format: EXPORT_FORMAT, export_time: new Date(now).toISOString(), tenant_id: tenantId, member_external_id: externalId };
    yield* chunker.push(`${JSON.stringify(head).slice(0, -1)},"tables":{`);
    for (const [i, entry] of MEMBER_DATA.entries()) {
      yield* chunker.push(`${i > 0 ? "," : ""}${JSON.stringify(entry.table)}:[`);
      // The table name and conditions come from the coverage map (code), never from the request.
      await client.query(`declare member_rows no scroll cursor for ${memberRowsSql(entry, "select row_to_json(t)::text as row from", entry.order ? ` order by ${entry.order}` : "")}`, params);
      let first = true;
      for (;;) {
        if (signal?.aborted) return;
        const { rows } = await client.query<{ row: string }>(`fetch ${FETCH_ROWS} from member_rows`);
        for (const { row } of rows) {
          yield* chunker.push(first ? row : `,${row}`);
          first = false;
        }
        if (rows.length < FETCH_ROWS) break;
      }
      await client.query("close member_rows");
      yield* chunker.push("]");
    }
    yield* chunker.push("}}");
    yield* chunker.rest();
  } finally {
    if (open) await client.query("rollback").catch(() => undefined);
    client.release();
  }
}
