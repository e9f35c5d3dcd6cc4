// The program under Pulumi mocks with the toy stack: what it registers, with which options,
// and what the provider would do on each kind of change.
import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { configKeys } from "../components/config";
import { deployStack } from "../components/program";
import { readStackFile } from "../components/stackFile";
import { recordProgram, RecordedResource } from "../replay/record";
import { Executor, StackState, up } from "../replay/engine";
import { diffCommand } from "../replay/provider";
import { commands, desiredLines, hostCommands, record } from "./support/record";
import { RawConfig, toyConfig, toyFile } from "./support/toy";

const byName = (rs: RecordedResource[]) => Object.fromEntries(rs.map((r) => [r.name, r]));

describe("the toy stack under mocks", () => {
    it("registers one TunnelPair with one Command per host, parented to it", async () => {
        const r = await record(toyConfig());
        expect(r.resources.map((x) => [x.type, x.name])).toEqual(
            expect.arrayContaining([
                ["tunnelpair:index:TunnelPair", "toy"],
                ["command:remote:Command", "toy-a-doolittle"],
                ["command:remote:Command", "toy-b-calculon"],
            ]),
        );
        expect(r.resources).toHaveLength(3);
        const pair = r.resources.find((x) => x.type === "tunnelpair:index:TunnelPair")!;
        for (const c of commands(r)) expect(c.parent).toBe(pair.urn);
    });

    it("sets the options the provider's semantics need", async () => {
        const r = await record(toyConfig());
        const { "toy-a-doolittle": a, "toy-b-calculon": b } = byName(commands(r));
        for (const c of hostCommands(r)) {
            expect(c.deleteBeforeReplace).toBe(true);
            expect(c.inputs.update).toBe(c.inputs.create);
            expect(c.inputs.addPreviousOutputInEnv).toBe(false);
            expect(c.inputs.environment).toBeUndefined();
            expect(c.inputs.stdin).toBeUndefined();
        }
        expect(a.inputs.triggers).toEqual(["tunnelpair:toy/toy", "130.88.198.58", 22]);
        expect(b.inputs.triggers).toEqual(["tunnelpair:toy/toy", "130.88.196.129", 22]);
        expect(a.inputs.connection).toMatchObject({ host: "130.88.198.58", port: 22, user: "root", dialErrorLimit: 10, perDialTimeout: 10 });
        // the probe ends b's apply, from b's tunnel address to a's: b waits for a; a waits for nothing
        expect(a.dependencies).toEqual([]);
        expect(b.dependencies).toEqual([a.urn]);
        expect(a.inputs.create).not.toContain("verify_pair() (");
        expect(b.inputs.create).toContain("\nverify_pair() (\n");
        expect(b.inputs.create).toContain("FROM='\\''10.0.2.2'\\''");
        expect(b.inputs.create).toContain("TO='\\''10.0.1.2'\\''");
        // (the probe is not in the delete, nor in the script the units store)
        expect(b.inputs.delete).not.toContain("verify_pair() (");
    });

    it("with verify: false registers no probe", async () => {
        const c = toyConfig();
        c.pairs.toy.verify = false;
        const r = await record(c);
        expect(
            commands(r)
                .map((x) => x.name)
                .sort(),
        ).toEqual(["toy-a-doolittle", "toy-b-calculon"]);
        // and the endpoints do not wait for each other: the engine runs them in parallel
        for (const x of commands(r)) {
            expect(x.dependencies).toEqual([]);
            expect(x.inputs.create).not.toContain("verify_pair() (");
        }
    });

    it("renders commands for every step of the how-to's §4 on the toy", async () => {
        const r = await record(toyConfig());
        const { "toy-a-doolittle": a, "toy-b-calculon": b } = byName(commands(r));
        const doolittle = desiredLines(a.inputs.create as string);
        const calculon = desiredLines(b.inputs.create as string);
        // both: ip_forward=1 and a firewall opening for IPIP (protocol 4) from the peer only
        for (const lines of [doolittle, calculon]) expect(lines).toContain("sysctl net/ipv4/ip_forward 1");
        expect(a.inputs.create).toContain("-A TP-9c9dbaac-IN -s 130.88.196.129/32 -d 130.88.198.58/32 -p 4 -j ACCEPT");
        expect(b.inputs.create).toContain("-A TP-9c9dbaac-IN -s 130.88.198.58/32 -d 130.88.196.129/32 -p 4 -j ACCEPT");
        // doolittle: alias 10.0.1.1/24 on eth0 (eth0:0) unrouted; tunl1 ipip remote calculon,
        // local doolittle; 10.0.1.2/24 without connected route; 10.0.2.0/24 dev tunl1
        expect(doolittle).toEqual(
            expect.arrayContaining([
                "addr 10.0.1.1/24 eth0 eth0:0 noprefixroute",
                "link tunl1 130.88.198.58 130.88.196.129 inherit",
                "addr 10.0.1.2/24 tunl1 - noprefixroute",
                "route 10.0.2.0/24 dev tunl1",
                "state tunl1 up",
                "jump filter INPUT TP-9c9dbaac-IN",
            ]),
        );
        // calculon: the mirror image
        expect(calculon).toEqual(
            expect.arrayContaining([
                "addr 10.0.2.1/24 eth0 eth0:0 noprefixroute",
                "link tunl1 130.88.196.129 130.88.198.58 inherit",
                "addr 10.0.2.2/24 tunl1 - noprefixroute",
                "route 10.0.1.0/24 dev tunl1",
            ]),
        );
        // the delete does not depend on the configuration: it reads the manifest on the host
        expect(a.inputs.delete).toContain("\nremove\n");
        expect(desiredLines(a.inputs.delete as string)).toEqual([""]);
    });

    it("registers the same in preview as in an update", async () => {
        const up = await record(toyConfig());
        const preview = await record(toyConfig(), { preview: true });
        expect(preview.resources.map((x) => [x.name, x.inputs])).toEqual(up.resources.map((x) => [x.name, x.inputs]));
    });

    it("exports each pair's devices, addresses and tag", async () => {
        const r = await record(toyConfig());
        expect(r.outputs.tunnels).toMatchObject({
            toy: {
                tag: "tunnelpair:toy/toy",
                a: { host: "doolittle", interface: "tunl1", tunnelAddress: "10.0.1.2" },
                b: { host: "calculon", interface: "tunl1", tunnelAddress: "10.0.2.2" },
            },
        });
    });

    it("warns at preview about unpinned host keys and the open firewall mode", async () => {
        const c = toyConfig();
        c.pairs.toy.firewall = "open";
        const r = await record(c, { preview: true });
        expect(r.logs.map((l) => l.message)).toEqual([
            "doolittle: connection.hostKey is not set: the identity of 130.88.198.58 is not verified",
            "calculon: connection.hostKey is not set: the identity of 130.88.196.129 is not verified",
            'pair toy: firewall is "open": every firewall rule on doolittle and calculon is off until destroy restores them',
        ]);
    });

    it("fails before registering anything when the configuration is bad", async () => {
        const c = toyConfig();
        c.pairs.toy.b.tunnelAddress = "10.0.3.2";
        c.pairs.toy.a.interface = "tunl0";
        await expect(record(c, { preview: true })).rejects.toThrow(
            /pairs\.toy\.a\.interface: "tunl0" is the kernel's shared fallback device[\s\S]*pairs\.toy\.b\.tunnelAddress: 10\.0\.3\.2 is not inside 10\.0\.2\.0\/24/,
        );
        // a RunError: Pulumi prints its message without a stack trace
        const err = await record(c, { preview: true }).catch((e) => e);
        expect(pulumi.RunError.isInstance(err)).toBe(true);
        expect(err.registered).toBe(0);
    });
});

describe("credentials stay secret", () => {
    // a stand-in, not a key: only its uniqueness matters here
    const key = "-----BEGIN FAKE TEST KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAtestkeymaterial\n-----END FAKE TEST KEY-----";
    const password = "s3cr3t-pa55";

    it("never appear in a command string, an output or a log, and the connection is secret", async () => {
        const c = toyConfig();
        delete c.hosts.doolittle.connection.agent;
        c.hosts.doolittle.connection.privateKey = key;
        delete c.hosts.calculon.connection.agent;
        c.hosts.calculon.connection.password = password;
        const r = await record(c, { secretKeys: [configKeys.hosts] });
        const { "toy-a-doolittle": a, "toy-b-calculon": b } = byName(commands(r));
        expect(a.secretPaths).toContain("connection");
        expect(b.secretPaths).toContain("connection");
        expect((a.inputs.connection as { privateKey?: unknown }).privateKey).toBe(key);
        expect((b.inputs.connection as { password?: unknown }).password).toBe(password);
        const visible = JSON.stringify([commands(r).map((x) => [x.inputs.create, x.inputs.update, x.inputs.delete, x.inputs.triggers]), r.outputs, r.logs]);
        for (const s of [key, "testkeymaterial", password]) expect(visible).not.toContain(s);
    });

    it.each(["toy", "ps3", "man2", "hub"])("never appear in %s's commands, outputs or logs, jump hosts included", async (stack) => {
        const sf = readStackFile(path.join(__dirname, "..", "stacks", `Pulumi.${stack}.yaml`));
        const hosts = structuredClone(sf.config[configKeys.hosts]) as Record<string, { connection: Record<string, unknown> }>;
        Object.entries(hosts).forEach(([name, h], i) => {
            delete h.connection.agent;
            if (i % 2 === 0) h.connection.privateKey = `${key}-${name}`;
            else h.connection.password = `${password}-${name}`;
        });
        const r = await recordProgram({ stack, config: { ...sf.config, [configKeys.hosts]: hosts }, secretKeys: [configKeys.hosts], program: deployStack });
        const cmds = commands(r);
        expect(cmds.length).toBeGreaterThanOrEqual(2);
        for (const c of cmds) expect(c.secretPaths).toContain("connection");
        const visible = JSON.stringify([cmds.map((x) => [x.inputs.create, x.inputs.update, x.inputs.delete, x.inputs.triggers]), r.outputs, r.logs]);
        for (const s of ["testkeymaterial", password]) expect(visible).not.toContain(s);
        // the jump host's credentials travel inside the (secret) connection, nowhere else
        const proxied = cmds.filter((x) => (x.inputs.connection as { proxy?: unknown }).proxy);
        if (stack === "man2" || stack === "hub") expect(proxied.length).toBeGreaterThan(0);
    });

    it("are refused when the stack file holds them in plain text", async () => {
        const c = toyConfig();
        c.hosts.doolittle.connection.password = password;
        const err = await record(c, { secretKeys: [] }).catch((e) => e);
        expect(String(err.message)).toContain("hosts.doolittle.connection.password: is stored in plain text");
        expect(String(err.message)).not.toContain(password);
    });
});

describe("what a change to each field makes the provider do", () => {
    type Change = [string, (c: RawConfig) => void, { a: string; b: string }];
    const changes: Change[] = [
        ["a route", (c) => c.pairs.toy.a.routes.push("10.0.9.0/24"), { a: "update", b: "update" }],
        // a admits the probe's ICMP from b's tunnel address
        ["a tunnel address", (c) => (c.pairs.toy.b.tunnelAddress = "10.0.2.3"), { a: "update", b: "update" }],
        ["a local address", (c) => (c.pairs.toy.a.localAddresses[0].address = "10.0.1.9/24"), { a: "update", b: "update" }],
        ["the interface name", (c) => (c.pairs.toy.a.interface = "tunl5"), { a: "update", b: "update" }],
        ["the MTU", (c) => (c.pairs.toy.a.mtu = 1400), { a: "update", b: "update" }],
        ["the TTL", (c) => (c.pairs.toy.b.ttl = 64), { a: "same", b: "update" }],
        ["forwarding", (c) => (c.pairs.toy.a.forwarding = false), { a: "update", b: "update" }],
        ["the firewall mode", (c) => (c.pairs.toy.firewall = "none"), { a: "update", b: "update" }],
        ["the peer's underlay address", (c) => (c.hosts.calculon.underlay.address = "130.88.196.130"), { a: "update", b: "update" }],
        [
            "the SSH user",
            (c) => {
                c.hosts.doolittle.connection.user = "admin";
                c.hosts.doolittle.sudo = true;
            },
            { a: "update", b: "update" },
        ],
        ["the SSH address: another machine", (c) => (c.hosts.doolittle.connection.host = "130.88.198.59"), { a: "replace", b: "update" }],
        ["the SSH port", (c) => (c.hosts.calculon.connection.port = 2222), { a: "same", b: "replace" }],
    ];
    it.each(changes)("%s", async (_what, mutate, expected) => {
        const before = byName(commands(await record(toyConfig())));
        const c = toyConfig();
        mutate(c);
        const after = byName(commands(await record(c)));
        expect(Object.keys(after)).toEqual(Object.keys(before));
        expect({
            a: diffCommand(before["toy-a-doolittle"].inputs, after["toy-a-doolittle"].inputs),
            b: diffCommand(before["toy-b-calculon"].inputs, after["toy-b-calculon"].inputs),
        }).toEqual(expected);
        // whatever happens to an endpoint, b's apply, which ends with the probe, runs again after it
        expect(diffCommand(before["toy-b-calculon"].inputs, after["toy-b-calculon"].inputs)).not.toBe("same");
    });

    it("an unchanged stack: no Command changes, the probe included (a second preview is empty)", async () => {
        const before = byName(commands(await record(toyConfig())));
        const after = byName(commands(await record(toyConfig())));
        for (const name of Object.keys(before)) expect([name, diffCommand(before[name].inputs, after[name].inputs)]).toEqual([name, "same"]);
    });

    it("a renamed pair is a new resource: the old one is deleted by its stored delete", async () => {
        // the engine's up over a host that records every command it is given
        const ran: { host: string; command: string }[] = [];
        const exec: Executor = (conn, command) => (ran.push({ host: conn.host, command }), Promise.resolve({ code: 0, stdout: "", stderr: "", ms: 0 }));
        const state = new StackState();
        const before = await record(toyConfig());
        await up(before, state, exec);
        const stored = byName(commands(before));
        const c = toyConfig();
        c.pairs.renamed = c.pairs.toy;
        delete c.pairs.toy;
        const after = await record(c);
        ran.length = 0;
        const report = await up(after, state, exec);
        expect(
            commands(after)
                .map((x) => x.name)
                .sort(),
        ).toEqual(["renamed-a-doolittle", "renamed-b-calculon"]);
        // what the engine ran: the new pair's creates, then the old Commands' deletes as stored at the first up
        expect(report.steps.map((x) => `${x.op} ${x.name}`).sort()).toEqual([
            "create renamed-a-doolittle",
            "create renamed-b-calculon",
            "delete toy-a-doolittle",
            "delete toy-b-calculon",
        ]);
        for (const name of ["toy-a-doolittle", "toy-b-calculon"]) {
            const del = stored[name].inputs.delete as string;
            expect(del).toContain("toy/toy"); // the old pair's state directory, which the new pair's delete does not name
            expect(ran).toContainEqual({ host: (stored[name].inputs.connection as { host: string }).host, command: del });
        }
        expect(
            ran
                .filter((r) => r.command.includes("toy/toy"))
                .map((r) => r.command)
                .sort(),
        ).toEqual([stored["toy-a-doolittle"].inputs.delete, stored["toy-b-calculon"].inputs.delete].sort());
        // the old resources are gone from the state, the new ones are in it
        expect([...state.resources.values()].map((r) => r.name).sort()).toEqual(["renamed-a-doolittle", "renamed-b-calculon"]);
    });

    it("uses the stack file as committed", () => {
        expect(toyFile().secretKeys).toEqual([]);
    });
});
