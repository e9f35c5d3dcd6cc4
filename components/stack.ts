// Reading the stack's configuration: the one place that knows the config keys.
import * as pulumi from "@pulumi/pulumi";
import { Model } from "./model";
import { ConfigError, StackConfig, validateConfig } from "./validate";

/** The keys in Pulumi.<stack>.yaml, under the project's namespace. */
export const configKeys = { hosts: "hosts", pairs: "pairs" } as const;

/**
 * The stack's configuration, validated as a whole (what spans pairs: a device or a network
 * used twice on a host, firewall modes, jump hosts). A bad one ends the program with every
 * problem listed and no stack trace (RunError), before any resource is registered.
 */
export function loadStack(config: pulumi.Config, stack: string): { config: StackConfig; model: Model } {
    const raw: StackConfig = { hosts: getObject(config, configKeys.hosts), pairs: getObject(config, configKeys.pairs), otherKeys: otherKeys(config) };
    try {
        return { config: raw, model: validateConfig(raw, { stack, hostsAreSecret: isSecretKey(`${config.name}:${configKeys.hosts}`) }) };
    } catch (e) {
        if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
        throw e;
    }
}

/**
 * The value as an object; a value that is not JSON (`tunnelpair:pairs: toy`) as its text, for
 * validation to name it (getObject would throw "is not a valid JSON object" naming no field).
 */
function getObject(config: pulumi.Config, key: string): unknown {
    try {
        return config.getObject(key);
    } catch {
        return config.get(key);
    }
}

/** The keys in the project's namespace that the program does not read (typos). */
function otherKeys(config: pulumi.Config): string[] {
    const known = Object.values(configKeys).map((k) => `${config.name}:${k}`);
    return Object.keys(pulumi.runtime.allConfig()).filter((k) => k.startsWith(`${config.name}:`) && !known.includes(k));
}

/**
 * Whether a config key is stored encrypted. `runtime.isConfigSecret` is marked internal in
 * @pulumi/pulumi 3.248 (present in its JavaScript, absent from its typings); without it we
 * cannot tell a plain-text credential from a secret one, so its absence is an error.
 */
function isSecretKey(key: string): boolean {
    const isConfigSecret = (pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
    if (typeof isConfigSecret !== "function") throw new Error("@pulumi/pulumi no longer provides runtime.isConfigSecret");
    return isConfigSecret(key);
}
