// `npm run build:widget`: bundles web/ into web/dist/kindling-streak.js, the ES module the API serves at
// /widget/kindling-streak.js. Minified and reproducible — no timestamps, absolute paths or random names reach the
// output, so the same sources always give the same bytes; scripts/test.ts fails when the checked-in file is stale.
// `--out <file>` writes elsewhere (the staleness check builds a fresh copy to compare).
import { readFile } from "node:fs/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { base64Decode, base64Encode } from "@bufbuild/protobuf/wire";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { build, type Metafile, type Plugin } from "esbuild";
import { join } from "node:path";
import { parseArgs } from "node:util";

const root = join(import.meta.dirname, "..");
export const WIDGET_ENTRY = join(root, "web", "src", "index.ts");
export const WIDGET_BUNDLE = join(root, "web", "dist", "kindling-streak.js");

/**
 * The generated descriptors import buf/validate/validate.proto only for the field options protovalidate reads on
 * the server. The browser never validates (the server does, and answers INVALID_ARGUMENT), so the widget links a
 * descriptor of that file with its name and nothing else in place of the real one: 72 KB minified (about a fifth
 * of the bundle gzipped) less, and the kindling.v1 descriptors resolve exactly as before (their options stay
 * unparsed bytes, which nothing in the browser reads).
 */
const validateStub: Plugin = {
  name: "buf-validate-descriptor-stub",
  setup(b) {
    const proto = toBinary(FileDescriptorProtoSchema, create(FileDescriptorProtoSchema, { name: "buf/validate/validate.proto", package: "buf.validate", syntax: "proto2" }));
    b.onResolve({ filter: /^@bufbuild\/protovalidate\/gen\/buf\/validate\/validate_pb\.js$/ }, () => ({ path: "validate_pb.js", namespace: "validate-stub" }));
    b.onLoad({ filter: /.*/, namespace: "validate-stub" }, () => ({
      contents: `import { fileDesc } from "@bufbuild/protobuf/codegenv2";\nexport const file_buf_validate_validate = /*@__PURE__*/ fileDesc(${JSON.stringify(base64Encode(proto, "std_raw"))});\n`,
      resolveDir: root,
      loader: "js",
    }));
  },
};

/** Drops every unknown field (`$unknown`) anywhere in a decoded descriptor: the buf.validate extensions. */
function dropExtensions(value: unknown): void {
  if (Array.isArray(value)) {
    for (const item of value) dropExtensions(item);
  } else if (value !== null && typeof value === "object") {
    delete (value as { $unknown?: unknown }).$unknown;
    for (const child of Object.values(value)) dropExtensions(child);
  }
}

/**
 * The generated kindling descriptors carry protovalidate's rules (patterns, CEL expressions) as extensions of
 * their options. The widget links them without those extensions — standard options such as map_entry and the
 * methods' idempotency_level, which Connect needs for GET, are kept — so the browser does not download rules it
 * never runs.
 */
const descriptorsWithoutRules: Plugin = {
  name: "descriptors-without-validation-rules",
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]gen[\\/].*_pb\.js$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      const contents = source.replace(/fileDesc\("([A-Za-z0-9+/=]+)"/g, (_all, b64: string) => {
        const proto = fromBinary(FileDescriptorProtoSchema, base64Decode(b64));
        dropExtensions(proto);
        return `fileDesc(${JSON.stringify(base64Encode(toBinary(FileDescriptorProtoSchema, proto), "std_raw"))}`;
      });
      return { contents, loader: "js" };
    });
  },
};

/** Builds the bundle; returns esbuild's metafile (what each input contributes) for the bench's size report. */
export async function buildWidget(outfile = WIDGET_BUNDLE): Promise<Metafile> {
  const result = await build({
    metafile: true,
    entryPoints: [WIDGET_ENTRY],
    outfile,
    absWorkingDir: root,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022", "chrome109", "firefox115", "safari16"],
    minify: true,
    legalComments: "none",
    sourcemap: false,
    charset: "utf8",
    tsconfig: join(root, "web", "tsconfig.json"),
    logLevel: "warning",
    plugins: [validateStub, descriptorsWithoutRules],
  });
  return result.metafile;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: "string" } } });
  await buildWidget(values.out ?? WIDGET_BUNDLE);
}
