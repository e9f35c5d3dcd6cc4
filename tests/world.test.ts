// The lab's world files, read and rendered without a lab (lab/world.ts is pure): what the lab
// kernel's init scripts will be given. The worlds are booted by the lab tests (lab.*.test.ts).
import * as path from "path";
import { loadWorld, renderWorld, validateWorld, WorldError } from "../lab/world";

const world = (name: string) => path.join(__dirname, "..", "lab", "worlds", `${name}.yaml`);
const problems = (doc: unknown): readonly string[] => {
    try {
        validateWorld(doc, "w.yaml", "w");
    } catch (e) {
        return (e as WorldError).problems;
    }
    return [];
};

describe("a world with an IPv6 segment (toy6: the underlay of ipip6 and ip6ip6)", () => {
    const w = loadWorld(world("toy6"));
    const files = renderWorld(w);

    it("holds both families' addresses on each host's eth0, and both families' stock firewalls", () => {
        expect(w.ipv6).toBe(true);
        expect(w.hosts.doolittle.interfaces.eth0.addresses).toEqual(["130.88.198.58/16", "2001:db8:88::58/64"]);
        expect(w.hosts.calculon.interfaces.eth0.addresses).toEqual(["130.88.196.129/16", "2001:db8:88::129/64"]);
        expect(files["doolittle.fw6"]).toContain("-A INPUT -j REJECT --reject-with icmp6-adm-prohibited\n");
        expect(files["calculon.fw"]).toContain("-A INPUT -j REJECT --reject-with icmp-host-prohibited\n");
    });

    it("adds the IPv6 addresses in a file of their own, without DAD, after the sysctls that enable IPv6 (host.sh)", () => {
        expect(files["doolittle.ip"]).not.toContain(":");
        expect(files["doolittle.ip6"]).toBe("addr add 2001:db8:88::58/64 dev eth0 nodad\n");
        expect(files["doolittle.sysctl"]).toContain("net/ipv6/conf/eth0/disable_ipv6 0\n");
        expect(files["ipv6"]).toBe("");
    });

    it("leaves an IPv4 world's files as they were: no IPv6 file", () => {
        const toy = renderWorld(loadWorld(world("toy")));
        expect(Object.keys(toy).filter((f) => /\.(ip6|fw6)$|^ipv6$/.test(f))).toEqual([]);
    });

    it("refuses IPv6 addresses, routes and ip6tables rules in a world without ipv6: true, naming each", () => {
        const doc = (ipv6?: boolean) => ({
            ...(ipv6 === undefined ? {} : { ipv6 }),
            segments: { lan: {} },
            hosts: {
                a: {
                    interfaces: { eth0: { segment: "lan", addresses: ["10.0.0.1/24", "2001:db8::1/64", "2001:db8::1/129"] } },
                    routes: ["2001:db8:1::/64 via 2001:db8::2"],
                    firewall6: "*filter\nCOMMIT\n",
                },
            },
        });
        expect(problems(doc())).toEqual([
            'hosts.a.interfaces.eth0.addresses[1]: "2001:db8::1/64" is IPv6: a world with IPv6 addresses sets ipv6: true',
            'hosts.a.interfaces.eth0.addresses[2]: "2001:db8::1/129" is not an IPv4 address with prefix (a.b.c.d/0-32)',
            'hosts.a.routes[0]: "2001:db8:1::/64 via 2001:db8::2" is IPv6\'s: a world with IPv6 routes sets ipv6: true',
            "hosts.a.firewall6: ip6tables rules need a world with ipv6: true",
        ]);
        expect(problems(doc(true))).toEqual([
            'hosts.a.interfaces.eth0.addresses[2]: "2001:db8::1/129" is not an IPv4 address with prefix (a.b.c.d/0-32) or an IPv6 one (x:x::x/0-128)',
        ]);
    });
});
