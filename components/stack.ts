// Reading the stack's configuration: the one place that knows the config keys.
import * as pulumi from "@pulumi/pulumi";
import { Model } from "./model";
import { ConfigError, validateConfig } from "./validate";

/** The keys in Pulumi.<stack>.yaml, under the project's namespace. */
export const configKeys = { hosts: "hosts", pairs: "pairs" } as const;

/**
 * Validates the stack's configuration. A bad one ends the program with every problem listed
 * and no stack trace (RunError), before any resource is registered.
 */
export function loadModel(config: pulumi.Config, stack: string): Model {
    try {
        return validateConfig(
            { hosts: getObject(config, configKeys.hosts), pairs: getObject(config, configKeys.pairs), otherKeys: otherKeys(config) },
            { stack, hostsAreSecret: isSecretKey(`${config.name}:${configKeys.hosts}`) },
        );
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

/** What deserves a word at preview although it is allowed. */
export function warnings(model: Model): string[] {
    const out: string[] = [];
    for (const h of Object.values(model.hosts)) {
        if (h.connection.hostKey === undefined) {
            out.push(`hosts.${h.name}.connection.hostKey is not set: the identity of ${h.connection.host} is not verified`);
        }
    }
    for (const p of model.pairs) {
        if (p.firewall === "open") {
            out.push(`pairs.${p.name}.firewall is "open": every firewall rule on ${p.a.host} and ${p.b.host} is off until destroy restores them`);
        }
    }
    return out;
}
