// A CPU profile of this process's main thread over one load phase (the benches run the API in-process), for
// finding where an RPC's CPU goes: written as a .cpuprofile (Chrome DevTools, speedscope) and summarised by self
// time per function. Opt-in (BENCH_API_PROFILE=<dir> in the benches that use it): the sampler itself costs CPU,
// so a profiled phase's calls/s and CPU per call are not comparable with an unprofiled one.
import { Session } from "node:inspector/promises";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

export interface SelfTime {
  readonly fn: string;
  readonly percent: number;
}

/** Starts sampling every `intervalMicros`; the returned function stops, writes `<dir>/<name>.cpuprofile` and summarises it. */
export async function startCpuProfile(intervalMicros = 200): Promise<(dir: string, name: string) => Promise<SelfTime[]>> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: intervalMicros });
  await session.post("Profiler.start");
  return async (dir, name) => {
    const { profile } = (await session.post("Profiler.stop")) as { profile: Profile };
    session.disconnect();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    return [...selfTimes(profile), ...selfTimes(profile, 12, "file").map((t) => ({ fn: `[file] ${t.fn}`, percent: t.percent }))];
  };
}

/** Self time per function (name, file and line) or per file (a package's files as one), largest first, as a share of all samples (idle included). */
export function selfTimes(profile: Profile, top = 30, by: "function" | "file" = "function"): SelfTime[] {
  const byNode = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const hits = new Map<number, number>();
  if (profile.samples) for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  else for (const n of profile.nodes) hits.set(n.id, n.hitCount ?? 0);
  const total = [...hits.values()].reduce((a, b) => a + b, 0) || 1;
  const byFn = new Map<string, number>();
  for (const [id, n] of hits) {
    const frame = byNode.get(id)!.callFrame;
    const where = frame.url ? `${relative(process.cwd(), frame.url.replace(/^file:\/\//, ""))}:${frame.lineNumber + 1}` : "";
    const file = frame.url ? relative(process.cwd(), frame.url.replace(/^file:\/\//, "")).replace(/^.*node_modules\/((@[^/]+\/)?[^/]+).*$/, "$1") : `(${frame.functionName || "native"})`;
    const fn = by === "file" ? file : `${frame.functionName || "(anonymous)"}${where ? ` ${where}` : ""}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + n);
  }
  return [...byFn.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, n]) => ({ fn, percent: Math.round((1000 * n) / total) / 10 }));
}
