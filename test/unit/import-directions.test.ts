// Imports point down (README "Where things live"): the engine never imports the API, src/db imports neither the
// engine nor the API, and src/domain has no import cycle. Read from the source text, so a new import that breaks
// a rule fails here rather than in review.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Every .ts file under src/ (but generated code) with the repo-relative files it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const specifier = /(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)|(?:^|\n)\s*import\s*["']([^"']+)["']/g;
  for (const entry of readdirSync(join(root, "src"), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
    const file = relative(root, join(entry.parentPath, entry.name));
    if (file.startsWith(join("src", "gen"))) continue;
    const text = readFileSync(join(root, file), "utf8");
    const targets: string[] = [];
    for (const m of text.matchAll(specifier)) {
      const spec = m[1] ?? m[2] ?? m[3] ?? "";
      if (spec.startsWith(".")) targets.push(normalize(join(dirname(file), spec)));
    }
    graph.set(file, targets);
  }
  return graph;
}

const within = (file: string, folder: string) => file.startsWith(join(...folder.split("/")) + "/");

function importsAcross(graph: Map<string, string[]>, from: string, to: string): string[] {
  return [...graph].flatMap(([file, targets]) => (within(file, from) ? targets.filter((t) => within(t, to)).map((t) => `${file} -> ${t}`) : []));
}

/** Every import cycle among the files under `folder` (strongly connected components of more than one file). */
function cycles(graph: Map<string, string[]>, folder: string): string[][] {
  const nodes = [...graph.keys()].filter((f) => within(f, folder));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    for (const w of graph.get(v) ?? []) {
      if (!within(w, folder) || !graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      for (let w = stack.pop(); w !== undefined; w = w === v ? undefined : stack.pop()) component.push(w);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(component.sort());
    }
  };
  for (const v of nodes) if (!index.has(v)) visit(v);
  return out;
}

describe("import directions", () => {
  const graph = importGraph();

  it("import_directions/engine_never_imports_the_api", () => {
    expect(importsAcross(graph, "src/engine", "src/api")).toEqual([]);
  });

  it("import_directions/db_imports_neither_the_engine_nor_the_api", () => {
    expect([...importsAcross(graph, "src/db", "src/engine"), ...importsAcross(graph, "src/db", "src/api")]).toEqual([]);
  });

  it("import_directions/domain_has_no_import_cycle", () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(cycles(graph, "src/domain")).toEqual([]);
  });
});
