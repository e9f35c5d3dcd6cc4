// The toy stack's configuration as tests use it, read from the committed stack file.
import * as path from "path";
import { readStackFile, StackFile } from "../../components/stackFile";
import { StackConfig } from "../../components/validate";

export const toyStackFile = path.join(__dirname, "..", "..", "stacks", "Pulumi.toy.yaml");

export function toyFile(): StackFile {
    return readStackFile(toyStackFile);
}

/** A fresh, mutable copy of the toy's hosts and pairs. */
export function toyConfig(): { hosts: any; pairs: any } {
    const c = toyFile().config;
    return JSON.parse(JSON.stringify({ hosts: c["tunnelpair:hosts"], pairs: c["tunnelpair:pairs"] }));
}

export function asStackConfig(c: { hosts: unknown; pairs: unknown }): StackConfig {
    return { hosts: c.hosts, pairs: c.pairs };
}
