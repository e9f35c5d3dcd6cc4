// Per-host plans of the topologies, from their committed stack files: pure, no Pulumi.
import { objectLine, planPair } from "../components/plan";
import { stackModel } from "./support/toy";

function plans(stack: string) {
    const model = stackModel(stack);
    return model.pairs
        .flatMap((p) => planPair(model, p))
        .map(({ role, plan }) => ({
            role,
            plan,
            lines: plan.objects.map(objectLine),
            rules: plan.objects.flatMap((o) => (o.kind === "chain" ? o.rules : [])),
        }));
}
const on = (ps: ReturnType<typeof plans>, host: string, role?: string) => ps.find((p) => p.plan.host === host && (!role || p.role === role))!;

describe("the PS3 plan (how-to §5)", () => {
    const ps = plans("ps3");
    it("doolittle: tunl1 to ps3, its address without connected route, routes to ps3's tunnel and cluster networks", () => {
        expect(on(ps, "doolittle").lines).toEqual(
            expect.arrayContaining([
                "link tunl1 130.88.198.58 130.88.203.56 inherit",
                "addr 10.200.100.100/24 tunl1 - noprefixroute",
                "route 10.200.200.0/24 dev tunl1",
                "route 10.10.10.0/24 dev tunl1",
            ]),
        );
        expect(on(ps, "doolittle").lines).not.toContain("sysctl net/ipv4/ip_forward 1");
    });
    it("ps3: forwarding, and only doolittle's tunnel network forwarded to the cluster, plus replies", () => {
        const p = on(ps, "ps3");
        expect(p.lines).toEqual(
            expect.arrayContaining(["sysctl net/ipv4/ip_forward 1", "route 10.200.100.0/24 dev tunl1", "jump filter FORWARD TP-6e7a0906-FWD"]),
        );
        expect(p.rules.filter((r) => r.startsWith("-A TP-6e7a0906-FWD"))).toEqual([
            "-A TP-6e7a0906-FWD -i tunl1 -j TP-6e7a0906-SRC",
            "-A TP-6e7a0906-FWD -i tunl1 -o eth1 -s 10.200.100.0/24 -d 10.10.10.0/24 -j ACCEPT",
            "-A TP-6e7a0906-FWD -s 10.10.10.0/24 -d 10.200.100.0/24 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        ]);
    });
});

describe("the Man2 plan (how-to §6)", () => {
    const ps = plans("man2");
    const rfe = on(ps, "rfe");
    const chain = rfe.lines
        .find((l) => l.startsWith("chain filter "))!
        .split(" ")[2]
        .replace(/-SRC$/, "");
    it("rfe: IPIP and TCP from doolittle only, on the external address", () => {
        expect(rfe.rules).toEqual(
            expect.arrayContaining([
                `-A ${chain}-IN -s 130.88.198.58/32 -d 130.88.200.10/32 -p 4 -j ACCEPT`,
                `-A ${chain}-IN -s 130.88.198.58/32 -p tcp -j ACCEPT`,
            ]),
        );
    });
    it("rfe: forwards the cluster out eth3 to the campus, and doolittle's tunnel address and calculon in from the tunnel", () => {
        expect(rfe.rules).toEqual(
            expect.arrayContaining([
                `-A ${chain}-FWD -i eth0 -o eth3 -s 192.168.104.0/24 -d 130.88.0.0/16 -p tcp -j ACCEPT`,
                `-A ${chain}-FWD -i eth0 -o eth3 -s 192.168.104.0/24 -d 130.88.0.0/16 -p udp -j ACCEPT`,
                `-A ${chain}-FWD -i tunl1 -o eth0 -s 10.200.200.100/32 -d 192.168.104.0/24 -p tcp -j ACCEPT`,
                `-A ${chain}-FWD -i tunl1 -o eth0 -s 130.88.196.129/32 -d 192.168.104.0/24 -p udp -j ACCEPT`,
                `-A ${chain}-FWD -s 192.168.104.0/24 -d 130.88.196.129/32 -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
            ]),
        );
    });
    it("rfe: masquerades the cluster leaving by eth3, in a nat chain of its own", () => {
        expect(rfe.lines).toEqual(expect.arrayContaining([`chain nat ${chain}-NAT`, `jump nat POSTROUTING ${chain}-NAT`]));
        expect(rfe.rules).toContain(`-A ${chain}-NAT -s 192.168.104.0/24 -o eth3 -j MASQUERADE`);
    });
    it("rfe: the inner sources admitted from the tunnel are what lies behind doolittle, and calculon", () => {
        expect(rfe.rules.filter((r) => r.startsWith(`-A ${chain}-SRC`))).toEqual([
            `-A ${chain}-SRC -s 10.200.200.0/24 -j RETURN`,
            `-A ${chain}-SRC -s 130.88.196.129/32 -j RETURN`,
            `-A ${chain}-SRC -j DROP`,
        ]);
    });
    it("rfe: the tunnel's reverse-path filter is loose (rfe filters strictly)", () => {
        expect(rfe.lines).toContain("devsysctl tunl1 rp_filter 2");
    });
    it("doolittle: SSH from the tunnel networks and calculon; calculon forwarded into the tunnel, no masquerade", () => {
        const d = on(ps, "doolittle");
        const dc = d.lines
            .find((l) => l.startsWith("chain filter "))!
            .split(" ")[2]
            .replace(/-SRC$/, "");
        expect(d.rules).toEqual(
            expect.arrayContaining([
                `-A ${dc}-IN -s 10.200.100.0/24 -p tcp -m tcp --dport 22 -j ACCEPT`,
                `-A ${dc}-IN -s 130.88.196.129/32 -p tcp -m tcp --dport 22 -j ACCEPT`,
                `-A ${dc}-FWD -i eth0 -o tunl1 -s 130.88.196.129/32 -d 192.168.104.0/24 -j ACCEPT`,
            ]),
        );
        expect(d.lines.some((l) => l.startsWith("chain nat"))).toBe(false);
        expect(d.lines).toEqual(expect.arrayContaining(["route 10.200.100.0/24 dev tunl1", "route 192.168.104.0/24 dev tunl1"]));
    });
    it("calculon: the cluster network via its desktop gateway", () => {
        expect(on(ps, "calculon", "client").lines).toEqual(["route 192.168.104.0/24 via 130.88.198.58", "unit tunnelpair-man2-man2"]);
    });
    it("comp000: default gateway rfe, the 169.254.0.0/16 route dropped", () => {
        expect(on(ps, "comp000", "node").lines).toEqual(["gateway 192.168.1.253", "noroute 169.254.0.0/16", "unit tunnelpair-man2-man2"]);
    });
});

describe("the hub plan", () => {
    const ps = plans("hub");
    it("gives each spoke its own device, chains and state on rfe", () => {
        const rfe = ps.filter((p) => p.plan.host === "rfe");
        expect(rfe.map((p) => p.lines.find((l) => l.startsWith("link ")))).toEqual([
            "link tunl1 130.88.200.10 130.88.198.58 inherit",
            "link tunl2 130.88.200.10 130.89.1.10 inherit",
        ]);
        expect(new Set(rfe.map((p) => p.plan.stateDir)).size).toBe(2);
        const chains = rfe.flatMap((p) => p.lines.filter((l) => l.startsWith("chain ")));
        expect(new Set(chains).size).toBe(chains.length);
    });
    it("lets both spokes hold comp000's gateway: it is put back when the last one goes", () => {
        expect(ps.filter((p) => p.plan.host === "comp000").map((p) => p.lines)).toEqual([
            ["gateway 192.168.1.253", "noroute 169.254.0.0/16", "unit tunnelpair-hub-spoke1"],
            ["gateway 192.168.1.253", "noroute 169.254.0.0/16", "unit tunnelpair-hub-spoke2"],
        ]);
    });
});

describe("MTU quality: MSS clamping and the probe's ICMP", () => {
    it("an endpoint that forwards clamps the MSS of connections leaving by its tunnel, in a mangle chain it owns", () => {
        for (const stack of ["toy", "ps3", "man2", "hub"]) {
            for (const p of plans(stack).filter((x) => x.role === "a" || x.role === "b")) {
                const forwards = p.lines.includes("sysctl net/ipv4/ip_forward 1");
                const mss = p.plan.objects.flatMap((o) => (o.kind === "chain" && o.table === "mangle" ? [o] : []));
                expect([stack, p.plan.host, mss.length]).toEqual([stack, p.plan.host, forwards ? 1 : 0]);
                if (!forwards) continue;
                const chain = mss[0];
                const dev = p.lines.find((l) => l.startsWith("link "))!.split(" ")[1];
                expect(chain.rules).toEqual([`-A ${chain.name} -o ${dev} -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu`]);
                expect(p.lines).toContain(`jump mangle FORWARD ${chain.name}`);
            }
        }
    });
    it("admits ICMP between the two tunnel addresses only, on the tunnel device, both ways", () => {
        const doolittle = on(plans("toy"), "doolittle");
        const icmp = doolittle.rules.filter((r) => r.includes("-p icmp"));
        expect(icmp).toEqual([
            "-A TP-9c9dbaac-IN -i tunl1 -s 10.0.2.2/32 -d 10.0.1.2/32 -p icmp -j ACCEPT",
            "-A TP-9c9dbaac-OUT -o tunl1 -s 10.0.1.2/32 -d 10.0.2.2/32 -p icmp -j ACCEPT",
        ]);
    });
});

describe("addressing (issue 13): what lands on tunl1", () => {
    const tunnelAddr = (stack: string, host: string) => on(plans(stack), host).lines.filter((l) => l.startsWith("addr ") && l.includes(" tunl1 "));
    const tunnelRoutes = (stack: string, host: string) => on(plans(stack), host).lines.filter((l) => l.startsWith("route "));
    it("separate networks (the how-to): the address without its connected route, the peer's network routed", () => {
        expect(tunnelAddr("toy", "doolittle")).toEqual(["addr 10.0.1.2/24 tunl1 - noprefixroute"]);
        expect(tunnelRoutes("toy", "doolittle")).toEqual(["route 10.0.2.0/24 dev tunl1"]);
    });
    it.each([
        ["toy-30", "addr 10.0.0.1/30 tunl1 - prefixroute", "addr 10.0.0.2/30 tunl1 - prefixroute"],
        ["toy-31", "addr 10.0.0.0/31 tunl1 - prefixroute", "addr 10.0.0.1/31 tunl1 - prefixroute"],
        ["toy-peer", "addr 10.0.0.1/32 tunl1 - prefixroute 10.0.0.2/32", "addr 10.0.0.2/32 tunl1 - prefixroute 10.0.0.1/32"],
    ])("%s: the address with the kernel's route to the peer, and only the network behind it routed", (stack, a, b) => {
        expect(tunnelAddr(stack, "doolittle")).toEqual([a]);
        expect(tunnelAddr(stack, "calculon")).toEqual([b]);
        expect(tunnelRoutes(stack, "doolittle")).toEqual(["route 10.0.2.0/24 dev tunl1"]);
    });
    it("the inner-source check admits the peer's tunnel address and what lies behind it, whatever the addressing", () => {
        for (const stack of ["toy-30", "toy-peer"]) {
            const src = on(plans(stack), "doolittle").rules.filter((r) => r.includes("-SRC "));
            expect(src.map((r) => r.replace(/TP-[0-9a-f]+/, "TP"))).toEqual([
                "-A TP-SRC -s 10.0.2.0/24 -j RETURN",
                "-A TP-SRC -s 10.0.0.2/32 -j RETURN",
                "-A TP-SRC -j DROP",
            ]);
        }
    });
});

describe("persistence (issue 11)", () => {
    it("by default: the pair's unit, last, on every host it touches, repair every 60 s, persist not written", () => {
        const model = stackModel("man2");
        for (const { plan } of planPair(model, model.pairs[0])) {
            expect(plan.objects.map(objectLine).pop()).toBe("unit tunnelpair-man2-man2");
            expect(plan.persistence).toEqual({ repair: 60, explicit: false });
        }
    });
    it("persist: boot written, repair off: the same unit, explicit; persist: none: no unit", () => {
        const boot = stackModel("toy", (c) => Object.assign(c.pairs.toy, { persist: "boot", repair: "off" }));
        expect(planPair(boot, boot.pairs[0]).map(({ plan }) => plan.persistence)).toEqual([
            { repair: "off", explicit: true },
            { repair: "off", explicit: true },
        ]);
        const none = stackModel("toy", (c) => (c.pairs.toy.persist = "none"));
        for (const { plan } of planPair(none, none.pairs[0])) {
            expect(plan.objects.some((o) => o.kind === "unit")).toBe(false);
            expect(plan.persistence).toBeUndefined();
        }
    });
});

describe("the toy as GRE (issue 15, stacks/Pulumi.toy-gre.yaml)", () => {
    const ps = plans("toy-gre");
    it("doolittle: a gre1 with the pair's key, its MTU less 28, GRE (47) admitted from calculon only, IPv4 forwarding", () => {
        const d = on(ps, "doolittle");
        expect(d.lines).toEqual(
            expect.arrayContaining([
                "tunnel gre1 gre 130.88.198.58 130.88.196.129 inherit 42",
                "tunmtu gre1 auto 130.88.196.129 28",
                "addr 10.0.1.2/24 gre1 - noprefixroute",
                "route 10.0.2.0/24 dev gre1",
                "sysctl net/ipv4/ip_forward 1",
            ]),
        );
        expect(d.lines.some((l) => l.startsWith("link ") || l.startsWith("mtu "))).toBe(false);
        expect(d.rules).toEqual(
            expect.arrayContaining([
                "-A TP-77f2ed9d-IN -s 130.88.196.129/32 -d 130.88.198.58/32 -p 47 -j ACCEPT",
                "-A TP-77f2ed9d-OUT -s 130.88.198.58/32 -d 130.88.196.129/32 -p 47 -j ACCEPT",
                "-A TP-77f2ed9d-IN -i gre1 -j TP-77f2ed9d-SRC",
            ]),
        );
    });
    it("without a key: no key in the line, 24 bytes", () => {
        const model = stackModel("toy-gre", (c) => delete c.pairs.toy.key);
        const lines = planPair(model, model.pairs[0])[0].plan.objects.map(objectLine);
        expect(lines).toEqual(expect.arrayContaining(["tunnel gre1 gre 130.88.198.58 130.88.196.129 inherit -", "tunmtu gre1 auto 130.88.196.129 24"]));
    });
});
