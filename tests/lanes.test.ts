// Issue 14 item 2: the Commands of the hosts behind one jump host wait in `jumpSessions` lanes,
// so that a pair with many compute nodes does not open all their sessions through it at once.
// The lane computation is pure (components/lanes.ts); under mocks, what each Command's
// registration depends on, from the component and from the stack-config program.
import * as pulumi from "@pulumi/pulumi";
import { TunnelPair, TunnelPairArgs } from "../components";
import { hopOf, lanePredecessors } from "../components/lanes";
import { runDoctor } from "../doctor/doctor";
import { pairArgs, shapeProblems } from "../components/pairConfig";
import { Recording } from "../replay/record";
import { record as recordComponent, Vm } from "./support/component";
import { hostCommands, record } from "./support/record";
import { asStackConfig, RawConfig, stackModel, toyConfig } from "./support/toy";

const node = (i: number) => `comp${String(i).padStart(3, "0")}`;

/** Man2 with `n` compute nodes behind rfe (comp000 and its copies), rfe's connection changed by `rfe`. */
function man2With(n: number, rfe: Record<string, unknown> = {}): RawConfig {
    const c = toyConfig("man2");
    Object.assign(c.hosts.rfe.connection, rfe);
    c.pairs.man2.a.computeNodes = [];
    for (let i = 0; i < n; i++) {
        const address = `192.168.104.${100 + i}`;
        c.hosts[node(i)] = {
            connection: { host: address, user: "root", agent: true, proxy: "rfe" },
            underlay: { interface: "eth0", address: `${address}/16` },
        };
        c.pairs.man2.a.computeNodes.push({ host: node(i), gateway: "192.168.1.253", dropLinkLocal: true });
    }
    return c;
}

/**
 * The pair as component args. Through JSON, as Pulumi's config hands a stack's values over:
 * toyConfig's structuredClone makes, under jest, arrays of another realm, which
 * pulumi.output (`instanceof Array`) would take for objects.
 */
const man2Args = (c: RawConfig): TunnelPairArgs => pairArgs(asStackConfig(JSON.parse(JSON.stringify(c)) as RawConfig), "man2", "man2");

/** Each host Command's dependencies, by name. */
function dependencies(r: Recording): Record<string, string[]> {
    const names = new Map(r.resources.map((x) => [x.urn, x.name]));
    return Object.fromEntries(hostCommands(r).map((c) => [c.name, c.dependencies.map((u) => names.get(u) ?? u).sort()]));
}

/**
 * What dependencies() gives for Man2 whose node k waits for node k - w, plus `also` on every
 * host Command (and b waits for a: its apply ends with the probe).
 */
function laned(n: number, w: number, also: string[] = []): Record<string, string[]> {
    const out: Record<string, string[]> = { "man2-a-rfe": also, "man2-b-doolittle": [...also, "man2-a-rfe"].sort(), "man2-client-calculon": also };
    for (let k = 0; k < n; k++) out[`man2-node-${node(k)}`] = [...also, ...(k >= w ? [`man2-node-${node(k - w)}`] : [])].sort();
    return out;
}

describe("lanePredecessors", () => {
    const behind = (key: string, width = 8) => ({ key, width });

    it("puts 20 hosts behind one jump host in 8 lanes: host k waits for host k-8, the first 8 for none", () => {
        const lanes = lanePredecessors(Array.from({ length: 20 }, () => behind("rfe")));
        expect(lanes).toEqual(Array.from({ length: 20 }, (_, k) => (k >= 8 ? k - 8 : undefined)));
    });

    it("draws as many lanes as the jump host's width", () => {
        expect(lanePredecessors(Array.from({ length: 7 }, () => behind("rfe", 3)))).toEqual([undefined, undefined, undefined, 0, 1, 2, 3]);
        expect(lanePredecessors([behind("rfe", 1), behind("rfe", 1), behind("rfe", 1)])).toEqual([undefined, 0, 1]);
    });

    it("adds nothing for one host, nor for hosts without a jump host", () => {
        expect(lanePredecessors([behind("rfe")])).toEqual([undefined]);
        expect(lanePredecessors([undefined, undefined, undefined])).toEqual([undefined, undefined, undefined]);
    });

    it("counts only the hosts behind the jump host, in order, an endpoint behind it included", () => {
        // a direct endpoint, an endpoint behind rfe, then nodes behind rfe
        expect(lanePredecessors([undefined, behind("rfe", 2), undefined, behind("rfe", 2), behind("rfe", 2), behind("rfe", 2)])).toEqual([
            undefined,
            undefined,
            undefined,
            undefined,
            1,
            3,
        ]);
    });

    it("lanes the hosts behind different jump hosts separately", () => {
        const hops = Array.from({ length: 8 }, (_, i) => behind(i % 2 === 0 ? "rfe" : "ps3", 2));
        expect(lanePredecessors(hops)).toEqual([undefined, undefined, undefined, undefined, 0, 1, 2, 3]);
    });

    it("takes the smallest width where the hosts behind one jump host give different ones", () => {
        expect(lanePredecessors([behind("rfe", 8), behind("rfe", 2), behind("rfe", 8)])).toEqual([undefined, undefined, 0]);
    });
});

describe("hopOf", () => {
    it("groups by host and port where they are plain, the default port being 22", () => {
        const a = hopOf({ host: "comp000", agent: true, proxy: { host: "130.88.200.10", agent: true } });
        const b = hopOf({ host: "comp001", agent: true, proxy: { host: "130.88.200.10", port: 22, agent: true, jumpSessions: 3 } });
        expect(a!.key).toEqual(b!.key);
        expect([a!.width, b!.width]).toEqual([8, 3]);
        expect(hopOf({ host: "comp002", proxy: { host: "130.88.200.10", port: 2222 } })!.key).not.toEqual(a!.key);
        expect(hopOf({ host: "130.88.200.10" })).toBeUndefined();
    });

    it("groups by the proxy object itself where its address is an Output", () => {
        const proxy = { host: pulumi.output("130.88.200.10"), agent: true };
        const one = hopOf({ host: "comp000", proxy });
        expect(one!.key).toBe(proxy);
        expect(hopOf({ host: "comp001", proxy })!.key).toBe(one!.key);
        expect(hopOf({ host: "comp002", proxy: { ...proxy } })!.key).not.toBe(one!.key);
    });
});

describe("lanes under mocks", () => {
    it("the stack-config program: 20 compute nodes behind rfe wait in 8 lanes; the endpoints and the client as before: b after a, for the probe that ends its apply", async () => {
        const r = await record(man2With(20), { stack: "man2" });
        expect(dependencies(r)).toEqual(laned(20, 8));
        const names = new Map(r.resources.map((x) => [x.urn, x.name]));
        const b = r.resources.find((x) => x.name === "man2-b-doolittle")!;
        expect(b.dependencies.map((u) => names.get(u))).toEqual(["man2-a-rfe"]);
    });

    it("the stack-config program: jumpSessions 3 on rfe's own entry gives 3 lanes", async () => {
        expect(dependencies(await record(man2With(20, { jumpSessions: 3 }), { stack: "man2" }))).toEqual(laned(20, 3));
    });

    it("one compute node adds no dependency", async () => {
        expect(dependencies(await record(man2With(1), { stack: "man2" }))).toEqual(laned(1, 8));
    });

    it("jumpSessions changes no Command's inputs: the provider's connection never holds it", async () => {
        const plain = await record(man2With(2), { stack: "man2" });
        const set = await record(man2With(2, { jumpSessions: 1 }), { stack: "man2" });
        // (by name: a Command is registered once what it waits for is, in an order of the runtime's)
        const inputs = (r: Recording) => [...r.resources].sort((x, y) => x.name.localeCompare(y.name)).map((x) => [x.name, x.inputs]);
        expect(inputs(set)).toEqual(inputs(plain));
        expect(JSON.stringify(set.resources.map((x) => x.inputs))).not.toContain("jumpSessions");
        expect(dependencies(set)).toEqual(laned(2, 1));
    });

    it("the component: nodes behind two jump hosts are laned separately", async () => {
        const args = man2Args(man2With(8));
        const other = { host: "130.88.200.11", agent: true, jumpSessions: 2 };
        args.a.computeNodes!.forEach((n, i) => {
            n.host.connection.proxy = i % 2 === 0 ? { ...n.host.connection.proxy!, jumpSessions: 2 } : other;
        });
        const r = await recordComponent(() => ({ tag: new TunnelPair("man2", args).tag }));
        const d = dependencies(r);
        const waits = (k: number) => d[`man2-node-${node(k)}`];
        expect([0, 1, 2, 3].map(waits)).toEqual([[], [], [], []]);
        expect([4, 5, 6, 7].map(waits)).toEqual([[`man2-node-${node(0)}`], [`man2-node-${node(1)}`], [`man2-node-${node(2)}`], [`man2-node-${node(3)}`]]);
    });

    it.each([
        ["a list", (vm: Vm) => [vm]],
        ["an Output", (vm: Vm) => pulumi.output([vm]) as unknown as pulumi.Resource[]],
    ])("the component's own dependsOn (%s) stays on every host Command, beside the lanes", async (_what, dependsOn) => {
        const r = await recordComponent(() => {
            const vm = new Vm("key");
            return { tag: new TunnelPair("man2", man2Args(man2With(10)), { dependsOn: dependsOn(vm) }).tag };
        });
        expect(dependencies(r)).toEqual(laned(10, 8, ["key"]));
    });

    it("refuses a bad jumpSessions naming the field and the value, and one given as an Output naming the field", async () => {
        const bad = man2Args(man2With(1));
        bad.a.computeNodes![0].host.connection.proxy!.jumpSessions = 0;
        const err = await recordComponent(() => ({ tag: new TunnelPair("man2", bad).tag })).catch((e: Error & { registered?: number }) => e);
        expect(err).toBeInstanceOf(pulumi.RunError);
        expect((err as Error).message).toContain("a.computeNodes[0].host.connection.proxy.jumpSessions: 0 is not an integer from 1 to 100");
        expect((err as { registered?: number }).registered).toBe(0);

        const deferred = man2Args(man2With(1));
        (deferred.a.computeNodes![0].host.connection.proxy as unknown as Record<string, unknown>).jumpSessions = pulumi.output(3);
        expect(shapeProblems(deferred)).toEqual([
            {
                propertyPath: "a.computeNodes[0].host.connection.proxy.jumpSessions",
                reason: expect.stringMatching(/^must be a plain number when the component is made, found an Output .*: it decides in what order/) as string,
            },
        ]);
        expect(() => new TunnelPair("man2", deferred)).toThrow(/invalid arguments/);
    });
});

describe("the doctor's sessions", () => {
    it("through a jump host are at most its jumpSessions at once (20 nodes behind rfe, width 8 then 3); the direct hosts wait for none", async () => {
        for (const width of [8, 3]) {
            const model = stackModel("man2", (c) => Object.assign(c, man2With(20, { jumpSessions: width })));
            let open = 0;
            let most = 0;
            const direct: string[] = [];
            const report = await runDoctor(model, async (conn) => {
                if (conn.proxy === undefined) direct.push(conn.host);
                else most = Math.max(most, ++open);
                await new Promise((r) => setTimeout(r, 5));
                if (conn.proxy !== undefined) open--;
                return { code: 1, stdout: "", stderr: "not in a test", ms: 0 };
            });
            expect(report.hosts).toHaveLength(23);
            expect(most).toBe(width);
            expect(direct).toHaveLength(3);
        }
    });

    it("a failed session does not hold up the host waiting for it in its lane", async () => {
        const model = stackModel("man2", (c) => Object.assign(c, man2With(4, { jumpSessions: 1 })));
        const order: string[] = [];
        const report = await runDoctor(model, (conn) => {
            order.push(conn.host);
            return conn.host.endsWith(".101")
                ? Promise.reject(new Error("dial refused"))
                : Promise.resolve({ code: 1, stdout: "", stderr: "not in a test", ms: 0 });
        });
        // the four nodes one after another, in their order, each read though the second failed
        expect(order.filter((h) => h.startsWith("192.168.104."))).toEqual(["192.168.104.100", "192.168.104.101", "192.168.104.102", "192.168.104.103"]);
        expect(report.hosts.find((h) => h.host === "comp001")!.findings[0].detail).toMatch(/cannot read comp001 .*dial refused/);
    });
});
