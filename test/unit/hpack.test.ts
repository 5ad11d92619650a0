// HPACK as src/api/h2/hpack.ts decodes and encodes it: RFC 7541's own request examples (Appendix C.4, Huffman-coded,
// one dynamic table across three blocks), malformed blocks refused, the header list limit, and response blocks
// that decode to what was encoded without touching the decoder's table.
import { describe, expect, it } from "vitest";
import { encodeHeaderBlock, HpackDecoder, HpackError } from "../../src/api/h2/hpack.ts";

function decode(decoder: HpackDecoder, hex: string, limit = 65_536): { fields: [string, string][]; complete: boolean } {
  const fields: [string, string][] = [];
  const complete = decoder.decode(Buffer.from(hex, "hex"), (name, value) => fields.push([name, value]), limit);
  return { fields, complete };
}

describe("HPACK", () => {
  it("hpack/decodes_rfc_7541_c4_requests_with_one_table", () => {
    const decoder = new HpackDecoder();
    expect(decode(decoder, "828684418cf1e3c2e5f23a6ba0ab90f4ff").fields).toEqual([[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]]);
    // The second and third blocks refer to entries the earlier ones added.
    expect(decode(decoder, "828684be5886a8eb10649cbf").fields).toEqual([[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"], ["cache-control", "no-cache"]]);
    expect(decode(decoder, "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf").fields).toEqual([
      [":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], ["custom-key", "custom-value"],
    ]);
  });

  it("hpack/refuses_malformed_blocks", () => {
    // An index past both tables; a truncated string; a table size update above the announced 4096; one after a field;
    // Huffman padding that is not all ones.
    for (const hex of ["be", "4188f1e3", "3fe21f", "823f01", "4181fe"]) {
      expect(() => decode(new HpackDecoder(), hex), hex).toThrow(HpackError);
    }
  });

  it("hpack/a_list_over_the_limit_is_decoded_but_not_delivered", () => {
    const decoder = new HpackDecoder();
    // custom-key: custom-value, added to the table (incremental indexing), over a 40-byte limit.
    const over = decode(decoder, "400a637573746f6d2d6b65790c637573746f6d2d76616c7565", 40);
    expect(over.complete).toBe(false);
    expect(over.fields).toEqual([]);
    // The table still took the entry, as the client's did: the next block can refer to it.
    expect(decode(decoder, "be").fields).toEqual([["custom-key", "custom-value"]]);
  });

  it("hpack/response_blocks_decode_to_what_was_encoded_and_leave_the_table_alone", () => {
    const decoder = new HpackDecoder();
    const block = encodeHeaderBlock(200, { "content-type": "application/grpc+proto", "set-cookie": ["a=1", "b=2"], "x-long": "v".repeat(300) });
    expect(decode(decoder, block.toString("hex")).fields).toEqual([
      [":status", "200"], ["content-type", "application/grpc+proto"], ["set-cookie", "a=1"], ["set-cookie", "b=2"], ["x-long", "v".repeat(300)],
    ]);
    expect(decode(decoder, encodeHeaderBlock(418, { "grpc-status": "0" }).toString("hex")).fields).toEqual([[":status", "418"], ["grpc-status", "0"]]);
    // Nothing was added to the table: index 62 (the first dynamic entry) is still past it.
    expect(() => decode(decoder, "be")).toThrow(HpackError);
  });
});
