import { resolveTemporalBinary, describeResolution, type TemporalBinarySource, type TemporalBinaryKind } from "./src/infra/temporal-binaries.ts";
const [kind, sources, cache] = process.argv.slice(2) as [TemporalBinaryKind, string, string];
const t0 = performance.now();
try {
  const r = await resolveTemporalBinary(kind, { env: { ...process.env, KINDLING_CACHE_DIR: cache }, sources: sources.split(",") as TemporalBinarySource[] });
  console.log(`${kind} ${sources}: ${describeResolution(r)}; wall ${Math.round(performance.now() - t0)} ms`);
} catch (e) { console.log(`${kind} ${sources}: FAILED after ${Math.round(performance.now() - t0)} ms: ${String(e)}`); }
