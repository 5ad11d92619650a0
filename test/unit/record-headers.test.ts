import { describe, expect, it } from "vitest";
import { RecordHeaders, type HeaderRecord } from "../../src/api/record-headers.ts";

/** The Headers a record stands for, built entry by entry as before (pseudo-headers left out). */
function plain(record: HeaderRecord): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(record)) {
    if (key.startsWith(":") || value === undefined) continue;
    for (const v of typeof value === "string" ? [value] : value) headers.append(key, v);
  }
  return headers;
}

const RECORD: HeaderRecord = {
  ":path": "/kindling.v1.MemberStreakService/GetMemberStreak",
  ":authority": "localhost",
  "content-type": "application/grpc",
  apikey: "key-1",
  secretkey: "  padded\t",
  "set-cookie": ["a=1", " b=2 "],
  "grpc-timeout": "5S",
  empty: "",
  absent: undefined,
};

// RECORD is a plain object: names it inherits ("constructor", "__proto__") are no headers of it.
const NAMES = ["content-type", "Content-Type", "APIKEY", "secretkey", "set-cookie", "grpc-timeout", "empty", "absent", "missing", ":path", "bad name", "",
  "constructor", "__proto__", "toString"];

/** What a read answers, or the error it throws. */
function outcome(read: () => unknown): unknown {
  try {
    return { value: read() };
  } catch (error) {
    return { threw: (error as Error).name };
  }
}

describe("RecordHeaders", () => {
  it("record_headers/get_and_has_answer_as_headers_built_from_the_record", () => {
    const expected = plain(RECORD);
    for (const name of NAMES) {
      // Fresh ones for each name: an invalid name makes them copy the record, after which they are plain Headers.
      expect(outcome(() => new RecordHeaders(RECORD).get(name)), `get(${JSON.stringify(name)})`).toEqual(outcome(() => expected.get(name)));
      expect(outcome(() => new RecordHeaders(RECORD).has(name)), `has(${JSON.stringify(name)})`).toEqual(outcome(() => expected.has(name)));
    }
  });

  it("record_headers/untouched_until_written_or_iterated_then_ordinary_headers", () => {
    const read = new RecordHeaders(RECORD);
    read.get("apikey");
    read.has("grpc-timeout");
    expect(read.untouched).toBe(RECORD);

    const iterated = new RecordHeaders(RECORD);
    expect([...iterated]).toEqual([...plain(RECORD)]);
    expect(iterated.untouched).toBeUndefined();

    const seen: [string, string][] = [];
    new RecordHeaders(RECORD).forEach((value, key) => seen.push([key, value]));
    expect(seen).toEqual([...plain(RECORD).entries()]);

    const written = new RecordHeaders({ "grpc-status": "0" });
    written.set("grpc-status", "13");
    written.append("grpc-message", "boom");
    expect(written.untouched).toBeUndefined();
    expect([...written.entries()]).toEqual([["grpc-message", "boom"], ["grpc-status", "13"]]);
    written.delete("grpc-message");
    expect(written.get("grpc-message")).toBeNull();
    expect(written.has("grpc-status")).toBe(true);

    const cookies = new RecordHeaders(RECORD);
    expect(cookies.getSetCookie()).toEqual(plain(RECORD).getSetCookie());
    expect([...new RecordHeaders(RECORD).keys()]).toEqual([...plain(RECORD).keys()]);
    expect([...new RecordHeaders(RECORD).values()]).toEqual([...plain(RECORD).values()]);
  });

  it("record_headers/are_headers_for_code_that_copies_them", () => {
    const lazy = new RecordHeaders(RECORD);
    expect(lazy).toBeInstanceOf(Headers);
    expect([...new Headers(lazy)]).toEqual([...plain(RECORD)]);
    // A record changed after these headers were made is not theirs to follow once they own their entries.
    const record: Record<string, string> = { a: "1" };
    const owned = new RecordHeaders(record);
    owned.set("b", "2");
    record["a"] = "changed";
    expect(owned.get("a")).toBe("1");
  });
});
