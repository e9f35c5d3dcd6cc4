// The one adapter from a stack's configuration to the model (components/config.ts): pure, no
// Pulumi; what each caller's options decide, and what no option changes.
import { ConfigSource, configKeys, configValues, loadConfig, sourceOfStackFile, stackConfig, validateOptions } from "../components/config";
import { ConfigError } from "../components/validate";
import { toyConfig, toyFile } from "./support/toy";

const key = "-----BEGIN FAKE TEST KEY-----\nstand-in, not a key\n-----END FAKE TEST KEY-----";

/** The toy with doolittle authenticating by key, its value encrypted where `secure` says. */
function withKey(secure: { key?: boolean; path?: boolean }): ConfigSource {
    const c = toyConfig();
    delete c.hosts.doolittle.connection.agent;
    c.hosts.doolittle.connection.privateKey = key;
    return {
        stack: "toy",
        values: configValues(c),
        secretKeys: secure.key ? [configKeys.hosts] : [],
        securePaths: secure.path === undefined ? undefined : secure.path ? [`${configKeys.hosts}.doolittle.connection.privateKey`] : [],
    };
}

function problems(source: ConfigSource, opts?: Parameters<typeof loadConfig>[1]): string[] {
    try {
        loadConfig(source, opts);
        return [];
    } catch (e) {
        if (e instanceof ConfigError) return [...e.problems];
        throw e;
    }
}

describe("the config keys", () => {
    it("are the project's namespace and the two keys Pulumi.yaml declares", () => {
        expect(configKeys).toEqual({ hosts: "tunnelpair:hosts", pairs: "tunnelpair:pairs" });
    });
    it("a stack file's hosts and pairs are read under them; keys of other namespaces are not the program's", () => {
        const sf = toyFile();
        const c = stackConfig({ ...sourceOfStackFile(sf), values: { ...sf.config, "aws:region": "eu-west-2" } });
        expect(c).toEqual({ hosts: sf.config[configKeys.hosts], pairs: sf.config[configKeys.pairs], otherKeys: [] });
    });
});

describe("loadConfig", () => {
    it("gives the committed toy's model, read from its stack file", () => {
        const { model, config } = loadConfig(sourceOfStackFile(toyFile()));
        expect(model.stack).toBe("toy");
        expect(model.pairs.map((p) => p.name)).toEqual(["toy"]);
        expect(config.hosts).toEqual(toyConfig().hosts);
    });

    it.each(["stored", "supplied"] as const)("refuses an unknown key in the namespace whoever calls (credentials %s)", (credentials) => {
        const source = sourceOfStackFile(toyFile());
        expect(problems({ ...source, values: { ...source.values, "tunnelpair:pair": {} } }, { credentials })).toEqual([
            "tunnelpair:pair: unknown config key (known: hosts, pairs)",
        ]);
    });

    it("stored credentials: refuses a key in a hosts key that is not secret", () => {
        expect(problems(withKey({ key: false }))).toEqual([
            "hosts.doolittle.connection.privateKey: is stored in plain text; set it with `pulumi config set --secret --path`",
        ]);
        expect(problems(withKey({ key: true }))).toEqual([]);
    });

    it("stored credentials, the file's encrypted paths known: a secret hosts key does not cover a plain value in it", () => {
        expect(problems(withKey({ key: true, path: false }))).toEqual([
            expect.stringMatching(/^hosts\.doolittle\.connection\.privateKey: is stored in plain text/),
        ]);
        expect(problems(withKey({ key: true, path: true }))).toEqual([]);
    });

    it("supplied credentials (the doctor's identity, the lab's key): how the stack stores its own is not checked", () => {
        expect(problems(withKey({ key: false, path: false }), { credentials: "supplied" })).toEqual([]);
        expect(validateOptions(withKey({ key: true, path: true }), { credentials: "supplied" })).toEqual({ stack: "toy" });
    });

    it("hands validation the encrypted paths inside the namespace, as validation names fields", () => {
        const source = { ...withKey({ key: true, path: true }), securePaths: [`${configKeys.hosts}.doolittle.connection.privateKey`, "aws:secret"] };
        expect(validateOptions(source)).toEqual({ stack: "toy", hostsAreSecret: true, securePaths: ["hosts.doolittle.connection.privateKey"] });
    });
});
