// The committed stack files as tests use them, read through the one config adapter.
import * as path from "path";
import { configValues, loadConfig, sourceOfStackFile, stackConfig, withValues } from "../../components/config";
import { Model } from "../../components/model";
import { readStackFile, StackFile } from "../../components/stackFile";
import { StackConfig } from "../../components/validate";

export const stackFilePath = (stack: string): string => path.join(__dirname, "..", "..", "stacks", `Pulumi.${stack}.yaml`);
export const toyStackFile = stackFilePath("toy");

export function toyFile(): StackFile {
    return readStackFile(toyStackFile);
}

/**
 * A stack's hosts and pairs as the raw data of its YAML, which tests change and break on purpose:
 * a wrong type or a missing field is what the validation under test must refuse.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw stack data, malformed on purpose
export type RawConfig = { hosts: any; pairs: any };

/** A fresh, mutable copy of a committed stack's hosts and pairs (the toy's by default). */
export function toyConfig(stack = "toy"): RawConfig {
    const c = stackConfig(sourceOfStackFile(readStackFile(stackFilePath(stack))));
    return structuredClone({ hosts: c.hosts, pairs: c.pairs });
}

/** A committed stack's model after `change` to its hosts and pairs; credentials a test adds are its own, not stored ones. */
export function stackModel(stack: string, change: (c: RawConfig) => void = () => undefined): Model {
    const c = toyConfig(stack);
    change(c);
    return loadConfig(withValues(sourceOfStackFile(readStackFile(stackFilePath(stack))), configValues(c)), { credentials: "supplied" }).model;
}

export function asStackConfig(c: { hosts: unknown; pairs: unknown }): StackConfig {
    return { hosts: c.hosts, pairs: c.pairs };
}
