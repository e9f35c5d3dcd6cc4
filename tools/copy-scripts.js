// The package's build, after tsc: render.ts reads its shell runtime from its own folder, so
// every .sh under components/ goes beside the compiled JavaScript in dist/, at the same path.
const fs = require("fs");
const path = require("path");
const src = path.join(__dirname, "..", "components");
const out = path.join(__dirname, "..", "dist");
for (const rel of fs.readdirSync(src, { recursive: true })) {
    if (!rel.endsWith(".sh")) continue;
    fs.mkdirSync(path.dirname(path.join(out, rel)), { recursive: true });
    fs.copyFileSync(path.join(src, rel), path.join(out, rel));
}
