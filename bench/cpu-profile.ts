// CPU profiles of this process (the API runs in the bench's own process) around one load phase, and a summary of a
// .cpuprofile by self time per function.
//
//   BENCH_API_PROFILE=dir npm run bench   → dir/<phase>-<concurrency>-<round>.cpuprofile, one per measured phase
//   node bench/cpu-profile.ts file.cpuprofile [top] [module]   → the `top` (default 30) functions (or modules) by
//                                                               self time, with their share of the busy samples
// The profiler samples through node:inspector in-process; it costs some CPU itself, so CPU-per-call figures of a
// profiled run are not comparable with an unprofiled one.
import { Session } from "node:inspector/promises";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Starts sampling; the returned function stops and writes the profile to `dir/name.cpuprofile`. */
export async function startCpuProfile(dir: string, name: string): Promise<() => Promise<string>> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
  return async () => {
    const { profile } = await session.post("Profiler.stop");
    session.disconnect();
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    return file;
  };
}

/**
 * Self time per function (name + file:line), or per module (`by: "module"`: a package, a file of src/, or node's
 * internals), largest first, with each one's share of the busy samples: idle time and the profiler's own session
 * (node:inspector) are left out.
 */
export function summarise(profile: Profile, top = 30, by: "function" | "module" = "function"): { readonly name: string; readonly ms: number; readonly share: number }[] {
  const byNode = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byNode.get(profile.samples[i]!);
    const dt = profile.timeDeltas[i] ?? 0;
    if (!node) continue;
    const f = node.callFrame;
    if (f.functionName === "(idle)" || f.url === "node:inspector") continue;
    const file = f.url.replace(/^.*\/(node_modules|src)\//, "$1/");
    const module = file.startsWith("node_modules/")
      ? file.split("/").slice(0, file.startsWith("node_modules/@") ? 3 : 2).join("/")
      : file.startsWith("node:") ? "node: (internals)" : file || (f.functionName.startsWith("(") ? f.functionName : "(native)");
    const name = by === "module" ? module : `${f.functionName || "(anonymous)"} ${file ? `${file}:${f.lineNumber + 1}` : ""}`.trim();
    self.set(name, (self.get(name) ?? 0) + dt);
    total += dt;
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, share: Math.round((us / total) * 1000) / 10 }));
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file, top, by] = process.argv.slice(2);
  if (!file) {
    console.error("usage: node bench/cpu-profile.ts file.cpuprofile [top] [function|module]");
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  for (const row of summarise(profile, Number(top ?? 30), by === "module" ? "module" : "function")) {
    console.log(`${String(row.share).padStart(5)} %  ${String(row.ms).padStart(8)} ms  ${row.name}`);
  }
}
