// HPACK (RFC 7541) for src/api/h2/connection.ts: a decoder of request header blocks with its dynamic table, and an
// encoder of response header blocks that never indexes (literal fields, static-table names), so the client's
// decoding table is never touched by anything this server sends. The static table and the Huffman code are the
// RFC's data, taken from the `hpack.js` package; the decoding is ours.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const STATIC: readonly { readonly name: string; readonly value: string }[] = (require("hpack.js/lib/hpack/static-table.js") as { table: { name: string; value: string }[] }).table;
/** Huffman code per symbol (0–255, 256 the end of string): [bit length, code]. */
const HUFFMAN: readonly (readonly [number, number])[] = (require("hpack.js/lib/hpack/huffman.js") as { encode: [number, number][] }).encode;

/** A header block that cannot be decoded: the connection's decoding state is lost (COMPRESSION_ERROR). */
export class HpackError extends Error {}

/** The Huffman code as a binary trie: node n's children at 2n and 2n + 1; a leaf holds -(symbol + 1). */
const TRIE = (() => {
  const next = new Int32Array(2 * 2 * 257);
  let nodes = 1;
  for (let symbol = 0; symbol < HUFFMAN.length; symbol++) {
    const [bits, code] = HUFFMAN[symbol]!;
    let node = 0;
    for (let b = bits - 1; b >= 0; b--) {
      const slot = 2 * node + ((code >>> b) & 1);
      if (b === 0) next[slot] = -(symbol + 1);
      else {
        if (next[slot] === 0) next[slot] = nodes++;
        node = next[slot]!;
      }
    }
  }
  return next;
})();

function huffmanDecode(bytes: Buffer, start: number, end: number): string {
  const out = Buffer.allocUnsafe((end - start) * 2);
  let n = 0;
  let node = 0;
  // Bits since the last symbol, and whether they were all ones: what may end a string is at most 7 bits of the
  // end-of-string code's prefix (all ones).
  let pending = 0;
  let ones = true;
  for (let i = start; i < end; i++) {
    const byte = bytes[i]!;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >>> b) & 1;
      const child = TRIE[2 * node + bit]!;
      pending++;
      ones &&= bit === 1;
      if (child < 0) {
        const symbol = -child - 1;
        if (symbol === 256) throw new HpackError("Huffman string holds the end-of-string code");
        out[n++] = symbol;
        node = 0;
        pending = 0;
        ones = true;
      } else if (child === 0) throw new HpackError("invalid Huffman code");
      else node = child;
    }
  }
  if (pending > 7 || !ones) throw new HpackError("invalid Huffman padding");
  return out.toString("latin1", 0, n);
}

const ENTRY_OVERHEAD = 32;

/**
 * Decodes the header blocks of one connection, in order (HPACK's dynamic table lives as long as the connection).
 * Names and values are Latin-1 strings, as Node's HTTP/2 gives them.
 */
export class HpackDecoder {
  /** Newest first. */
  private readonly table: { name: string; value: string }[] = [];
  private size = 0;
  private capacity: number;
  private readonly maxTableSize: number;

  /** `maxTableSize`: the SETTINGS_HEADER_TABLE_SIZE this side announced (the most the encoder may use). */
  constructor(maxTableSize = 4096) {
    this.maxTableSize = maxTableSize;
    this.capacity = maxTableSize;
  }

  /**
   * Calls `field` for each field of the block, in order. Throws HpackError for a block that breaks the format, or
   * one whose fields add up to more than `maxListBytes` (names + values + 32 each, as SETTINGS_MAX_HEADER_LIST_SIZE
   * counts them) — after decoding all of it, so the table stays in step with the client's.
   */
  decode(block: Buffer, field: (name: string, value: string) => void, maxListBytes: number): boolean {
    let p = 0;
    let listBytes = 0;
    let fieldsSeen = false;
    const integer = (prefixBits: number): number => {
      const max = (1 << prefixBits) - 1;
      let value = block[p++]! & max;
      if (value < max) return value;
      let shift = 0;
      for (;;) {
        if (p >= block.length) throw new HpackError("truncated integer");
        const byte = block[p++]!;
        value += (byte & 0x7f) * 2 ** shift;
        shift += 7;
        if ((byte & 0x80) === 0) break;
        if (shift > 28) throw new HpackError("integer too large");
      }
      return value;
    };
    const string = (): string => {
      if (p >= block.length) throw new HpackError("truncated string");
      const huffman = (block[p]! & 0x80) !== 0;
      const length = integer(7);
      const end = p + length;
      if (end > block.length) throw new HpackError("truncated string");
      const text = huffman ? huffmanDecode(block, p, end) : block.toString("latin1", p, end);
      p = end;
      return text;
    };
    const entry = (index: number): { name: string; value: string } => {
      if (index === 0) throw new HpackError("index 0");
      if (index <= STATIC.length) return STATIC[index - 1]!;
      const dynamic = this.table[index - STATIC.length - 1];
      if (dynamic === undefined) throw new HpackError(`index ${index} is past the table`);
      return dynamic;
    };
    let tooLarge = false;
    const emit = (name: string, value: string) => {
      fieldsSeen = true;
      listBytes += name.length + value.length + ENTRY_OVERHEAD;
      if (listBytes > maxListBytes) tooLarge = true;
      if (!tooLarge) field(name, value);
    };
    while (p < block.length) {
      const byte = block[p]!;
      if (byte & 0x80) {
        const { name, value } = entry(integer(7));
        emit(name, value);
      } else if (byte & 0x40) {
        const index = integer(6);
        const name = index === 0 ? string() : entry(index).name;
        const value = string();
        this.add(name, value);
        emit(name, value);
      } else if (byte & 0x20) {
        // A dynamic table size update: only before the block's first field, and within what was announced.
        if (fieldsSeen) throw new HpackError("table size update after a field");
        const size = integer(5);
        if (size > this.maxTableSize) throw new HpackError("table size update above the announced maximum");
        this.capacity = size;
        this.evict(0);
      } else {
        // Literal without indexing (0000) or never indexed (0001): the same to a decoder.
        const index = integer(4);
        const name = index === 0 ? string() : entry(index).name;
        emit(name, string());
      }
    }
    return !tooLarge;
  }

  private add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.evict(size);
    if (size > this.capacity) return;
    this.table.unshift({ name, value });
    this.size += size;
  }

  /** Drops the oldest entries until `room` more bytes fit. */
  private evict(room: number): void {
    while (this.table.length > 0 && this.size + room > this.capacity) {
      const last = this.table.pop()!;
      this.size -= last.name.length + last.value.length + ENTRY_OVERHEAD;
    }
  }
}

/** Static-table index of each name (its first entry), for the encoder. */
const NAME_INDEX = new Map<string, number>();
STATIC.forEach((e, i) => {
  if (!NAME_INDEX.has(e.name)) NAME_INDEX.set(e.name, i + 1);
});
/** `:status` values with an entry of their own. */
const STATUS_INDEX = new Map<string, number>();
STATIC.forEach((e, i) => {
  if (e.name === ":status") STATUS_INDEX.set(e.value, i + 1);
});

function writeInteger(out: number[], value: number, prefixBits: number, pattern: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(pattern | value);
    return;
  }
  out.push(pattern | max);
  value -= max;
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

function writeString(out: number[], text: string): void {
  writeInteger(out, text.length, 7, 0);
  for (let i = 0; i < text.length; i++) out.push(text.charCodeAt(i) & 0xff);
}

/**
 * A response header block: `:status` first, then each field as a literal without indexing (so this side keeps no
 * table and the client's never changes), names from the static table where it has them, no Huffman coding.
 * Values that are arrays become one field each. Names must already be lower case, values valid field values.
 */
export function encodeHeaderBlock(status: number | undefined, headers: Readonly<Record<string, string | number | readonly string[] | undefined>>): Buffer {
  const out: number[] = [];
  if (status !== undefined) {
    const text = String(status);
    const indexed = STATUS_INDEX.get(text);
    if (indexed !== undefined) out.push(0x80 | indexed);
    else {
      writeInteger(out, NAME_INDEX.get(":status")!, 4, 0);
      writeString(out, text);
    }
  }
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name === ":status") continue;
    const index = NAME_INDEX.get(name);
    for (const one of Array.isArray(value) ? value : [String(value)]) {
      if (index !== undefined) writeInteger(out, index, 4, 0);
      else {
        out.push(0);
        writeString(out, name);
      }
      writeString(out, one);
    }
  }
  return Buffer.from(out);
}
