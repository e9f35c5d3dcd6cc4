// Issue 12, item 3: `npm pack` yields a package of compiled JavaScript and declarations (and
// the shell runtime beside them), which a program of a user's own installs from the tarball
// next to its own @pulumi/pulumi, type-checks against and runs: the Commands it registers.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const root = path.join(__dirname, "..");
jest.setTimeout(240_000);

describe("the npm package", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunnelpair-pack-"));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    let tarball = "";

    it("packs compiled JavaScript, declarations and the shell runtime, nothing else", () => {
        const out = execFileSync("npm", ["pack", "--json", "--pack-destination", dir], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
        const [info] = JSON.parse(out.slice(out.indexOf("["))) as { filename: string; files: { path: string }[] }[];
        tarball = path.join(dir, info.filename);
        const files = info.files.map((f) => f.path).sort();
        expect(files).toEqual(
            expect.arrayContaining(["package.json", "README.md", "dist/index.js", "dist/index.d.ts", "dist/tunnelPair.js", "dist/args.d.ts", "dist/verify.sh"]),
        );
        expect(files.filter((f) => f.endsWith(".sh")).length).toBeGreaterThanOrEqual(2);
        expect(files.filter((f) => !f.startsWith("dist/") && !["package.json", "README.md"].includes(f))).toEqual([]);
        const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
        expect([pkg.private, pkg.main, pkg.types, pkg.peerDependencies["@pulumi/pulumi"]]).toEqual([
            undefined,
            "dist/index.js",
            "dist/index.d.ts",
            expect.stringMatching(/^\^3\./),
        ]);
    });

    it("installs into a program of a user's own, which type-checks and registers the pair's Commands", () => {
        const consumer = path.join(dir, "consumer");
        fs.mkdirSync(consumer);
        for (const f of ["program.ts", "tsconfig.json"]) fs.copyFileSync(path.join(__dirname, "fixtures", "consumer", f), path.join(consumer, f));
        const manifest = { name: "consumer", version: "1.0.0", private: true, dependencies: { "@pulumi/pulumi": "3.248.0", tunnelpair: `file:${tarball}` } };
        fs.writeFileSync(path.join(consumer, "package.json"), JSON.stringify(manifest));
        execFileSync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: consumer, stdio: "pipe" });
        // its own SDK, not ours
        expect(fs.existsSync(path.join(consumer, "node_modules", "@pulumi", "pulumi", "package.json"))).toBe(true);
        expect(fs.existsSync(path.join(consumer, "node_modules", "tunnelpair", "node_modules", "@pulumi", "pulumi"))).toBe(false);
        // ts-node with type checking, against the package's declarations
        const out = execFileSync(process.execPath, [require.resolve("ts-node/dist/bin"), "program.ts"], {
            cwd: consumer,
            encoding: "utf8",
            stdio: ["ignore", "pipe", "pipe"],
        });
        const registered = JSON.parse(out.trim().split("\n").pop()!) as { type: string; name: string; create?: string }[];
        expect(registered.map((r) => `${r.type} ${r.name}`).sort()).toEqual([
            "command:remote:Command toy-a-doolittle",
            "command:remote:Command toy-b-calculon",
            "tunnelpair:index:TunnelPair toy",
        ]);
        const a = registered.find((r) => r.name === "toy-a-doolittle")!;
        expect(a.create).toContain("addr 10.0.0.1/30 tunl1 - prefixroute");
        expect(a.create).toContain("link tunl1 130.88.198.58 130.88.196.129 inherit");
    });
});
