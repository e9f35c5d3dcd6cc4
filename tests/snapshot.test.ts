// The lab's host snapshot, parsed without a lab (lab/snapshot.ts's parseSnapshot is pure): what
// it compares of an ip6tnl device made again.
import { diffSnapshots, parseSnapshot } from "../lab/snapshot";

/** A host's ip6tnl1 (and eth0) as `ip -d link`, `ip addr` and `ip route` print them, with the random part given. */
const host = (permaddr: string, linkLocal: string, eth0LinkLocal = "fe80::ccaa:26ff:fe23:551e") => `## link
5: eth0@if9: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500
    link/ether ce:aa:26:23:55:1e brd ff:ff:ff:ff:ff:ff link-netnsid 0 promiscuity 0
7: ip6tnl1@NONE: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1460 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000
    link/tunnel6 2001:db8:88::58 peer 2001:db8:88::129 permaddr ${permaddr} promiscuity 0  allmulti 0 minmtu 68 maxmtu 65535 
    ip6tnl ip6ip6 remote 2001:db8:88::129 local 2001:db8:88::58 hoplimit inherit encaplimit none
## addr
5: eth0@if9: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    inet6 ${eth0LinkLocal}/64 scope link 
       valid_lft forever preferred_lft forever
7: ip6tnl1@NONE: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1460 qdisc noqueue state UNKNOWN group default qlen 1000
    link/tunnel6 2001:db8:88::58 peer 2001:db8:88::129 permaddr ${permaddr}
    inet6 fd00:0:0:1::2/64 scope global 
       valid_lft forever preferred_lft forever
    inet6 ${linkLocal}/64 scope link 
       valid_lft forever preferred_lft forever
## route
local ${eth0LinkLocal} dev eth0 table local proto kernel metric 0 pref medium
local ${linkLocal} dev ip6tnl1 table local proto kernel metric 0 pref medium
`;

describe("the lab's snapshot", () => {
    it("takes an ip6tnl device made again for the same device: its random permaddr and the link-local address made from it are masked", () => {
        const before = parseSnapshot(host("4219:a2f8:a997::", "fe80::4019:a2ff:fef8:a997"));
        const again = parseSnapshot(host("7e64:344e:4b6c::", "fe80::7c64:34ff:fe4e:4b6c"));
        expect(diffSnapshots(before, again)).toEqual([]);
        expect(before.addr).toContain("    inet6 fe80::(from permaddr)/64 scope link ");
        expect(before.route).toContain("local fe80::(from permaddr) dev ip6tnl1 table local proto kernel metric 0 pref medium");
    });

    it("still compares every other device's link-local address and the ip6tnl device's own addresses", () => {
        const before = parseSnapshot(host("4219:a2f8:a997::", "fe80::4019:a2ff:fef8:a997"));
        const other = parseSnapshot(host("4219:a2f8:a997::", "fe80::4019:a2ff:fef8:a997", "fe80::1"));
        expect(diffSnapshots(before, other)).toHaveLength(4);
        const moved = parseSnapshot(host("4219:a2f8:a997::", "fe80::4019:a2ff:fef8:a997").replace("fd00:0:0:1::2/64", "fd00:0:0:1::3/64"));
        expect(diffSnapshots(before, moved)).toEqual(["addr: -     inet6 fd00:0:0:1::2/64 scope global ", "addr: +     inet6 fd00:0:0:1::3/64 scope global "]);
    });
});
