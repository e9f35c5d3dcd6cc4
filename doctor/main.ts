// `npm run doctor -- --stack NAME [--json] [--identity FILE]`: reads stacks/Pulumi.NAME.yaml
// (no Pulumi CLI needed), connects to every host over SSH and reports the how-to's
// troubleshooting items per host. Exit 0: no problem; 1: problems; 2: the doctor could not run.
import * as fs from "fs";
import * as path from "path";
import { configKeys, loadConfig, shortKey, sourceOfStackFile, withValues } from "../components/config";
import { Model } from "../components/model";
import { readStackFile, StackFileError } from "../components/stackFile";
import { ConfigError, credentialKeys } from "../components/validate";
import { sshExec } from "../components/ssh/exec";
import { formatReport, runDoctor } from "./doctor";

function usage(message: string): never {
    console.error(`${message}\nusage: npm run doctor -- --stack NAME [--stack-file FILE] [--json] [--identity FILE]`);
    process.exit(2);
}

function modelOf(file: string, identity: string | undefined): Model {
    const source = sourceOfStackFile(readStackFile(file));
    const hosts = structuredClone(source.values[configKeys.hosts] ?? {}) as Record<string, { connection?: Record<string, unknown> }>;
    // encrypted values only the Pulumi CLI can read: the agent or --identity stands in for them
    const encrypted = new RegExp(`^${configKeys.hosts}\\.([^.]+)\\.connection\\.(${credentialKeys.join("|")})$`);
    for (const p of source.securePaths ?? []) {
        const m = encrypted.exec(p);
        if (!m) continue;
        if (!identity) usage(`${shortKey(p)} is encrypted and only the Pulumi CLI can read it: load the key into ssh-agent, or pass --identity FILE`);
        delete hosts[m[1]].connection![m[2]];
    }
    if (identity)
        for (const h of Object.values(hosts))
            if (h.connection) h.connection = { ...h.connection, privateKey: fs.readFileSync(identity, "utf8"), agent: undefined };
    // the credentials are the doctor's own now (the agent's, --identity's), not the ones the stack stores
    return loadConfig(withValues(source, { [configKeys.hosts]: hosts }), { credentials: "supplied" }).model;
}

async function main(): Promise<void> {
    const args = process.argv.slice(2);
    const opt = (name: string) => {
        const i = args.indexOf(name);
        return i < 0 ? undefined : (args[i + 1] ?? usage(`${name} needs a value`));
    };
    const stack = opt("--stack");
    const file = opt("--stack-file") ?? (stack && path.join(__dirname, "..", "stacks", `Pulumi.${stack}.yaml`));
    if (!file) usage("--stack or --stack-file is required");
    let model: Model;
    try {
        model = modelOf(file, opt("--identity"));
    } catch (e) {
        if (e instanceof ConfigError || e instanceof StackFileError) usage(e.message);
        throw e;
    }
    const report = await runDoctor(model, (conn, command) => sshExec(conn, command, undefined, { timeoutMs: 60_000 }));
    console.log(args.includes("--json") ? JSON.stringify(report, null, 2) : formatReport(report));
    process.exitCode = report.ok ? 0 : 1;
}

main().catch((e: Error) => {
    console.error(`doctor: ${e.message}`);
    process.exit(2);
});
