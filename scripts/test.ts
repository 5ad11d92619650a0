// `npm test`: every check a change must pass, in the order that fails fastest.
//   1. generated code is what `buf generate` makes from proto/ (no stale src/gen)
//   1b. the widget bundle web/dist/kindling-streak.js is what `npm run build:widget` makes from web/ (no stale
//       bundle: the API serves the checked-in file)
//   2. `buf lint` (STANDARD) and `buf breaking` against main
//   3. `tsc --noEmit` over src, workers, scripts, bench and test
//   4. ESLint (typed rules, import boundaries)
//   5. vitest: the unit project (domain, with coverage of src/domain >= 95%) and the integration project
//      (real embedded PostgreSQL, real Temporal dev server and time-skipping server)
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = join(import.meta.dirname, "..");
const bin = (name: string) => join(root, "node_modules", ".bin", name);

function step(title: string, command: string, args: readonly string[]): void {
  const started = Date.now();
  process.stdout.write(`\n==> ${title}\n`);
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit", env: process.env });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (result.status !== 0) {
    process.stdout.write(`\n✗ ${title} failed after ${seconds}s\n`);
    process.exit(result.status ?? 1);
  }
  process.stdout.write(`✓ ${title} (${seconds}s)\n`);
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

function checkGeneratedCode(): void {
  const out = mkdtempSync(join(tmpdir(), "kindling-gen-"));
  try {
    step("buf generate (fresh copy)", bin("buf"), ["generate", "-o", out]);
    const fresh = join(out, "src", "gen");
    const committed = join(root, "src", "gen");
    const a = listFiles(fresh).map((f) => relative(fresh, f)).sort();
    const b = listFiles(committed).map((f) => relative(committed, f)).sort();
    const stale = a.filter((f) => !b.includes(f) || readFileSync(join(fresh, f), "utf8") !== readFileSync(join(committed, f), "utf8"));
    const extra = b.filter((f) => !a.includes(f));
    if (stale.length > 0 || extra.length > 0) {
      process.stdout.write(`src/gen is out of date (run \`npm run generate\`): ${[...stale, ...extra].join(", ")}\n`);
      process.exit(1);
    }
    process.stdout.write("✓ src/gen matches proto/\n");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function checkWidgetBundle(): void {
  const out = mkdtempSync(join(tmpdir(), "kindling-widget-"));
  try {
    const fresh = join(out, "kindling-streak.js");
    step("widget bundle (fresh build)", bin("node"), [join(root, "scripts", "build-widget.ts"), "--out", fresh]);
    const committed = join(root, "web", "dist", "kindling-streak.js");
    // A missing checked-in bundle counts as stale.
    const same = existsSync(committed) && readFileSync(fresh).equals(readFileSync(committed));
    if (!same) {
      process.stdout.write("web/dist/kindling-streak.js is out of date (run `npm run build:widget` and commit it)\n");
      process.exit(1);
    }
    process.stdout.write("✓ web/dist/kindling-streak.js matches web/\n");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function hasMainBranch(): boolean {
  return spawnSync("git", ["rev-parse", "--verify", "--quiet", "main"], { cwd: root }).status === 0;
}

checkGeneratedCode();
checkWidgetBundle();
step("buf lint", bin("buf"), ["lint"]);
if (hasMainBranch()) {
  step("buf breaking (against main)", bin("buf"), ["breaking", "--against", ".git#branch=main"]);
} else {
  process.stdout.write("\n(no local `main` branch: buf breaking skipped)\n");
}
step("tsc --noEmit", bin("tsc"), ["--noEmit", "-p", "tsconfig.json"]);
step("tsc --noEmit (web/)", bin("tsc"), ["--noEmit", "-p", join("web", "tsconfig.json")]);
step("eslint", bin("eslint"), ["--max-warnings=0", "."]);
step("vitest (unit + integration, coverage of src/domain)", bin("vitest"), ["run", "--coverage"]);
