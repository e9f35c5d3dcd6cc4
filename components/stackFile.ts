// Reading a Pulumi.<stack>.yaml without the Pulumi CLI: for the lab's replay and for
// `npm run check-config`. Encrypted values ({secure: ...}) cannot be decrypted here; they are
// kept as a placeholder so that validation sees that a secret credential is set.
import * as fs from "fs";
import * as path from "path";
import YAML from "yaml";
import { configKeys } from "./config";

export const securePlaceholder = "<secure>";

export interface StackFile {
    /** From the file name: stacks/Pulumi.toy.yaml -> "toy". */
    readonly stack: string;
    /** "tunnelpair:hosts" -> value, with {secure} leaves replaced by the placeholder. */
    readonly config: Record<string, unknown>;
    /** Keys holding at least one {secure} value: Pulumi treats the whole key as secret. */
    readonly secretKeys: string[];
    /**
     * Where the {secure} values are, "tunnelpair:hosts.doolittle.connection.privateKey": only
     * the file tells which values of a secret key are encrypted, Pulumi's program sees the key.
     */
    readonly securePaths: string[];
}

/** A stack file that cannot be read: one line per problem, each naming the file (and line). */
export class StackFileError extends Error {
    readonly problems: readonly string[];
    constructor(file: string, problems: readonly string[]) {
        const lines = problems.map((p) => `${file}: ${p}`);
        super(lines.join("\n"));
        this.name = "StackFileError";
        this.problems = lines;
    }
}

/** The top-level keys of a Pulumi stack file; anything else is a mistake (settings belong under config:). */
const topLevelKeys = ["config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment"];

export function readStackFile(file: string): StackFile {
    const base = path.basename(file);
    const m = /^Pulumi\.(.+)\.ya?ml$/.exec(base);
    if (!m) throw new StackFileError(file, ["a stack file is named Pulumi.<stack>.yaml"]);
    const doc = YAML.parseDocument(fs.readFileSync(file, "utf8"));
    // The yaml package's message is "<what> at line L, column C:" followed by an excerpt. Only
    // the first is reliable: the errors after it are mostly the parser losing its footing.
    if (doc.errors.length > 0) throw new StackFileError(file, [doc.errors[0].message.split("\n")[0].replace(/:$/, "")]);
    let top: unknown;
    try {
        top = doc.toJS();
    } catch (e) {
        throw new StackFileError(file, [(e as Error).message.split("\n")[0]]); // e.g. an alias that expands without bound
    }
    if (top !== null && (typeof top !== "object" || Array.isArray(top))) throw new StackFileError(file, ["is not a map of top-level keys (config: ...)"]);
    const problems: string[] = [];
    for (const key of Object.keys(top ?? {})) {
        if (!topLevelKeys.includes(key)) problems.push(`${JSON.stringify(key)} at the top level: stack settings go under config:`);
    }
    const rawConfig = (top as { config?: unknown } | null)?.config ?? {};
    if (rawConfig === null || typeof rawConfig !== "object" || Array.isArray(rawConfig))
        problems.push(`config is not a map of keys (${configKeys.hosts}: ...)`);
    if (problems.length > 0) throw new StackFileError(file, problems);
    const config: Record<string, unknown> = {};
    const secretKeys: string[] = [];
    const securePaths: string[] = [];
    for (const [key, value] of Object.entries(rawConfig as Record<string, unknown>)) {
        const before = securePaths.length;
        config[key] = replaceSecure(value, key, securePaths);
        if (securePaths.length > before) secretKeys.push(key);
    }
    return { stack: m[1], config, secretKeys, securePaths };
}

function replaceSecure(value: unknown, at: string, found: string[]): unknown {
    if (Array.isArray(value)) return value.map((v, i) => replaceSecure(v, `${at}[${i}]`, found));
    if (value !== null && typeof value === "object") {
        const o = value as Record<string, unknown>;
        if (Object.keys(o).length === 1 && typeof o.secure === "string") {
            found.push(at);
            return securePlaceholder;
        }
        return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, replaceSecure(v, `${at}.${k}`, found)]));
    }
    return value;
}
