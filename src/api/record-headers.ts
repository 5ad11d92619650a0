// Web Headers over a plain header record, for the unary gRPC path (src/api/grpc-unary.ts): a call's request
// headers as Node parsed them, and its response headers and trailers as they start. Building web Headers entry by
// entry (each append validates and normalises its name and value) and reading them back in sorted order was ≈4 %
// of a progress read's CPU, while a call usually only asks for a few request headers by name and changes neither
// its response headers nor its trailers.
//
// So `get` and `has` answer from the record, exactly as the Headers would; any other use (a write, an iteration)
// first copies the record into the Headers' own list, after which they are ordinary Headers. `untouched` gives the
// record back while that has not happened, so the path can write it to the stream as it is.

export type HeaderRecord = Readonly<Record<string, string | string[] | undefined>>;

/** A header name Headers accepts (an HTTP token); anything else is left to Headers, which throws for it. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What Headers strips from both ends of a value: HTTP whitespace (tab, line feed, carriage return, space). */
const EDGE_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

type EntryIterator = ReturnType<Headers["entries"]>;
type StringIterator = ReturnType<Headers["keys"]>;

/** Headers' methods, typed as methods: its declaration types them as properties, which a subclass cannot override. */
interface HeadersMethods {
  append(name: string, value: string): void;
  delete(name: string): void;
  get(name: string): string | null;
  getSetCookie(): string[];
  has(name: string): boolean;
  set(name: string, value: string): void;
  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void;
  entries(): EntryIterator;
  keys(): StringIterator;
  values(): StringIterator;
  [Symbol.iterator](): EntryIterator;
}
const HeadersBase = Headers as unknown as new () => HeadersMethods;

export class RecordHeaders extends HeadersBase {
  #record: HeaderRecord | undefined;

  /** Entries whose name starts with ":" (HTTP/2 pseudo-headers) are not headers and are left out. */
  constructor(record: HeaderRecord) {
    super();
    this.#record = record;
  }

  /** The record these headers still are (never written nor iterated), or undefined once they are their own. */
  get untouched(): HeaderRecord | undefined {
    return this.#record;
  }

  #own(): void {
    const record = this.#record;
    if (record === undefined) return;
    this.#record = undefined;
    for (const key in record) {
      if (key.charCodeAt(0) === 58 /* ":" */ || !Object.hasOwn(record, key)) continue;
      const value = record[key];
      if (value === undefined) continue;
      if (typeof value === "string") super.append(key, value);
      else for (const v of value) super.append(key, v);
    }
  }

  override get(name: string): string | null {
    const record = this.#record;
    if (record === undefined || !TOKEN.test(name)) {
      this.#own();
      return super.get(name);
    }
    const key = name.toLowerCase();
    // Own entries only: a record that is a plain object inherits "toString", "constructor"… which are no headers.
    const value = Object.hasOwn(record, key) ? record[key] : undefined;
    if (value === undefined) return null;
    return typeof value === "string" ? value.replace(EDGE_WHITESPACE, "") : value.map((v) => v.replace(EDGE_WHITESPACE, "")).join(", ");
  }

  override has(name: string): boolean {
    const record = this.#record;
    if (record === undefined || !TOKEN.test(name)) {
      this.#own();
      return super.has(name);
    }
    const key = name.toLowerCase();
    return Object.hasOwn(record, key) && record[key] !== undefined;
  }

  override append(name: string, value: string): void {
    this.#own();
    super.append(name, value);
  }

  override set(name: string, value: string): void {
    this.#own();
    super.set(name, value);
  }

  override delete(name: string): void {
    this.#own();
    super.delete(name);
  }

  override getSetCookie(): string[] {
    this.#own();
    return super.getSetCookie();
  }

  override forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    this.#own();
    super.forEach(callback, thisArg);
  }

  override entries(): EntryIterator {
    this.#own();
    return super.entries();
  }

  override keys(): StringIterator {
    this.#own();
    return super.keys();
  }

  override values(): StringIterator {
    this.#own();
    return super.values();
  }

  override [Symbol.iterator](): EntryIterator {
    return this.entries();
  }
}
