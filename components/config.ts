// The one adapter from a stack's configuration, as a stack file or Pulumi's config holds it, to
// the validated model; and the one place that spells the config keys. The program (through
// stack.ts), `npm run check-config`, the doctor, the lab and the tests all read a stack here,
// so they agree on what is refused: unknown keys always, plain-text credentials whenever the
// credentials are the ones stored in the stack (below).
import { Model } from "./model";
import { StackFile } from "./stackFile";
import { StackConfig, validateConfig, ValidateOptions } from "./validate";

/** The project's namespace: Pulumi.yaml's `name`, the prefix of every key the program reads. */
export const configNamespace = "tunnelpair";

/** Every key the program reads, as the stack file and `pulumi config` spell it. */
export const configKeys = { hosts: `${configNamespace}:hosts`, pairs: `${configNamespace}:pairs` } as const;

/** A key's name inside the namespace, as `pulumi.Config.get` takes it: "tunnelpair:hosts" -> "hosts". */
export function shortKey(key: string): string {
    return key.slice(configNamespace.length + 1);
}

/** A stack's configuration and what is known of its secrecy, whatever it was read from. */
export interface ConfigSource {
    readonly stack: string;
    /** Every config key of the stack ("tunnelpair:hosts" -> value), other namespaces included. */
    readonly values: Readonly<Record<string, unknown>>;
    /** The keys Pulumi holds as secrets. */
    readonly secretKeys: readonly string[];
    /**
     * Where exactly the encrypted values are ("tunnelpair:hosts.doolittle.connection.privateKey"):
     * only a stack file tells; Pulumi's config knows secrecy key by key. Undefined: not known.
     */
    readonly securePaths?: readonly string[];
}

export interface LoadOptions {
    /**
     * Where the connections' credentials come from. `stored` (the default): from the source,
     * as `pulumi up` would use them, so each must be stored encrypted (with securePaths value by
     * value, else key by key). `supplied`: the caller put them there itself (the doctor's
     * `--identity`, the lab's key, a test's fixture), so how the stack stores its own is not
     * the question and is not checked.
     */
    readonly credentials?: "stored" | "supplied";
}

export function sourceOfStackFile(sf: StackFile): ConfigSource {
    return { stack: sf.stack, values: sf.config, secretKeys: sf.secretKeys, securePaths: sf.securePaths };
}

/** The source with some keys' values replaced (the lab pointing connections at its hosts). */
export function withValues(source: ConfigSource, values: Record<string, unknown>): ConfigSource {
    return { ...source, values: { ...source.values, ...values } };
}

/** The config values of a stack's hosts and pairs, keyed as Pulumi holds them. */
export function configValues(c: { hosts?: unknown; pairs?: unknown }): Record<string, unknown> {
    return { [configKeys.hosts]: c.hosts, [configKeys.pairs]: c.pairs };
}

/** The source's hosts and pairs as validation reads them, and its other keys in the namespace (typos). */
export function stackConfig(source: ConfigSource): StackConfig {
    const known: readonly string[] = Object.values(configKeys);
    return {
        hosts: source.values[configKeys.hosts],
        pairs: source.values[configKeys.pairs],
        otherKeys: Object.keys(source.values).filter((k) => k.startsWith(`${configNamespace}:`) && !known.includes(k)),
    };
}

/** What validation is told about secrecy: paths inside the namespace, as validation names fields. */
export function validateOptions(source: ConfigSource, opts: LoadOptions = {}): ValidateOptions {
    if (opts.credentials === "supplied") return { stack: source.stack };
    const prefix = `${configNamespace}:`;
    return {
        stack: source.stack,
        hostsAreSecret: source.secretKeys.includes(configKeys.hosts),
        securePaths: source.securePaths?.filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length)),
    };
}

/** The validated model of a stack; throws a ConfigError listing every problem. */
export function loadConfig(source: ConfigSource, opts: LoadOptions = {}): { config: StackConfig; model: Model } {
    const config = stackConfig(source);
    return { config, model: validateConfig(config, validateOptions(source, opts)) };
}
