// Issue 12: TunnelPair as a library component, under Pulumi mocks. Plain args, Output args
// known at preview, values unknown at preview (a VM made in the same update), secret args,
// and a value refused once its Output resolves: before any Command is registered.
import * as pulumi from "@pulumi/pulumi";
import { spawnSync } from "child_process";
import * as path from "path";
import { TunnelPair, TunnelPairArgs } from "../components";
import { pairArgs, pairConfig, shapeProblems } from "../components/pairConfig";
import { readStackFile } from "../components/stackFile";
import { Recording } from "../replay/record";
import { commands, onVms, record, toyArgs, toyFile } from "./support/component";
import { recordStackFile } from "./support/record";

/** How the mock monitor hands over a value unknown at preview. */
const unknown = { __pulumiUnknown: true };
const byName = (r: Recording) => Object.fromEntries(commands(r).map((c) => [c.name, c]));

describe("TunnelPair as a library", () => {
    it("with plain args registers exactly the stack program's Commands (one code path)", async () => {
        const lib = await record(() => {
            const t = new TunnelPair("toy", toyArgs());
            return { tag: t.tag, a: t.a };
        });
        const stack = await recordStackFile(readStackFile(toyFile));
        expect(Object.keys(byName(lib)).sort()).toEqual(["toy-a-doolittle", "toy-b-calculon"]);
        for (const [name, c] of Object.entries(byName(stack))) expect([name, byName(lib)[name].inputs]).toEqual([name, c.inputs]);
        expect(lib.outputs).toMatchObject({ tag: "tunnelpair:toy/toy", a: { host: "doolittle", interface: "tunl1", tunnelAddress: "10.0.1.2" } });
    });

    it("with Output args known at preview renders the same scripts at preview as plain args do", async () => {
        const plain = await record(() => ({ t: new TunnelPair("toy", toyArgs()).tag }), true);
        const outputs = await record(() => {
            const args = toyArgs();
            args.a.host.connection.host = pulumi.output("130.88.198.58");
            args.a.host.underlay.address = pulumi.output(Promise.resolve("130.88.198.58"));
            args.a.routes = [pulumi.output("10.0.2.0/24")];
            args.b.mtu = pulumi.output(1400);
            return { t: new TunnelPair("toy", args).tag };
        }, true);
        const [p, o] = [byName(plain), byName(outputs)];
        expect(o["toy-a-doolittle"].inputs).toEqual(p["toy-a-doolittle"].inputs);
        expect(o["toy-b-calculon"].inputs.create).toContain("mtu tunl1 1400 130.88.198.58");
        expect(o["toy-b-calculon"].inputs.create).not.toEqual(p["toy-b-calculon"].inputs.create);
    });

    it("with values unknown at preview registers every Command with unknown scripts and connection", async () => {
        const r = await record(onVms(), true);
        const c = byName(r);
        expect(Object.keys(c).sort()).toEqual(["toy-a-doolittle", "toy-b-calculon"]);
        for (const x of Object.values(c)) {
            expect(x.inputs.create).toEqual(unknown);
            expect(x.inputs.connection).toEqual(unknown);
        }
        // what derives from the validated pair waits for validation; the tag and host names do not
        expect(r.outputs).toMatchObject({ tag: "tunnelpair:toy/toy", a: { host: "doolittle" } });
        expect(["<unknown>", undefined]).toContain((r.outputs.a as { tunnelAddress?: string }).tunnelAddress);
    });

    it("with those values known in the update renders the stack program's scripts", async () => {
        const r = await record(onVms());
        const stack = byName(await recordStackFile(readStackFile(toyFile)));
        for (const [name, c] of Object.entries(byName(r))) expect([name, c.inputs]).toEqual([name, stack[name].inputs]);
    });

    it("keeps secrets secret: a secret key only in the connection, a secret address in every script and report derived from it", async () => {
        const key = "-----BEGIN STAND-IN KEY-----";
        const r = await record(
            onVms((args, vms) => {
                args.a.host.connection.privateKey = pulumi.secret(key);
                args.b.host.connection.password = pulumi.secret("stand-in password");
                args.b.host.underlay.address = pulumi.secret(vms.calculon.publicIp);
            }),
        );
        const c = byName(r);
        expect(c["toy-a-doolittle"].secretPaths).toEqual(expect.arrayContaining(["connection"]));
        expect(JSON.stringify(r.resources.map((x) => x.inputs.create))).not.toContain(key);
        // calculon's address is in both endpoints' scripts (local on one, remote on the other; b's probe's too)
        for (const name of ["toy-a-doolittle", "toy-b-calculon"]) expect([name, c[name].secretPaths]).toEqual([name, expect.arrayContaining(["create"])]);
        const plain = await record(onVms((args) => (args.a.host.connection.privateKey = pulumi.secret(key))));
        expect(byName(plain)["toy-a-doolittle"].secretPaths).not.toContain("create");
        const report = await record(() => {
            const args = toyArgs();
            args.b.host.underlay.address = pulumi.secret("130.88.196.129");
            const t = new TunnelPair("toy", args);
            return {
                secret: pulumi.output(pulumi.isSecret(t.a.report)),
                plain: pulumi.output(pulumi.isSecret(new TunnelPair("toy2", { ...toyArgs(), stack: "other" }).a.report)),
            };
        });
        expect(report.outputs).toEqual({ secret: true, plain: false });
    });

    it("refuses a bad Output value once it resolves, naming the field and the value, before any Command is registered", () => {
        // in a process of its own, as a program runs: the refused inputs reject promises that
        // only the language host's handler (here the recording's) sees
        // (its exit status is the runtime's complaint about the promises a failed program leaves)
        const run = spawnSync(
            process.execPath,
            [require.resolve("ts-node/dist/bin"), "--transpile-only", path.join(__dirname, "support", "failedProgram.ts")],
            { encoding: "utf8" },
        );
        const result = JSON.parse(run.stdout) as { message: string; registered: string[] };
        expect(result.message).toContain("TunnelPair toy: invalid configuration:\n  b.tunnelAddress: 10.0.3.2 is not inside 10.0.2.0/24");
        expect(result.registered.sort()).toEqual(["test:index:Vm", "test:index:Vm", "tunnelpair:index:TunnelPair"]);
    });

    it("refuses bad plain args in the constructor, before anything is registered, with the args' own field paths", async () => {
        const err = await record(() => {
            const args = toyArgs();
            args.a.host.connection.port = 70000;
            args.b.clients = [{ host: { ...args.a.host } }];
            return { t: new TunnelPair("toy", args).tag };
        }).then(
            () => new Error("the program accepted it"),
            (e: Error & { registered?: number }) => e,
        );
        expect(err).toBeInstanceOf(pulumi.RunError);
        expect(err.message.split("\n")).toEqual(
            expect.arrayContaining([
                "  a.host.connection.port: 70000 is not an integer from 1 to 65535",
                "  b.clients[0].host: doolittle is an endpoint of the pair",
            ]),
        );
        expect((err as { registered?: number }).registered).toBe(0);
    });

    it("refuses two different hosts under one name", async () => {
        const err = await record(() => {
            const args = toyArgs();
            args.b.host.name = "doolittle";
            return { t: new TunnelPair("toy", args).tag };
        }).catch((e: Error) => e);
        expect((err as Error).message).toContain('b.host.name: "doolittle" is the name of another host at a.host');
    });

    it("says which graph-shaping field is not plain: what another language's SDK could send as one Output", () => {
        expect(shapeProblems(toyArgs())).toEqual([]);
        const args = toyArgs() as unknown as Record<string, unknown>;
        args.a = pulumi.secret(args.a);
        (args.b as { clients: unknown }).clients = pulumi.output([]);
        expect(shapeProblems(args as never).map((p) => p.propertyPath)).toEqual(["a", "b.clients"]);
        expect(() => new TunnelPair("toy", args as never)).toThrow(/invalid arguments/);
    });

    it("maps persist and repair between the args and the stack file (the args' repair 0 is the file's off)", () => {
        const args = { ...toyArgs(), persist: "boot", repair: 0 } as pulumi.Unwrap<TunnelPairArgs>;
        expect(pairConfig("toy", args).config.pairs).toMatchObject({ toy: { persist: "boot", repair: "off" } });
        expect(pairConfig("toy", { ...args, repair: 30 }).config.pairs).toMatchObject({ toy: { repair: 30 } });
        const c = readStackFile(toyFile).config;
        const pairs = { toy: { ...(c["tunnelpair:pairs"] as { toy: object }).toy, repair: "off" } };
        expect(pairArgs({ hosts: c["tunnelpair:hosts"], pairs }, "toy", "toy").repair).toBe(0);
    });

    it("converge: always makes each host's update differ from its create by a mark of the run, so every up runs it", async () => {
        const run = async (converge?: "always") =>
            commands(
                await record(() => {
                    const t = new TunnelPair("toy", { ...toyArgs(), converge });
                    return { tag: t.tag };
                }),
            );
        for (const c of await run()) expect(c.inputs.update).toBe(c.inputs.create);
        for (const c of await run("always")) {
            const [create, update] = [c.inputs.create as string, c.inputs.update as string];
            expect(update.startsWith(create)).toBe(true);
            expect(update.slice(create.length)).toMatch(/^\n# converge: always, run \d{4}-\d\d-\d\dT[\d:.]+Z$/);
        }
    });
});
