import { addressingOf, overheadOf } from "../components/model";
import { ConfigError, validateConfig } from "../components/validate";
import { RawConfig, stackModel, toyConfig } from "./support/toy";

function problems(mutate: (c: RawConfig) => void, opts: { hostsAreSecret?: boolean } = {}): string[] {
    const c = toyConfig();
    mutate(c);
    try {
        validateConfig(c, { stack: "toy", ...opts });
    } catch (e) {
        if (e instanceof ConfigError) return [...e.problems];
        throw e;
    }
    return [];
}

describe("validateConfig on the toy stack", () => {
    it("accepts the committed toy configuration and fills in the defaults", () => {
        const m = validateConfig(toyConfig(), { stack: "toy" });
        expect(m.pairs).toHaveLength(1);
        const [p] = m.pairs;
        expect(p.firewall).toBe("owned");
        expect(p.a).toMatchObject({ host: "doolittle", interface: "tunl1", tunnelAddress: "10.0.1.2", mtu: "auto", ttl: "inherit", keepConnectedRoute: false });
        expect(p.a.network.cidr).toBe("10.0.1.0/24");
        expect(p.a.localAddresses).toEqual([{ address: "10.0.1.1", prefix: 24, interface: "eth0", label: "eth0:0", keepConnectedRoute: false }]);
        expect(p.b.routes.map((r) => r.cidr)).toEqual(["10.0.1.0/24"]);
        expect(m.hosts.doolittle.connection).toMatchObject({ port: 22, user: "root", agent: true, dialErrorLimit: 10, perDialTimeout: 10, jumpSessions: 8 });
    });

    it("defaults the interface to tunl1 and the firewall to owned", () => {
        const c = toyConfig();
        delete c.pairs.toy.a.interface;
        delete c.pairs.toy.firewall;
        const m = validateConfig(c, { stack: "toy" });
        expect(m.pairs[0].a.interface).toBe("tunl1");
        expect(m.pairs[0].firewall).toBe("owned");
    });

    it("accepts the defaults written out: mtu auto, ttl inherit, and a pinned host key", () => {
        const c = toyConfig();
        c.pairs.toy.a.mtu = "auto";
        c.pairs.toy.a.ttl = "inherit";
        c.hosts.doolittle.connection.hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        const m = validateConfig(c, { stack: "toy" });
        expect(m.pairs[0].a).toMatchObject({ mtu: "auto", ttl: "inherit" });
        expect(m.hosts.doolittle.connection.hostKey).toBe(c.hosts.doolittle.connection.hostKey);
    });

    it("lists every problem, not just the first", () => {
        const p = problems((c) => {
            c.pairs.toy.a.tunnelAddress = "10.9.9.9";
            c.pairs.toy.b.mtu = 20;
        });
        expect(p).toEqual(["pairs.toy.a.tunnelAddress: 10.9.9.9 is not inside 10.0.1.0/24", "pairs.toy.b.mtu: 20 is not an integer from 68 to 65515"]);
    });
});

// Each bad configuration is rejected with a message that names the field and the value.
const bad: [string, (c: RawConfig) => void, string][] = [
    [
        "a tunnel address outside its network",
        (c) => (c.pairs.toy.b.tunnelAddress = "10.0.3.2"),
        "pairs.toy.b.tunnelAddress: 10.0.3.2 is not inside 10.0.2.0/24",
    ],
    ["a malformed tunnel address", (c) => (c.pairs.toy.a.tunnelAddress = "10.0.1.256"), "pairs.toy.a.tunnelAddress: 10.0.1.256 is not an IPv4 address"],
    ["a tunnel address with a prefix", (c) => (c.pairs.toy.a.tunnelAddress = "10.0.1.2/24"), "pairs.toy.a.tunnelAddress: 10.0.1.2/24 is not an IPv4 address"],
    [
        "the network address as tunnel address",
        (c) => (c.pairs.toy.a.tunnelAddress = "10.0.1.0"),
        "pairs.toy.a.tunnelAddress: 10.0.1.0 is the network or broadcast address of 10.0.1.0/24",
    ],
    ["a malformed network", (c) => (c.pairs.toy.a.network = "10.0.1/24"), "pairs.toy.a.network: 10.0.1/24 is not an IPv4 network"],
    ["a prefix out of range", (c) => (c.pairs.toy.a.network = "10.0.1.0/33"), "pairs.toy.a.network: 10.0.1.0/33 is not an IPv4 network"],
    [
        "a network with host bits",
        (c) => (c.pairs.toy.a.network = "10.0.1.1/24"),
        "pairs.toy.a.network: 10.0.1.1/24 has host bits set (the network is 10.0.1.0/24)",
    ],
    ["a missing network", (c) => delete c.pairs.toy.a.network, "pairs.toy.a.network: is required"],
    [
        "overlapping tunnel networks",
        (c) => {
            c.pairs.toy.b.network = "10.0.0.0/16";
            c.pairs.toy.b.tunnelAddress = "10.0.2.2";
        },
        "pairs.toy.b.network: 10.0.0.0/16 overlaps a.network 10.0.1.0/24",
    ],
    [
        "local = remote (one host on both ends)",
        (c) => (c.pairs.toy.b.host = "doolittle"),
        "pairs.toy.b.host: doolittle (130.88.198.58) is the same host as a (130.88.198.58): local = remote",
    ],
    ["local = remote (two names, one address)", (c) => (c.hosts.calculon.underlay.address = "130.88.198.58"), "local = remote"],
    [
        "a route that captures the peer's underlay address",
        (c) => c.pairs.toy.a.routes.push("130.88.0.0/16"),
        "pairs.toy.a.routes[1]: 130.88.0.0/16 contains the peer's underlay address 130.88.196.129",
    ],
    [
        "a default route through the tunnel",
        (c) => (c.pairs.toy.b.routes = ["default"]),
        "pairs.toy.b.routes[0]: 0.0.0.0/0 contains the peer's underlay address 130.88.198.58",
    ],
    ["a malformed route", (c) => (c.pairs.toy.a.routes = ["10.0.2.0/24", "nowhere"]), "pairs.toy.a.routes[1]: nowhere is not an IPv4 network"],
    ["routes that are not a list", (c) => (c.pairs.toy.a.routes = "10.0.2.0/24"), 'pairs.toy.a.routes: "10.0.2.0/24" is not a list'],
    [
        "tunl0, the kernel's fallback device",
        (c) => (c.pairs.toy.a.interface = "tunl0"),
        'pairs.toy.a.interface: "tunl0" is the kernel\'s shared fallback device',
    ],
    [
        "an interface name over 15 characters",
        (c) => (c.pairs.toy.a.interface = "tunnel-to-calculon"),
        'pairs.toy.a.interface: "tunnel-to-calculon" is not a valid interface name',
    ],
    ["an interface name with illegal characters", (c) => (c.pairs.toy.a.interface = "tun l1"), 'pairs.toy.a.interface: "tun l1" is not a valid interface name'],
    [
        "an interface name with shell metacharacters",
        (c) => (c.pairs.toy.a.interface = "t;reboot"),
        'pairs.toy.a.interface: "t;reboot" is not a valid interface name',
    ],
    ["the underlay interface as tunnel device", (c) => (c.pairs.toy.a.interface = "eth0"), 'pairs.toy.a.interface: "eth0" is the host\'s underlay interface'],
    ["an MTU below 68", (c) => (c.pairs.toy.a.mtu = 67), "pairs.toy.a.mtu: 67 is not an integer from 68 to 65515"],
    ["an MTU above 65515", (c) => (c.pairs.toy.a.mtu = 70000), "pairs.toy.a.mtu: 70000 is not an integer from 68 to 65515"],
    ["an MTU that is not a number", (c) => (c.pairs.toy.a.mtu = "1480"), 'pairs.toy.a.mtu: "1480" is not an integer from 68 to 65515'],
    ["a TTL of 0", (c) => (c.pairs.toy.a.ttl = 0), "pairs.toy.a.ttl: 0 is not an integer from 1 to 255"],
    ["an undeclared host", (c) => (c.pairs.toy.b.host = "calculon2"), 'pairs.toy.b.host: "calculon2" is not a declared host'],
    ["an undeclared jump host", (c) => (c.hosts.calculon.connection.proxy = "rfe"), 'hosts.calculon.connection.proxy: "rfe" is not a declared host'],
    ["missing credentials", (c) => delete c.hosts.calculon.connection.agent, "hosts.calculon.connection: no credentials"],
    ["a missing connection host", (c) => delete c.hosts.doolittle.connection.host, "hosts.doolittle.connection.host: is required"],
    ["a port out of range", (c) => (c.hosts.doolittle.connection.port = 70000), "hosts.doolittle.connection.port: 70000 is not an integer from 1 to 65535"],
    [
        "a malformed underlay address",
        (c) => (c.hosts.doolittle.underlay.address = "130.88.198"),
        "hosts.doolittle.underlay.address: 130.88.198 is not an IPv4 address",
    ],
    ["a missing underlay", (c) => delete c.hosts.doolittle.underlay, "hosts.doolittle.underlay: nothing is not an object"],
    ["sudo for root", (c) => (c.hosts.doolittle.sudo = true), "hosts.doolittle.sudo: true needs a connection.user other than root"],
    ["a misspelt field", (c) => (c.pairs.toy.a.tunnelAdress = "10.0.1.2"), "pairs.toy.a.tunnelAdress: unknown field"],
    ["an unknown firewall mode", (c) => (c.pairs.toy.firewall = "stop"), 'pairs.toy.firewall: "stop" is not one of owned, open, none'],
    [
        "a local address without prefix",
        (c) => (c.pairs.toy.a.localAddresses[0].address = "10.0.1.1"),
        "pairs.toy.a.localAddresses[0].address: 10.0.1.1 is not an IPv4 address with a prefix",
    ],
    [
        "a label not starting with its interface",
        (c) => (c.pairs.toy.a.localAddresses[0].label = "eth1:0"),
        'pairs.toy.a.localAddresses[0].label: "eth1:0" must start with the interface name',
    ],
    ["a boolean that is a string", (c) => (c.pairs.toy.a.forwarding = "yes"), 'pairs.toy.a.forwarding: "yes" is not true or false'],
    [
        "a pair name with a slash",
        (c) => {
            c.pairs["to/y"] = c.pairs.toy;
            delete c.pairs.toy;
        },
        'pairs.to/y: name "to/y" must match',
    ],
    ["no pairs", (c) => (c.pairs = {}), "pairs: declares no pair"],
];

describe("validateConfig rejects", () => {
    it.each(bad)("%s", (_what, mutate, message) => {
        const p = problems(mutate);
        expect(p.join("\n")).toContain(message);
    });

    it("a credential kept in plain text in the stack file", () => {
        const p = problems((c) => (c.hosts.doolittle.connection.privateKey = "-----BEGIN FAKE TEST KEY-----"), { hostsAreSecret: false });
        expect(p).toContain("hosts.doolittle.connection.privateKey: is stored in plain text; set it with `pulumi config set --secret --path`");
        expect(p.join("\n")).not.toContain("FAKE TEST KEY");
    });

    it("the same interface name twice on one host", () => {
        const p = problems((c) => {
            c.pairs.second = JSON.parse(JSON.stringify(c.pairs.toy));
            c.pairs.second.a.network = "10.1.1.0/24";
            c.pairs.second.a.tunnelAddress = "10.1.1.2";
            c.pairs.second.b.network = "10.1.2.0/24";
            c.pairs.second.b.tunnelAddress = "10.1.2.2";
            c.pairs.second.b.interface = "tunl2";
        });
        expect(p).toContain("pairs.second.a.interface: tunl1 on doolittle is already used by pairs.toy.a");
    });

    it("overlapping networks across pairs", () => {
        const p = problems((c) => {
            c.pairs.second = JSON.parse(JSON.stringify(c.pairs.toy));
            c.pairs.second.a.interface = "tunl2";
            c.pairs.second.b.interface = "tunl2";
        });
        expect(p).toContain("pairs.second.a.network: 10.0.1.0/24 overlaps pairs.toy.a.network 10.0.1.0/24");
    });

    it("a message of the right shape for each of at least 25 cases", () => {
        expect(bad.length).toBeGreaterThanOrEqual(25);
        for (const [, mutate] of bad) {
            for (const p of problems(mutate)) expect(p).toMatch(/^(hosts|pairs|stack)[\w.[\]/:-]*: /);
        }
    });
});

// Issue 13: the three ways to address a pair, and what each implies.
describe("addressing a pair", () => {
    const model = (stack: string) => stackModel(stack);

    it("a network of each end's own (the how-to): separate, the connected route dropped, each routes the other's network", () => {
        const [p] = model("toy").pairs;
        expect([addressingOf(p, p.a), addressingOf(p, p.b)]).toEqual(["separate", "separate"]);
        expect(p.a).toMatchObject({ keepConnectedRoute: false, peerAddress: undefined });
    });

    it.each([
        ["toy-30", "10.0.0.0/30", "10.0.0.1", "10.0.0.2"],
        ["toy-31", "10.0.0.0/31", "10.0.0.0", "10.0.0.1"],
    ])("%s: one shared network, its connected route kept on both ends; no route to the peer needed for the probe", (stack, cidr, a, b) => {
        const [p] = model(stack).pairs;
        expect([addressingOf(p, p.a), addressingOf(p, p.b)]).toEqual(["shared", "shared"]);
        expect([p.a.network.cidr, p.b.network.cidr]).toEqual([cidr, cidr]);
        expect([p.a.tunnelAddress, p.b.tunnelAddress]).toEqual([a, b]);
        expect([p.a.keepConnectedRoute, p.b.keepConnectedRoute]).toEqual([true, true]);
        expect(p.verify).toBe(true);
        expect(p.a.routes.map((r) => r.cidr)).toEqual(["10.0.2.0/24"]);
    });

    it("a /31's two addresses are both usable: no network or broadcast address (RFC 3021)", () => {
        expect(
            problems(
                (c) =>
                    Object.assign(c.pairs.toy.a, { network: "10.0.0.0/31", tunnelAddress: "10.0.0.0" }) &&
                    Object.assign(c.pairs.toy.b, { network: "10.0.0.0/31", tunnelAddress: "10.0.0.1" }),
            ),
        ).toEqual([]);
    });

    it("toy-peer: a /32 with the peer's address and its host route; no network field", () => {
        const [p] = model("toy-peer").pairs;
        expect([addressingOf(p, p.a), addressingOf(p, p.b)]).toEqual(["peer", "peer"]);
        expect(p.a).toMatchObject({ tunnelAddress: "10.0.0.1", peerAddress: "10.0.0.2", keepConnectedRoute: true });
        expect(p.a.network.cidr).toBe("10.0.0.1/32");
        expect(p.b).toMatchObject({ tunnelAddress: "10.0.0.2", peerAddress: "10.0.0.1" });
    });

    it("mixed: a peer address on one end, a network holding it on the other (shared for that end)", () => {
        const c = toyConfig();
        Object.assign(c.pairs.toy.a, { tunnelAddress: "10.0.0.1", peerAddress: "10.0.0.2" });
        delete c.pairs.toy.a.network;
        Object.assign(c.pairs.toy.b, { network: "10.0.0.0/30", tunnelAddress: "10.0.0.2" });
        const [p] = validateConfig(c, { stack: "toy" }).pairs;
        expect([addressingOf(p, p.a), addressingOf(p, p.b)]).toEqual(["peer", "shared"]);
        expect(p.b.keepConnectedRoute).toBe(true);
    });

    it("a shared network says so instead of calling itself an overlap, and asks for no route into itself", () => {
        const p = problems((c) => {
            Object.assign(c.pairs.toy.a, { network: "10.0.0.0/30", tunnelAddress: "10.0.0.1" });
            Object.assign(c.pairs.toy.b, { network: "10.0.0.0/30", tunnelAddress: "10.0.0.2" });
        });
        expect(p).toEqual([]);
    });

    it("a route into the endpoint's own tunnel network is refused; a supernet (or a default route) through the tunnel is not", () => {
        expect(problems((c) => c.pairs.toy.a.routes.push("10.0.1.0/24"))).toEqual([
            "pairs.toy.a.routes[1]: 10.0.1.0/24 lies in its own tunnel network 10.0.1.0/24",
        ]);
        expect(problems((c) => (c.pairs.toy.a.routes = ["10.0.0.0/16"]))).toEqual([]);
    });

    it("a rule may name the pair's device, the underlay, a local address's interface, another pair's device and a declared interface", () => {
        const c = toyConfig();
        c.hosts.doolittle.interfaces = ["eth1"];
        c.pairs.toy.a.localAddresses[0].interface = "eth2";
        c.pairs.toy.a.localAddresses[0].label = "eth2:0";
        c.pairs.toy.a.forward = ["tunl1", "eth0", "eth1", "eth2"].map((dev) => ({ from: ["10.0.2.0/24"], to: ["10.9.0.0/16"], in: dev }));
        c.pairs.toy.a.masquerade = [{ source: "10.0.2.0/24", out: "eth1" }];
        expect(validateConfig(c, { stack: "toy" }).hosts.doolittle.interfaces).toEqual(["eth1"]);
        c.pairs.toy.a.forward[0].out = "tunl9";
        expect(problems((x) => Object.assign(x, JSON.parse(JSON.stringify(c))))).toEqual([
            `pairs.toy.a.forward[0].out: "tunl9" is neither the pair's device tunl1 nor an interface doolittle is known to have (eth0, eth1, eth2); add it to hosts.doolittle.interfaces if it is one`,
        ]);
    });

    it.each([
        ["root", true],
        ["admin", true],
        ["_tunnel", true],
        ["John.Doe", true],
        ["a23456789012345678901234567890123", false],
        ["1admin", false],
        ["-oProxyCommand=sh", false],
        ["root@ps3", false],
        ["cluster admin", false],
        ["a:b", false],
    ])("SSH user %s: accepted %s", (user, ok) => {
        const p = problems((c) => (c.hosts.doolittle.connection.user = user));
        expect(p.filter((x) => x.startsWith("hosts.doolittle.connection.user: ")).length === 0).toBe(ok);
    });
});

// Issue 15: the tunnel's mode decides the families of its fields and what it may be combined with.
describe("tunnel modes", () => {
    /** The toy as an IPv6 overlay (sit), or over an IPv6 underlay too (ip6ip6): documentation addresses. */
    const v6 = (c: RawConfig, mode: string, underlay6 = false) => {
        c.pairs.toy.mode = mode;
        Object.assign(c.pairs.toy.a, { interface: undefined, network: "2001:db8:1::/64", tunnelAddress: "2001:db8:1::2", routes: ["2001:db8:2::/64"] });
        Object.assign(c.pairs.toy.b, { interface: undefined, network: "2001:db8:2::/64", tunnelAddress: "2001:db8:2::2", routes: ["2001:db8:1::/64"] });
        c.pairs.toy.a.localAddresses = [{ address: "2001:db8:1::1/64", interface: "eth0" }];
        c.pairs.toy.b.localAddresses = [{ address: "2001:db8:2::1/64", interface: "eth0" }];
        delete c.pairs.toy.a.interface;
        delete c.pairs.toy.b.interface;
        if (underlay6) {
            c.hosts.doolittle.underlay.address = "2001:db8:ffff::58";
            c.hosts.calculon.underlay.address = "2001:db8:ffff::129";
        }
    };

    it("defaults to ipip, with no key: every existing stack is an IPIP pair as before", () => {
        const [p] = validateConfig(toyConfig(), { stack: "toy" }).pairs;
        expect(p.mode).toBe("ipip");
        expect("key" in p).toBe(false);
        expect(overheadOf(p)).toBe(20);
    });

    it.each([
        ["ipip", undefined, 20],
        ["gre", undefined, 24],
        ["gre", 42, 28],
        ["sit", undefined, 20],
        ["ipip6", undefined, 40],
        ["ip6ip6", undefined, 40],
    ] as const)("mode %s (key %s) adds %i bytes to each packet", (mode, key, bytes) => {
        expect(overheadOf({ mode, key })).toBe(bytes);
    });

    it("takes GRE's key, 0 and 2^32-1 included, and names the device gre1 unless told", () => {
        for (const key of [0, 4294967295]) {
            const c = toyConfig();
            Object.assign(c.pairs.toy, { mode: "gre", key });
            delete c.pairs.toy.a.interface;
            expect(problems((x) => Object.assign(x, c))).toEqual([]);
        }
        {
            const c = toyConfig();
            Object.assign(c.pairs.toy, { mode: "gre", key: 7 });
            delete c.pairs.toy.a.interface;
            const [p] = validateConfig(c, { stack: "toy" }).pairs;
            expect(p).toMatchObject({ mode: "gre", key: 7 });
            expect(p.a.interface).toBe("gre1");
        }
    });

    it("checks a SIT pair's IPv6 fields and its IPv4 underlay; an IPv6 underlay for ip6ip6", () => {
        expect(problems((c) => v6(c, "sit"))).toEqual([]);
        expect(problems((c) => v6(c, "ip6ip6", true))).toEqual([]);
        // an IPv4 overlay over an IPv6 underlay: the toy's own addresses
        expect(
            problems((c) => {
                c.pairs.toy.mode = "ipip6";
                c.hosts.doolittle.underlay.address = "2001:db8:ffff::58";
                c.hosts.calculon.underlay.address = "2001:db8:ffff::129";
            }),
        ).toEqual([]);
    });

    it("names the field and the value where the family does not fit the mode", () => {
        expect(problems((c) => (c.pairs.toy.mode = "sit"))).toEqual(
            expect.arrayContaining([
                "pairs.toy.a.tunnelAddress: 10.0.1.2 is IPv4; mode sit carries IPv6",
                "pairs.toy.a.routes[0]: 10.0.2.0/24 is IPv4; mode sit carries IPv6",
            ]),
        );
        expect(problems((c) => v6(c, "ip6ip6"))).toEqual(
            expect.arrayContaining(["hosts.doolittle.underlay.address: 130.88.198.58 is IPv4; mode ip6ip6 runs over IPv6 (pairs.toy)"]),
        );
        expect(problems((c) => (c.pairs.toy.a.forward = [{ from: ["2001:db8:2::/64"], to: ["10.0.1.0/24"] }]))).toEqual([
            "pairs.toy.a.forward[0].from[0]: 2001:db8:2::/64 is IPv6; mode ipip carries IPv4",
        ]);
    });

    it("refuses the features that are IPv4-only so far where IPv6 is involved", () => {
        expect(
            problems((c) => {
                v6(c, "sit");
                c.pairs.toy.firewall = "open";
                c.pairs.toy.a.reversePathFilter = "loose";
            }),
        ).toEqual(
            expect.arrayContaining([
                "pairs.toy.firewall: open not supported with mode sit yet (IPv4 only): it saves and opens iptables, not ip6tables; use owned or none",
                "pairs.toy.a.reversePathFilter: loose not supported with mode sit yet (IPv4 only): IPv6 has no rp_filter",
            ]),
        );
    });

    it("refuses every kernel fallback device as the pair's device, in every mode", () => {
        for (const dev of ["gre0", "gretap0", "erspan0", "sit0", "ip6tnl0"]) {
            expect(problems((c) => (c.pairs.toy.a.interface = dev))).toEqual([
                `pairs.toy.a.interface: "${dev}" is a fallback device the kernel shares in every namespace; use tunl1 or another name`,
            ]);
        }
    });
});
