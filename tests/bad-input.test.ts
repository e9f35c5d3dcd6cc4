// Issue 5, item 4 "Bad input": every stack file under tests/fixtures/bad has one mistake and is
// refused, by `npm run check-config` and by the program at preview, with a message that names
// the field and the value: no stack trace, nothing registered. A fixture's first line is
// `# expect: <part of the message>`; `# never: <text>` is text (a credential) no message may
// hold; `# check-config only: <why>` marks a mistake only a reader of the file can see.
import * as pulumi from "@pulumi/pulumi";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { readStackFile, StackFileError } from "../components/stackFile";
import { checkStackFile } from "../tools/check-config";
import { recordStackFile } from "./support/record";

const root = path.join(__dirname, "..");
const dir = path.join(__dirname, "fixtures", "bad");
const stackTrace = /\n\s+at |^\s+at /m;

interface Case {
    readonly name: string;
    readonly file: string;
    readonly expect: string;
    readonly never?: string;
    readonly checkConfigOnly?: string;
    /** Whether readStackFile reads it (false: broken YAML or a file not shaped like a stack file). */
    readonly readable: boolean;
}

function load(): Case[] {
    return fs
        .readdirSync(dir)
        .sort()
        .map((base) => {
            const file = path.join(dir, base);
            const text = fs.readFileSync(file, "utf8");
            const head = text.slice(0, text.search(/^[^#]/m)); // the leading comment lines
            const header = (key: string) => new RegExp(`^# ${key}: (.+)$`, "m").exec(head)?.[1];
            const m = /^Pulumi\.([a-z0-9-]+)\.yaml$/.exec(base);
            if (!m) throw new Error(`${base}: a fixture is named Pulumi.<case>.yaml, the case of [a-z0-9-]`);
            if (!text.startsWith("# expect: ")) throw new Error(`${base}: the first line is # expect: <message>`);
            let readable = true;
            try {
                readStackFile(file);
            } catch (e) {
                if (!(e instanceof StackFileError)) throw e;
                readable = false;
            }
            return { name: m[1], file, expect: header("expect")!, never: header("never"), checkConfigOnly: header("check-config only"), readable };
        });
}

const cases = load();
const table = cases.map((c) => [c.name, c] as const);

it("the corpus holds at least 50 malformed stack files", () => {
    expect(cases.length).toBeGreaterThanOrEqual(50);
    expect(new Set(cases.map((c) => c.expect)).size).toBe(cases.length);
});

describe("check-config refuses", () => {
    it.each(table)("%s", (_name, c) => {
        const problems = checkStackFile(c.file);
        expect(problems).toEqual(expect.arrayContaining([expect.stringContaining(c.expect)]));
        for (const p of problems) {
            // one line each, "FILE: path: message", no stack trace
            expect(p.startsWith(`${c.file}: `)).toBe(true);
            expect(p).not.toContain("\n");
            expect(p).not.toMatch(stackTrace);
            if (c.never) expect(p).not.toContain(c.never);
        }
    });
});

describe("the program refuses at preview, registering nothing", () => {
    const programCases = table.filter(([, c]) => c.readable && !c.checkConfigOnly);
    it.each(programCases)("%s", async (_name, c) => {
        const err = await recordStackFile(readStackFile(c.file), { preview: true }).then(
            () => new Error("the program accepted it"),
            (e: unknown) => e as Error & { registered?: number },
        );
        // a RunError: Pulumi prints its message alone, without a stack trace
        expect(pulumi.RunError.isInstance(err)).toBe(true);
        expect(err.message).toContain(c.expect);
        expect(err.message).not.toMatch(stackTrace);
        if (c.never) expect(err.message).not.toContain(c.never);
        expect((err as { registered?: number }).registered).toBe(0);
    });
});

describe("a stack file that is not YAML or not shaped like one", () => {
    it.each(table.filter(([, c]) => !c.readable))("%s: one line naming the file, and the line for a YAML error", (name, c) => {
        let err: unknown;
        try {
            readStackFile(c.file);
        } catch (e) {
            err = e;
        }
        expect(err).toBeInstanceOf(StackFileError);
        const e = err as StackFileError;
        expect(e.problems.length).toBeGreaterThan(0);
        for (const p of e.problems) expect(p).toMatch(new RegExp(`^${c.file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: [^\n]+$`));
        if (name.startsWith("yaml-")) expect(e.problems).toEqual([expect.stringMatching(/ at line \d+, column \d+$/)]);
    });
});

describe("only check-config sees", () => {
    // The program is handed each key's decrypted value and whether the key is secret: a
    // plain-text credential in a key that also holds an encrypted one looks like a secret.
    it.each(table.filter(([, c]) => c.checkConfigOnly))("%s", async (_name, c) => {
        await expect(recordStackFile(readStackFile(c.file), { preview: true })).resolves.toBeDefined();
    });
});

describe("npm run check-config", () => {
    const run = (...files: string[]) => spawnSync("npx", ["ts-node", "--transpile-only", "tools/check-config.ts", ...files], { cwd: root, encoding: "utf8" });

    it("prints every problem of a file, one a line, and exits non-zero", () => {
        const file = path.join("tests", "fixtures", "Pulumi.three-problems.yaml");
        const r = run(file, "stacks/Pulumi.toy.yaml");
        expect(r.status).toBe(1);
        expect(r.stderr).not.toMatch(stackTrace);
        expect(r.stdout.trimEnd().split("\n")).toEqual([
            `${file}: hosts.calculon.connection.port: 70000 is not an integer from 1 to 65535`,
            `${file}: pairs.toy.a.interface: "tunl0" is the kernel's shared fallback device; use tunl1 or another name`,
            `${file}: pairs.toy.b.tunnelAddress: 10.0.3.2 is not inside 10.0.2.0/24`,
            "stacks/Pulumi.toy.yaml: ok",
        ]);
    });

    it("reports a YAML error as one line with the file and line, and exits non-zero", () => {
        const file = path.join("tests", "fixtures", "bad", "Pulumi.yaml-tab.yaml");
        const r = run(file);
        expect(r.status).toBe(1);
        expect(r.stderr).not.toMatch(stackTrace);
        expect(r.stdout).toBe(`${file}: Tabs are not allowed as indentation at line 39, column 1\n`);
    });

    it("accepts the committed stacks", () => {
        const stacks = fs.readdirSync(path.join(root, "stacks")).map((f) => path.join("stacks", f));
        for (const f of stacks) expect(checkStackFile(path.join(root, f))).toEqual([]);
    });
});
