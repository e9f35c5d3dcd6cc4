// Issue 12, items 4 and 5: the examples. The TypeScript program that composes TunnelPair with
// other resources' outputs runs under mocks; the YAML program's TunnelPair is sent to the
// component provider over gRPC as the YAML runtime would send it; the Python program's names
// are checked against the schema its generated SDK would come from.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Recording, recordProgram } from "../replay/record";

describe("examples/composed: TunnelPair with a generated deploy key and another stack's hosts", () => {
    const record = () =>
        recordProgram({
            project: "tunnel-composed",
            stack: "prod",
            config: { "tunnel-composed:infraStack": "acme/campus-hosts/prod", "tunnel-composed:adminKey": "admin stand-in key" },
            secretKeys: ["tunnel-composed:adminKey"],
            // loaded once the mocks are set, as a program is (and synchronously: program returns its exports)
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            program: () => require("../examples/composed"),
            mockState: (a) => {
                if (a.type === "pulumi:pulumi:StackReference")
                    return {
                        outputs: {
                            doolittleIp: "130.88.198.58",
                            calculonIp: "130.88.196.129",
                            doolittleHostKey: "ssh-ed25519 AAAAdoolittle",
                            calculonHostKey: "ssh-ed25519 AAAAcalculon",
                        },
                    };
                if (a.type === "tls:index/privateKey:PrivateKey")
                    return { ...a.inputs, privateKeyOpenssh: "deploy stand-in key", publicKeyOpenssh: "ssh-ed25519 AAAAdeploy\n" };
                return undefined;
            },
        });

    // (once: the example is a module, which Node runs once per process)
    let r: Recording;
    beforeAll(async () => {
        r = await record();
    });

    it("registers the key, the authorizations and the pair, the pair's Commands after the authorizations", () => {
        const byName = new Map(r.resources.map((x) => [x.name, x]));
        expect(r.resources.map((x) => `${x.type} ${x.name}`).sort()).toEqual([
            "command:remote:Command authorize-calculon",
            "command:remote:Command authorize-doolittle",
            "command:remote:Command toy-a-doolittle",
            "command:remote:Command toy-b-calculon",
            "tls:index/privateKey:PrivateKey deploy",
            "tunnelpair:index:TunnelPair toy",
        ]);
        const authorizations = ["authorize-doolittle", "authorize-calculon"].map((n) => byName.get(n)!.urn);
        const ends = ["toy-a-doolittle", "toy-b-calculon"];
        for (const n of ends) expect(byName.get(n)!.dependencies).toEqual(expect.arrayContaining(authorizations));
        // b after a: its apply ends with the probe
        expect(byName.get("toy-b-calculon")!.dependencies).toEqual(expect.arrayContaining([byName.get("toy-a-doolittle")!.urn]));
        const a = byName.get("toy-a-doolittle")!;
        // the addresses and host key from the other stack, the generated key as the pair's, secret
        expect(a.inputs.connection).toMatchObject({ host: "130.88.198.58", privateKey: "deploy stand-in key", hostKey: "ssh-ed25519 AAAAdoolittle" });
        expect(a.secretPaths).toEqual(["connection"]);
        expect(a.inputs.create).toEqual(expect.stringContaining("link tunl1 130.88.198.58 130.88.196.129 inherit"));
        const auth = byName.get("authorize-doolittle")!;
        expect(auth.inputs.stdin).toBe("ssh-ed25519 AAAAdeploy tunnelpair-deploy:prod");
        expect(auth.inputs.connection).toMatchObject({ privateKey: "admin stand-in key" });
        expect(r.outputs.tag).toBe("tunnelpair:prod/toy");
    });

    it("authorizes the deploy key once however often it runs, and its delete restores authorized_keys byte for byte", () => {
        const auth = r.resources.find((x) => x.name === "authorize-doolittle")!;
        // the scripts, pointed at a scratch directory instead of /root/.ssh (file operations only)
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunnelpair-authorize-"));
        const at = (script: unknown) => (script as string).split("/root/.ssh").join(`${dir}/.ssh`);
        const run = (script: unknown) => execFileSync("sh", ["-c", at(script)], { input: auth.inputs.stdin as string });
        try {
            fs.mkdirSync(`${dir}/.ssh`, { mode: 0o700 });
            const file = `${dir}/.ssh/authorized_keys`;
            fs.writeFileSync(file, "ssh-ed25519 AAAAadmin admin@campus\n", { mode: 0o600 });
            const before = fs.readFileSync(file);
            run(auth.inputs.create);
            run(auth.inputs.create);
            expect(fs.readFileSync(file, "utf8")).toBe("ssh-ed25519 AAAAadmin admin@campus\nssh-ed25519 AAAAdeploy tunnelpair-deploy:prod\n");
            run(auth.inputs.delete);
            expect(fs.readFileSync(file)).toEqual(before);
            expect(fs.statSync(file).mode & 0o777).toBe(0o600);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
