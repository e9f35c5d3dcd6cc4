// The stack's configuration as Pulumi's config holds it, read into the one adapter (config.ts).
import * as pulumi from "@pulumi/pulumi";
import { ConfigSource, configKeys, configNamespace, loadConfig, shortKey } from "./config";
import { Model } from "./model";
import { ConfigError, StackConfig } from "./validate";

/**
 * The stack's configuration, validated as a whole (what spans pairs: a device or a network
 * used twice on a host, firewall modes, jump hosts). A bad one ends the program with every
 * problem listed and no stack trace (RunError), before any resource is registered.
 */
export function loadStack(stack: string): { config: StackConfig; model: Model } {
    try {
        return loadConfig(sourceOfPulumiConfig(stack));
    } catch (e) {
        if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
        throw e;
    }
}

/**
 * The program's view of its config: the keys it reads as objects, the namespace's other keys
 * by name (typos, refused), and which keys are secret. Pulumi tells secrecy only key by key.
 */
export function sourceOfPulumiConfig(stack: string): ConfigSource {
    const config = new pulumi.Config(configNamespace);
    const values: Record<string, unknown> = {};
    for (const key of Object.keys(pulumi.runtime.allConfig())) if (key.startsWith(`${configNamespace}:`)) values[key] = config.get(shortKey(key));
    for (const key of Object.values(configKeys)) values[key] = getObject(config, shortKey(key));
    return { stack, values, secretKeys: Object.values(configKeys).filter(isSecretKey) };
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
