import { resolveTemporalBinary, describeResolution, type TemporalBinarySource, type TemporalBinaryKind } from "./src/infra/temporal-binaries.ts";
const [kind, sources, cache] = process.argv.slice(2) as [TemporalBinaryKind, string, string];
const logger = { info: (f: object, m?: string) => console.log("I", m, JSON.stringify(f)), warn: console.warn, error: console.error };
try {
  const r = await resolveTemporalBinary(kind, { env: { ...process.env, KINDLING_CACHE_DIR: cache }, sources: sources.split(",") as TemporalBinarySource[], logger });
  console.log(describeResolution(r));
} catch (e) { console.log(String(e)); }
