// eslint: the JavaScript and typescript-eslint recommended rules, with the type-aware ones
// (floating promises, unsafe any, ...), and @pulumi/eslint-plugin's rules, which need the
// types too: an Output in a plain template literal renders as a warning text, not its value
// (pulumi.interpolate is the way). eslint-config-prettier comes last: layout is prettier's.
import js from "@eslint/js";
import pulumi from "@pulumi/eslint-plugin";
import prettier from "eslint-config-prettier";
import { defineConfig, globalIgnores } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
    globalIgnores(["dist/", "bin/", "coverage/", "tests/fixtures/"]),
    js.configs.recommended,
    {
        files: ["**/*.ts"],
        extends: [tseslint.configs.recommendedTypeChecked],
        // the project's tsconfig, as `npm run typecheck` sees it (examples/composed imports
        // tunnelpair by name through its paths; the example's own tsconfig is a user's)
        languageOptions: { parserOptions: { project: "./tsconfig.json", tsconfigRootDir: import.meta.dirname } },
        plugins: { "@pulumi": pulumi },
        rules: {
            "@pulumi/no-output-in-template-literal": "error",
            "@pulumi/no-output-instance-in-template-literal": "error",
        },
    },
    {
        // The tests build stack configuration as raw, untyped YAML data (RawConfig,
        // tests/support/toy.ts) and break it on purpose, which is what validateConfig exists to
        // refuse: every access to it is "unsafe" by design, so those rules stop at tests/. (They
        // are then off too where the tests read untyped JSON, schemas and protobuf messages.)
        files: ["tests/**/*.ts"],
        rules: {
            "@typescript-eslint/no-unsafe-argument": "off",
            "@typescript-eslint/no-unsafe-assignment": "off",
            "@typescript-eslint/no-unsafe-call": "off",
            "@typescript-eslint/no-unsafe-member-access": "off",
            "@typescript-eslint/no-unsafe-return": "off",
        },
    },
    {
        // the build helper and jest's config: CommonJS that node runs as it is
        files: ["**/*.js"],
        languageOptions: { sourceType: "commonjs", globals: { require: "readonly", module: "writable", __dirname: "readonly" } },
    },
    prettier,
);
