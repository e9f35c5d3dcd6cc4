// Issue 15: the runtime of the modes beyond ipip (components/runtime/modes.sh), its functions
// run by dash against an `ip` and a `modprobe` that are shell functions printing what a real
// host would print (the formats of iproute2's link_gre.c and link_ip6tnl.c) or recording what
// they are asked: nothing reaches this machine's network stack. The lab proves the rest.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { planEndpoint } from "../components/plan";
import { renderConverge } from "../components/render";
import { stackModel } from "./support/toy";

const m = stackModel("toy-gre");
const script = renderConverge(planEndpoint(m, m.pairs[0], "a"));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunnelpair-modes-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs the script's definitions, then `probe`, with `ip -d -o link show` printing `link`; prints its output. */
function run(probe: string, link = ""): string {
    const state = fs.mkdtempSync(path.join(dir, "state-"));
    const stubs = [
        `ip() { case "$*" in "-d -o link show dev "*) printf '%s\\n' ${JSON.stringify(link)} ;; *) echo "ip $*" ;; esac; }`,
        `modprobe() { echo "modprobe $*"; }`,
        `STATE=${state}`,
    ].join("\n");
    return execFileSync("sh", ["-c", `${script.replace(/\nmain "\$@"\n$/, "\n")}${stubs}\n${probe}`], { encoding: "utf8", stdio: "pipe" });
}

const gre =
    "9: gre1@NONE: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1472 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/gre 130.88.198.58 peer 130.88.196.129 promiscuity 0 minmtu 0 maxmtu 0 \\    gre remote 130.88.196.129 local 130.88.198.58 ttl inherit ikey 0.0.0.42 okey 0.0.0.42 addrgenmode eui64 numtxqueues 1 numrxqueues 1";
const ip6tnl = (extra: string) =>
    `10: ip6tnl1@NONE: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1460 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/tunnel6 2001:db8:ffff::58 peer 2001:db8:ffff::129 promiscuity 0 minmtu 68 maxmtu 65407 \\    ip6tnl ipip6 remote 2001:db8:ffff::129 local 2001:db8:ffff::58 hoplimit inherit ${extra} tclass 0x00 flowlabel 0x00000 (flowinfo 0x00000000) addrgenmode eui64`;

describe("the tunnel kind reads a device as ip -d link prints it", () => {
    it.each([
        ["a GRE device with its key", gre, "gre 130.88.198.58 130.88.196.129 inherit 42|none"],
        ["a GRE device whose keys differ", gre.replace("okey 0.0.0.42", "okey 1.0.0.0"), "gre 130.88.198.58 130.88.196.129 inherit 42/16777216|none"],
        [
            "a GRE device without a key, a TTL of 64",
            gre.replace(" ikey 0.0.0.42 okey 0.0.0.42", "").replace("ttl inherit", "ttl 64"),
            "gre 130.88.198.58 130.88.196.129 64 -|none",
        ],
        ["an ipip6 device without the encapsulation limit", ip6tnl("encaplimit none"), "ipip6 2001:db8:ffff::58 2001:db8:ffff::129 inherit -|none"],
        ["an ipip6 device with the kernel's default limit", ip6tnl("encaplimit 4"), "ipip6 2001:db8:ffff::58 2001:db8:ffff::129 inherit -|4"],
        [
            "a sit device of mode ip6ip",
            gre.replace("link/gre", "link/sit").replace(" gre remote", " sit ip6ip remote"),
            "sit 130.88.198.58 130.88.196.129 inherit 42|none",
        ],
        // (an ip that prints no mode: the device is not known to take protocol 41 only)
        [
            "a sit device whose mode ip does not print",
            gre.replace("link/gre", "link/sit").replace(" gre remote", " sit remote"),
            "sit 130.88.198.58 130.88.196.129 inherit 42|mode-unknown",
        ],
    ])("%s", (_name, link, want) => {
        expect(run('tunnel_desc gre1; printf "%s|%s" "$_tp" "$_enc"', link)).toBe(want);
    });

    it("the largest key reads back as itself", () => {
        expect(run('quad_int 255.255.255.255; printf %s "$_v"')).toBe("4294967295");
    });
});

describe("the tunnel kind's commands", () => {
    it("makes a GRE device with its key and alias, loading ip_gre first", () => {
        const out = run('dev_exists() { false; }; add_tunnel gre1 gre 130.88.198.58 130.88.196.129 inherit 42; printf "%s" "$IPQ_CMDS"; cat "$STATE/journal"');
        // (modprobe runs where this machine has no ip_gre loaded: the stub's line)
        expect(out.split("\n").filter((l) => l !== "modprobe ip_gre")).toEqual([
            "link add name gre1 type gre local 130.88.198.58 remote 130.88.196.129 ttl inherit key 42",
            `link set dev gre1 alias tunnelpair:toy-gre/toy`,
            "del newlink gre1",
            "",
        ]);
    });

    it("makes an ip6tnl device without the encapsulation limit, so that its overhead is 40", () => {
        expect(run('tunnel_args ipip6 2001:db8:ffff::58 2001:db8:ffff::129 inherit -; printf %s "$_ta"')).toBe(
            "ip6tnl mode ipip6 local 2001:db8:ffff::58 remote 2001:db8:ffff::129 ttl inherit encaplimit none",
        );
    });

    it("is present only as desired: mode, local, remote, ttl and key", () => {
        const present = (args: string, link = gre) =>
            run(`dev_exists() { true; }; dev_alias() { _v=$TAG; }; if present_tunnel gre1 ${args}; then echo yes; else echo no; fi`, link).trim();
        expect(present("gre 130.88.198.58 130.88.196.129 inherit 42")).toBe("yes");
        expect(present("gre 130.88.198.58 130.88.196.129 inherit 43")).toBe("no");
        expect(present("gre 130.88.198.58 130.88.196.129 inherit -")).toBe("no");
        expect(present("gre 130.88.198.58 130.88.196.130 inherit 42")).toBe("no");
        expect(present("gre 130.88.198.58 130.88.196.129 64 42")).toBe("no");
        expect(present("sit 130.88.198.58 130.88.196.129 inherit 42")).toBe("no");
        expect(present("ipip6 2001:db8:ffff::58 2001:db8:ffff::129 inherit -", ip6tnl("encaplimit none"))).toBe("yes");
        expect(present("ipip6 2001:db8:ffff::58 2001:db8:ffff::129 inherit -", ip6tnl("encaplimit 4"))).toBe("no");
    });

    it("changes a device of ours in place, the old parameters journaled; refuses to drop a key ip cannot drop", () => {
        const change = (args: string) =>
            run(`dev_exists() { true; }; add_tunnel gre1 ${args}; printf "%s" "$IPQ_CMDS"; cat "$STATE/journal"`, gre.replace("ttl inherit", "ttl 64"));
        expect(change("gre 130.88.198.58 130.88.196.129 inherit 42").split("\n")).toEqual([
            "link set dev gre1 type gre local 130.88.198.58 remote 130.88.196.129 ttl inherit key 42",
            "add tunnel gre1 gre 130.88.198.58 130.88.196.129 64 42",
            "",
        ]);
        expect(() => change("gre 130.88.198.58 130.88.196.129 inherit -")).toThrow(/gre1 has GRE key 42, which ip link set cannot remove/);
    });

    it("tunmtu: auto is the route's MTU less the mode's overhead", () => {
        const probe = (overhead: number) =>
            run(
                `IP_READ=1; PEER_ROUTES="130.88.196.129 dev eth0 src 130.88.198.58 uid 0 cache mtu 1400$NL"; resolve_tunmtu auto 130.88.196.129 ${overhead}; printf %s "$_mtu_v"`,
            );
        expect([probe(28), probe(24), probe(20)]).toEqual(["1372", "1376", "1380"]);
        expect(run('resolve_tunmtu 1400 130.88.196.129 28; printf %s "$_mtu_v"')).toBe("1400");
    });

    it("tunmtu's preflight adds its peer to the first read of ip's routes", () => {
        expect(
            run(
                'IP_READ=1; preflight_tunmtu gre1 auto 130.88.196.129 28; preflight_tunmtu gre1 auto 130.88.196.129 28; printf "%s|%s" "$AUTO_PEERS" "$IP_READ"',
            ),
        ).toBe("130.88.196.129|0");
    });
});

// Mode sit's runtime (IPv6 in base.sh, objects.sh, hostwide.sh; the sit device in modes.sh),
// with the same stubs: the IPv6 read, the sit device's mode, the tables of ip6tables, IPv6's
// forwarding and what writing it rewrites.
describe("the IPv6 functions of a SIT pair's script", () => {
    const sm = stackModel("toy-sit");
    const sitScript = renderConverge(planEndpoint(sm, sm.pairs[0], "a"));
    const sit = (mode: string) =>
        `5: sit1@NONE: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1480 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/sit 130.88.198.58 peer 130.88.196.129 promiscuity 0 allmulti 0 minmtu 1280 maxmtu 65555 \\    sit ${mode} remote 130.88.196.129 local 130.88.198.58 ttl inherit pmtudisc addrgenmode eui64 \\    alias tunnelpair:toy-sit/toy`;
    /** As run(), with the SIT script and `ip -6 -o -force -batch -` printing `v6` (addresses, then routes). */
    const runSit = (probe: string, link = "", v6 = "") => {
        const state = fs.mkdtempSync(path.join(dir, "state-"));
        fs.writeFileSync(path.join(state, "ip6.out"), v6);
        const stubs = [
            `ip() { case "$*" in "-d -o link show dev "*) printf '%s\\n' ${JSON.stringify(link)} ;; "-6 -o -force -batch -") cat >/dev/null; cat ${state}/ip6.out ;; *) echo "ip $*" ;; esac; }`,
            `STATE=${state}`,
        ].join("\n");
        return execFileSync("sh", ["-c", `${sitScript.replace(/\nmain "\$@"\n$/, "\n")}${stubs}\n${probe}`], { encoding: "utf8", stdio: "pipe" });
    };

    it("reads a sit device of mode ip6ip as the pair's; one of ip's default mode any (it takes IPIP too) as not", () => {
        expect(runSit('tunnel_desc sit1; printf "%s|%s" "$_tp" "$_enc"', sit("ip6ip"))).toBe("sit 130.88.198.58 130.88.196.129 inherit -|none");
        expect(runSit('tunnel_desc sit1; printf "%s|%s" "$_tp" "$_enc"', sit("any"))).toBe("sit 130.88.198.58 130.88.196.129 inherit -|mode-any");
    });

    it("makes the device with mode ip6ip, and sets a device of mode any in place", () => {
        expect(
            runSit('dev_exists() { false; }; load_module() { :; }; add_tunnel sit1 sit 130.88.198.58 130.88.196.129 inherit -; printf "%s" "$IPQ_CMDS"'),
        ).toBe(
            "link add name sit1 type sit mode ip6ip local 130.88.198.58 remote 130.88.196.129 ttl inherit\nlink set dev sit1 alias tunnelpair:toy-sit/toy\n",
        );
        expect(runSit('dev_exists() { true; }; add_tunnel sit1 sit 130.88.198.58 130.88.196.129 inherit -; printf "%s" "$IPQ_CMDS"', sit("any"))).toBe(
            "link set dev sit1 type sit mode ip6ip local 130.88.198.58 remote 130.88.196.129 ttl inherit\n",
        );
    });

    it("finds IPv6 addresses and routes as ip -6 prints them, and IPv4's as before", () => {
        const v6 = [
            "2: eth0    inet6 fd00:0:0:1::1/64 scope global tentative noprefixroute \\       valid_lft forever preferred_lft forever",
            "5: sit1    inet6 fd00:0:0:1::2/64 scope global noprefixroute \\       valid_lft forever preferred_lft forever",
            "fd00:0:0:2::/64 dev sit1 metric 1024 pref medium",
            "fe80::/64 dev eth0 proto kernel metric 256 pref medium",
            "",
        ].join("\n");
        const probe = (f: string) => `if ${f}; then echo yes; else echo no; fi`;
        const ask = [
            probe("has_addr fd00:0:0:1::2/64 sit1"),
            probe("has_addr fd00:0:0:1::1/64 eth0"),
            probe("has_addr fd00:0:0:1::2/64 eth0"),
            probe("has_addr fd00:0:0:1::3/64 sit1"),
            probe("has_route fd00:0:0:2::/64 dev sit1"),
            probe("has_route fd00:0:0:3::/64 dev sit1"),
            probe("has_route fd00:0:0:2::/64 dev eth0"),
        ].join("; ");
        expect(runSit(`load_ip() { ADDRS=; ROUTES=; IP_READ=1; }; ${ask}`, "", v6).trim().split("\n")).toEqual(["yes", "yes", "no", "no", "yes", "no", "no"]);
        expect(
            runSit(
                'route_key ::/0; a=$_k; route_key fd00::1/128; b=$_k; route_key 2001:db8::/32; c=$_k; route_key 10.0.0.1/32; printf "%s %s %s %s" "$a" "$b" "$c" "$_k"',
            ),
        ).toBe("default fd00::1 2001:db8::/32 10.0.0.1");
    });

    it("sends filter6 and mangle6 to ip6tables, the others to iptables, each family's tables in one restore", () => {
        // (programs that print how they were called and what they read, first on PATH)
        const bin = fs.mkdtempSync(path.join(dir, "bin-"));
        for (const p of ["iptables", "ip6tables", "iptables-restore", "ip6tables-restore"])
            fs.writeFileSync(path.join(bin, p), `#!/bin/sh\necho "${p} $*"\n${p.endsWith("restore") ? "cat\n" : ""}`, { mode: 0o755 });
        const out = runSit(
            [
                `PATH=${bin}:$PATH`,
                'chain_live() { _live=; }; mkdir -p "$STATE/chains"',
                "ipt -t filter6 -F TP-1-IN6; ipt -t mangle -F TP-1-MSS; ipt -S",
                'queue filter decl ":TP-1-IN - [0:0]"; queue filter6 decl ":TP-1-IN6 - [0:0]"; queue mangle6 rules "-A FORWARD -j TP-1-MSS6"; flush_queue',
            ].join("\n"),
        );
        expect(out.split("\n").filter((l) => l !== "")).toEqual([
            "ip6tables -w 10 -t filter -F TP-1-IN6",
            "iptables -w 10 -t mangle -F TP-1-MSS",
            "iptables -w 10 -S",
            "iptables-restore -w 10 --noflush",
            "*filter",
            ":TP-1-IN - [0:0]",
            "COMMIT",
            "ip6tables-restore -w 10 --noflush",
            "*filter",
            ":TP-1-IN6 - [0:0]",
            "COMMIT",
            "*mangle",
            "-A FORWARD -j TP-1-MSS6",
            "COMMIT",
        ]);
    });

    it("saves IPv6's forwarding with every conf.*.forwarding it rewrites, the key first; ip_forward's companions as before", () => {
        const out = runSit('sysctl_companions net/ipv6/conf/all/forwarding; a=$_comp; sysctl_companions net/ipv4/ip_forward; printf "%s\\n%s" "$a" "$_comp"');
        const [v6, v4] = out.split("\n");
        // (this machine's own /proc/sys, read only)
        const expected6 = fs
            .readdirSync("/proc/sys/net/ipv6/conf")
            .filter((d) => d !== "all")
            .map((d) => `net/ipv6/conf/${d}/forwarding`);
        expect(v6.split(" ").sort()).toEqual(expected6.sort());
        expect(v4.split(" ")[0]).toBe("net/ipv4/conf/all/accept_redirects");
        expect(v4.split(" ")).toContain("net/ipv4/conf/all/forwarding");
    });
});

// The IPv6 underlay of modes ipip6 and ip6ip6 (stacks/Pulumi.toy-ip6ip6.yaml): the underlay
// address and the route to the peer are read by `ip -6`, the device is an ip6tnl one.
describe("an IPv6 underlay's reads and device", () => {
    const um = stackModel("toy-ip6ip6");
    const script6 = renderConverge(planEndpoint(um, um.pairs[0], "a"));
    /** The ip6ip6 script's definitions, then `probe`; `ip -N -o -force -batch -` records its input in $STATE/ipN.in and prints $STATE/ipN.out. */
    const run6 = (probe: string, out: { 4?: string; 6?: string } = {}) => {
        const state = fs.mkdtempSync(path.join(dir, "state-"));
        for (const f of [4, 6] as const) fs.writeFileSync(path.join(state, `ip${f}.out`), out[f] ?? "");
        const stubs = [
            `ip() { case "$*" in "-4 -o -force -batch -" | "-6 -o -force -batch -") cat >"${state}/ip\${1#-}.in"; cat "${state}/ip\${1#-}.out" ;; *) echo "ip $*" ;; esac; }`,
            `modprobe() { echo "modprobe $*"; }`,
            `STATE=${state}`,
        ].join("\n");
        const stdout = execFileSync("sh", ["-c", `${script6.replace(/\nmain "\$@"\n$/, "\n")}${stubs}\n${probe}`], { encoding: "utf8", stdio: "pipe" });
        const input = (f: 4 | 6) => (fs.existsSync(path.join(state, `ip${f}.in`)) ? fs.readFileSync(path.join(state, `ip${f}.in`), "utf8") : undefined);
        return { stdout, in4: input(4), in6: input(6) };
    };
    const v6 = [
        "2001:db8:88::129 from :: dev eth0 proto kernel src 2001:db8:88::58 metric 256 mtu 1400 pref medium",
        "2: eth0    inet6 2001:db8:88::58/64 scope global \\       valid_lft forever preferred_lft forever",
        "2001:db8:88::/64 dev eth0 proto kernel metric 256 pref medium",
        "",
    ].join("\n");

    it("asks ip -6 for the route to an IPv6 peer, ip -4 for an IPv4 one: each family's peers in its own read", () => {
        const r = run6("AUTO_PEERS='130.88.196.129 2001:db8:88::129'; load_ip; load_ip6; printf '%s|' \"$PEER_ROUTES6\"", { 6: v6 });
        expect(r.in4).toBe("route get 130.88.196.129\naddr show\nroute show table main\n");
        expect(r.in6).toBe("route get 2001:db8:88::129\naddr show\nroute show table main\n");
        expect(r.stdout).toBe(`${v6.split("\n")[0]}\n|`);
    });

    it("finds the IPv6 underlay address on the host, reading nothing of IPv4", () => {
        const r = run6('for a in 2001:db8:88::58 2001:db8:88::59; do if has_local_address $a; then echo yes; else echo no; fi; done; printf %s "$IP_READ"', {
            6: v6,
        });
        expect(r.stdout).toBe("yes\nno\n0");
        expect(r.in4).toBeUndefined();
    });

    it("auto MTU: the route to the IPv6 peer's MTU less 40; no route: the peer named", () => {
        const r = run6('preflight_tunmtu ip6tnl1 auto 2001:db8:88::129 40; resolve_tunmtu auto 2001:db8:88::129 40; printf %s "$_mtu_v"', { 6: v6 });
        expect(r.stdout).toBe("1360");
        expect(() => run6("AUTO_PEERS=2001:db8:88::129; resolve_tunmtu auto 2001:db8:88::129 40", { 6: v6.split("\n").slice(1).join("\n") })).toThrow(
            /no route to the peer 2001:db8:88::129/,
        );
    });

    it("makes an ip6tnl device of the pair's mode without the encapsulation limit, loading ip6_tunnel first", () => {
        const r = run6(
            'dev_exists() { false; }; add_tunnel ip6tnl1 ip6ip6 2001:db8:88::58 2001:db8:88::129 inherit -; printf "%s" "$IPQ_CMDS"; cat "$STATE/journal"',
        );
        expect(r.stdout.split("\n").filter((l) => l !== "modprobe ip6_tunnel")).toEqual([
            "link add name ip6tnl1 type ip6tnl mode ip6ip6 local 2001:db8:88::58 remote 2001:db8:88::129 ttl inherit encaplimit none",
            "link set dev ip6tnl1 alias tunnelpair:toy-ip6ip6/toy",
            "del newlink ip6tnl1",
            "",
        ]);
    });
});
