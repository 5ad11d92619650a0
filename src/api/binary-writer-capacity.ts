// protobuf-es's BinaryWriter (the one `toBinary` makes for every response connect-node encodes: Connect and gRPC-Web
// answers, and the unary gRPC path's few answers ./binary-encoder.ts leaves to toBinary) starts at 128 bytes and doubles as it
// writes, so a progress answer of ~1 KiB goes through buffers of 128, 256, 512, 1024 and 2048 bytes, each zeroed
// and each copy of the last. That was ~5 µs of a ~175 µs GetMemberStreak (bench/ingest.ts, CPU per call), for
// nothing: `finish()` copies the written bytes out anyway, so a larger first buffer costs one allocation.
//
// toBinary takes no writer and no size hint, so the first allocation is set on the class: `ensureCapacity` is
// what every write calls before it touches the buffer, and an empty buffer means the writer has not written yet.
// The library is pinned (package.json); `installed` reports false — and nothing is changed — if a later version
// no longer has the method, and test/unit/binary-writer-capacity.test.ts fails then, so the change is not lost
// silently.
import { BinaryWriter } from "@bufbuild/protobuf/wire";

/** The first buffer of every writer: the size of a progress answer with room to spare. */
export const FIRST_WRITER_BYTES = 2048;

interface WriterInternals {
  buffer: Uint8Array;
  ensureCapacity: (this: WriterInternals, size: number) => void;
}

let installed: boolean | undefined;

/** Makes every BinaryWriter start with FIRST_WRITER_BYTES. Idempotent; true when in effect. */
export function presizeBinaryWriters(): boolean {
  if (installed !== undefined) return installed;
  const prototype = BinaryWriter.prototype as unknown as WriterInternals;
  const grow = prototype.ensureCapacity;
  if (typeof grow !== "function") return (installed = false);
  prototype.ensureCapacity = function ensureCapacity(this: WriterInternals, size: number): void {
    if (this.buffer.length === 0) this.buffer = new Uint8Array(Math.max(FIRST_WRITER_BYTES, size));
    grow.call(this, size);
  };
  return (installed = true);
}
