// CPU profiles of the API under a bench's load (BENCH_API_PROFILE=dir in bench/ingest.ts), and their summary by
// self time per function: where the API thread's time goes, as a flame graph would show it, in a few lines.
//
// The API runs in the bench's own process (one API process), so the profile is taken from inside it through the
// inspector, for one load phase at a time; the load generator is another process and is not in it. Sampling costs
// CPU too: a profiled phase's CPU per call is not a figure to compare (run the bench again without the knob).
//
// `node bench/cpu-profile.ts <file.cpuprofile> [top]` prints the summary of a saved profile.
import { Session } from "node:inspector/promises";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

/** The subset of V8's Profile (the .cpuprofile format) the summary reads. */
interface Profile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
    readonly children?: readonly number[];
  }[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

/** Starts sampling this thread every `intervalMicros`; the returned function stops and writes `<dir>/<name>.cpuprofile`. */
export async function startCpuProfile(dir: string, intervalMicros = 250): Promise<(name: string) => Promise<string>> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: intervalMicros });
  await session.post("Profiler.start");
  return async (name) => {
    const { profile } = await session.post("Profiler.stop");
    session.disconnect();
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    return file;
  };
}

export interface SelfTime {
  readonly name: string;
  readonly where: string;
  readonly micros: number;
  readonly share: number;
}

/** Where a function lives, shortened: `src/…:line`, a package name, or `node:…`. */
function placeOf(url: string, line: number): string {
  if (url === "") return "";
  const modules = url.lastIndexOf("/node_modules/");
  if (modules >= 0) {
    const rest = url.slice(modules + "/node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const src = url.search(/\/(src|bench|test)\//);
  return `${src >= 0 ? url.slice(src + 1) : url}:${line + 1}`;
}

/**
 * Self time per function (summed over every place it appears in the tree), largest first, with its share of all
 * samples. `(idle)` is the time the thread waited for I/O: shares are also given of the busy time (`busyShare`).
 */
export function selfTimes(profile: Profile): { total: number; busy: number; functions: SelfTime[]; byPlace: SelfTime[] } {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const perNode = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i] is the time before sample i; the sample's own weight is the time to the next one.
    const weight = profile.timeDeltas[i + 1] ?? 0;
    perNode.set(profile.samples[i]!, (perNode.get(profile.samples[i]!) ?? 0) + weight);
  }
  const functions = new Map<string, { name: string; where: string; micros: number }>();
  const places = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, micros] of perNode) {
    const frame = byNode.get(id)!.callFrame;
    const name = frame.functionName || "(anonymous)";
    const where = placeOf(frame.url, frame.lineNumber);
    const key = `${name}\u0000${where}`;
    const f = functions.get(key) ?? { name, where, micros: 0 };
    f.micros += micros;
    functions.set(key, f);
    const place = where === "" ? name : where.replace(/:\d+$/, "");
    places.set(place, (places.get(place) ?? 0) + micros);
    total += micros;
    if (name === "(idle)") idle += micros;
  }
  const busy = total - idle;
  const share = (m: number) => Math.round((m / Math.max(1, busy)) * 1000) / 10;
  return {
    total,
    busy,
    functions: [...functions.values()].filter((f) => f.name !== "(idle)").sort((a, b) => b.micros - a.micros).map((f) => ({ ...f, share: share(f.micros) })),
    byPlace: [...places].filter(([p]) => p !== "(idle)").sort((a, b) => b[1] - a[1]).map(([p, micros]) => ({ name: p, where: "", micros, share: share(micros) })),
  };
}

/** The summary as text: the top `top` functions and files/packages by self time, as a share of the busy time. */
export function summarise(profile: Profile, top = 30): string {
  const { total, busy, functions, byPlace } = selfTimes(profile);
  const line = (s: SelfTime) => `${s.share.toFixed(1).padStart(5)} %  ${(s.micros / 1000).toFixed(0).padStart(6)} ms  ${s.name}${s.where ? `  ${s.where}` : ""}`;
  return [
    `sampled ${(total / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(1)} s (${Math.round((busy / Math.max(1, total)) * 100)} %); shares are of the busy time`,
    `top functions by self time:`,
    ...functions.slice(0, top).map(line),
    `by file or package:`,
    ...byPlace.slice(0, top).map(line),
  ].join("\n");
}

if (import.meta.main) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    console.error("usage: node bench/cpu-profile.ts <file.cpuprofile> [top]");
    process.exit(2);
  }
  console.log(summarise(JSON.parse(readFileSync(file, "utf8")) as Profile, top ? Number(top) : 30));
}
