import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { extractZipEntry, listZipEntries } from "../../src/infra/zip-reader.ts";
import { writeZip } from "./fixtures/zip-writer.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kindling-zip-test-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const binary = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251));

it("lists entries and extracts stored and deflated ones byte for byte, executable", async () => {
  const zip = join(dir, "pkg.whl");
  await writeZip(zip, [
    { name: "pkg-1.0.dist-info/METADATA", data: "Name: pkg\n", method: "stored" },
    { name: "pkg-1.0.data/scripts/tool", data: binary, method: "deflated" },
  ]);
  expect((await listZipEntries(zip)).map((entry) => entry.name)).toEqual([
    "pkg-1.0.dist-info/METADATA",
    "pkg-1.0.data/scripts/tool",
  ]);

  const tool = join(dir, "tool");
  expect(await extractZipEntry(zip, (name) => name.endsWith("/scripts/tool"), tool)).toBe("pkg-1.0.data/scripts/tool");
  expect((await readFile(tool)).equals(binary)).toBe(true);
  expect((await stat(tool)).mode & 0o111).toBe(0o111);

  const metadata = join(dir, "METADATA");
  await extractZipEntry(zip, (name) => name.endsWith("METADATA"), metadata, 0o644);
  expect(await readFile(metadata, "utf8")).toBe("Name: pkg\n");
});

it("rejects a corrupted entry instead of writing a broken binary silently", async () => {
  const zip = join(dir, "pkg.whl");
  await writeZip(zip, [{ name: "pkg-1.0.data/scripts/tool", data: binary, method: "stored" }]);
  const bytes = await readFile(zip);
  const flipped = 30 + "pkg-1.0.data/scripts/tool".length + 1000;
  bytes.writeUInt8((bytes.readUInt8(flipped) ^ 0xff) & 0xff, flipped);
  await writeFile(zip, bytes);
  await expect(extractZipEntry(zip, () => true, join(dir, "tool"))).rejects.toThrow(/corrupt/);
});

it("says so when the file is not a zip or has no matching entry", async () => {
  const notZip = join(dir, "not.whl");
  await writeFile(notZip, "definitely not a zip archive");
  await expect(listZipEntries(notZip)).rejects.toThrow(/not a zip archive/);
  const zip = join(dir, "pkg.whl");
  await writeZip(zip, [{ name: "a", data: "a" }]);
  await expect(extractZipEntry(zip, (name) => name === "b", join(dir, "b"))).rejects.toThrow(/no matching entry/);
});
