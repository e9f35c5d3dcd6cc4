// Reading a Pulumi.<stack>.yaml without the Pulumi CLI: for the lab's replay and for
// `npm run check-config`. Encrypted values ({secure: ...}) cannot be decrypted here; they are
// kept as a placeholder so that validation sees that a secret credential is set.
import * as fs from "fs";
import * as path from "path";
import YAML from "yaml";

export const securePlaceholder = "<secure>";

export interface StackFile {
    /** From the file name: stacks/Pulumi.toy.yaml -> "toy". */
    readonly stack: string;
    /** "tunnelpair:hosts" -> value, with {secure} leaves replaced by the placeholder. */
    readonly config: Record<string, unknown>;
    /** Keys holding at least one {secure} value: Pulumi treats the whole key as secret. */
    readonly secretKeys: string[];
}

export function readStackFile(file: string): StackFile {
    const base = path.basename(file);
    const m = /^Pulumi\.(.+)\.ya?ml$/.exec(base);
    if (!m) throw new Error(`${file}: a stack file is named Pulumi.<stack>.yaml`);
    const doc = YAML.parse(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
    const config: Record<string, unknown> = {};
    const secretKeys: string[] = [];
    for (const [key, value] of Object.entries(doc?.config ?? {})) {
        const found = { secure: false };
        config[key] = replaceSecure(value, found);
        if (found.secure) secretKeys.push(key);
    }
    return { stack: m[1], config, secretKeys };
}

function replaceSecure(value: unknown, found: { secure: boolean }): unknown {
    if (Array.isArray(value)) return value.map((v) => replaceSecure(v, found));
    if (value !== null && typeof value === "object") {
        const o = value as Record<string, unknown>;
        if (Object.keys(o).length === 1 && typeof o.secure === "string") {
            found.secure = true;
            return securePlaceholder;
        }
        return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, replaceSecure(v, found)]));
    }
    return value;
}
