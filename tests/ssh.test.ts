// The one mapping from a host's validated connection to the SSH client's options
// (components/ssh/connection.ts): every field the provider takes, the jump host's too; the
// component, the doctor and the replay all hand over what it gives.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { configKeys } from "../components/config";
import { runSsh } from "../components/ssh/exec";
import { sshConnection, SshConnection, sshTargetFields } from "../components/ssh/connection";
import { credentialKeys } from "../components/validate";
import { runDoctor } from "../doctor/doctor";
import { hostCommands, record } from "./support/record";
import { RawConfig, stackModel, toyConfig } from "./support/toy";

const key = "-----BEGIN FAKE TEST KEY-----\nstand-in, not a key\n-----END FAKE TEST KEY-----";

/** Man2 with rfe (comp000's jump host) and comp000 on keys with passphrases and every dial setting, and rfe's jumpSessions. */
function man2WithKeys(c: RawConfig) {
    for (const [name, dial] of [
        ["rfe", 3],
        ["comp000", 7],
    ] as const) {
        const conn = c.hosts[name].connection;
        delete conn.agent;
        Object.assign(conn, {
            port: 2200 + dial,
            user: "admin",
            privateKey: `${key}-${name}`,
            privateKeyPassword: `pass-${name}`,
            dialErrorLimit: dial,
            perDialTimeout: 20 + dial,
            hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey",
        });
    }
    c.hosts.rfe.sudo = c.hosts.comp000.sudo = true;
    // the lanes' bound (components/lanes.ts), not an SSH option: no mapping may carry it
    c.hosts.rfe.connection.jumpSessions = 4;
}

describe("sshConnection", () => {
    it("maps every field of a connection and of its jump host", () => {
        const m = stackModel("man2", man2WithKeys);
        const hop = (name: string, dial: number) => ({
            host: m.hosts[name].connection.host,
            port: 2200 + dial,
            user: "admin",
            privateKey: `${key}-${name}`,
            privateKeyPassword: `pass-${name}`,
            hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey",
            dialErrorLimit: dial,
            perDialTimeout: 20 + dial,
        });
        expect(sshConnection(m.hosts.comp000.connection)).toEqual({ ...hop("comp000", 7), proxy: hop("rfe", 3) });
        expect(sshConnection(m.hosts.rfe.connection)).toEqual(hop("rfe", 3));
    });

    it("fills in the defaults the model holds, and leaves out what is not set (an agent's connection has no credential)", () => {
        expect(sshConnection(stackModel("toy").hosts.doolittle.connection)).toEqual({
            host: "130.88.198.58",
            port: 22,
            user: "root",
            dialErrorLimit: 10,
            perDialTimeout: 10,
        });
    });

    it("covers every credential; the model's own fields (agent, proxyName, jumpSessions) are not the client's", () => {
        expect(sshTargetFields).toEqual(expect.arrayContaining([...credentialKeys]));
        expect(sshTargetFields).not.toContain("agent");
        expect(sshTargetFields).not.toContain("proxyName");
        expect(sshTargetFields).not.toContain("jumpSessions");
    });
});

describe("one mapping for every caller", () => {
    it("the component hands the provider exactly the mapping's connection, credentials as given", async () => {
        const c = toyConfig("man2");
        man2WithKeys(c);
        const model = stackModel("man2", man2WithKeys);
        const r = await record(c, { stack: "man2", secretKeys: [configKeys.hosts] });
        const byHost = Object.fromEntries(hostCommands(r).map((x) => [x.name.split("-").pop(), x.inputs.connection]));
        expect(byHost.comp000).toEqual(sshConnection(model.hosts.comp000.connection));
        expect(byHost.rfe).toEqual(sshConnection(model.hosts.rfe.connection));
    });

    it("the doctor connects with the mapping's connection: the key's passphrase and the dial limit included", async () => {
        const model = stackModel("man2", man2WithKeys);
        const seen: Record<string, SshConnection> = {};
        await runDoctor(model, (conn) => {
            seen[conn.host] = conn;
            return Promise.resolve({ code: 1, stdout: "", stderr: "not in a test", ms: 0 });
        });
        const comp000 = seen[model.hosts.comp000.connection.host];
        expect(comp000).toEqual(sshConnection(model.hosts.comp000.connection));
        expect(comp000).toMatchObject({ privateKeyPassword: "pass-comp000", dialErrorLimit: 7, proxy: { privateKeyPassword: "pass-rfe", dialErrorLimit: 3 } });
    });
});

describe("runSsh", () => {
    // a stand-in ssh on PATH that would run for 30 s: only the signal can end it this early
    const fakeBin = fs.mkdtempSync(path.join(os.tmpdir(), "tunnelpair-fake-ssh-"));
    fs.writeFileSync(path.join(fakeBin, "ssh"), "#!/bin/sh\necho started\nexec sleep 30\n", { mode: 0o755 });
    const env = { ...process.env, PATH: `${fakeBin}:${process.env.PATH}` };
    afterAll(() => fs.rmSync(fakeBin, { recursive: true, force: true }));

    it("kills the client when the signal fires, and says it did not time out", async () => {
        const cut = new AbortController();
        const running = runSsh(["host", "true"], { timeoutMs: 60_000, env, signal: cut.signal });
        await new Promise((r) => setTimeout(r, 300));
        cut.abort();
        const r = await running;
        expect(r).toMatchObject({ code: 128, stdout: "started\n", timedOut: false });
        expect(r.ms).toBeLessThan(10_000);
    });

    it("kills at once a client whose signal has already fired", async () => {
        const r = await runSsh(["host", "true"], { timeoutMs: 60_000, env, signal: AbortSignal.abort() });
        expect(r.code).toBe(128);
        expect(r.ms).toBeLessThan(10_000);
    });
});
