// A stack proven in the lab: boot its world, replay `pulumi up` with the provider's
// semantics, check what must work, replay up again and destroy, and compare every host's
// state with the state before up.
import * as path from "path";
import { configKeys, loadConfig } from "../components/config";
import { FirewallMode, Model } from "../components/model";
import { chainPrefix, planVerify } from "../components/plan";
import { commandString, renderVerify } from "../components/render";
import { deployStack } from "../components/program";
import { readStackFile, StackFile } from "../components/stackFile";
import { DoctorReport, runDoctor } from "../doctor/doctor";
import { destroy, Executor, StackState, up } from "../replay/engine";
import { overlayConnections } from "../replay/overlay";
import { recordProgram, Recording } from "../replay/record";
import { SshConnection } from "../components/ssh/connection";
import { ExecOptions, ExecResult, sshExec } from "../components/ssh/exec";
import { Lab, startLab, tapName } from "./lab";
import { diffSnapshots, parseSnapshot, Snapshot, snapshotScript } from "./snapshot";
import { loadWorld, World } from "./world";

/** A connection that must work after up and must not before up or after destroy. */
export interface Flow {
    readonly name: string;
    readonly from: string;
    readonly to: string;
    readonly port: number;
    /** The tunnel device on `from` whose packet counters must rise. */
    readonly through?: string;
    /** The host that answers, and the source address it must see (NAT or not). */
    readonly seenBy?: { readonly host: string; readonly source: string };
    /** An ICMPv6 echo from this address of `from` (ping -6) instead of the TCP connect (`port` unused). */
    readonly ping6From?: string;
}

export interface Scenario {
    /** A world file, or a world loaded and changed. */
    readonly world: string | World;
    readonly stackFile: string;
    readonly flows: readonly Flow[];
    /** Firewall modes to run the stack in; the first is the stack file's own. */
    readonly firewallModes?: readonly FirewallMode[];
    /** Checks of the topology's own, run after up (the lab, the stack's recording). */
    readonly extra?: (ctx: Context) => Promise<void>;
    /**
     * Checks run before the stack's first up, with a stack state of their own: they must leave
     * every host of the stack as the world made it (compared with its snapshot).
     */
    readonly prelude?: (ctx: Context) => Promise<void>;
    /** A change to the stack's pairs for this scenario (after the firewall mode is set). */
    readonly pairs?: (pairs: Record<string, unknown>) => void;
}

const root = path.join(__dirname, "..");
/** The toy's two ends, as the SIT checks see them (defined before the scenarios that use it). */
const toyEnds = [
    { host: "doolittle", local: "130.88.198.58", remote: "130.88.196.129", alias: "fd00:0:0:1::1", tunnel: "fd00:0:0:1::2", peerNet: "fd00:0:0:2::/64" },
    { host: "calculon", local: "130.88.196.129", remote: "130.88.198.58", alias: "fd00:0:0:2::1", tunnel: "fd00:0:0:2::2", peerNet: "fd00:0:0:1::/64" },
] as const;
/** The toy's two ends over the IPv6 underlay of lab/worlds/toy6.yaml. */
const toy6Ends = [
    { host: "doolittle", local: "2001:db8:88::58", remote: "2001:db8:88::129" },
    { host: "calculon", local: "2001:db8:88::129", remote: "2001:db8:88::58" },
] as const;

export const scenarios: Record<string, Scenario> = {
    ps3: {
        world: path.join(root, "lab/worlds/ps3.yaml"),
        stackFile: path.join(root, "stacks/Pulumi.ps3.yaml"),
        flows: [
            {
                name: "doolittle -> jill 10.10.10.54:22",
                from: "doolittle",
                to: "10.10.10.54",
                port: 22,
                through: "tunl1",
                seenBy: { host: "jill", source: "10.200.100.100" },
            },
            { name: "doolittle -> jack 10.10.10.60:22", from: "doolittle", to: "10.10.10.60", port: 22, through: "tunl1" },
            { name: "doolittle -> ps3's tunnel address 10.200.200.200:22", from: "doolittle", to: "10.200.200.200", port: 22 },
        ],
    },
    man2: {
        world: path.join(root, "lab/worlds/man2.yaml"),
        stackFile: path.join(root, "stacks/Pulumi.man2.yaml"),
        flows: [
            {
                name: "flow 1: comp000 -> calculon:22, masqueraded by rfe",
                from: "comp000",
                to: "130.88.196.129",
                port: 22,
                seenBy: { host: "calculon", source: "130.88.200.10" },
            },
            {
                name: "flow 2: doolittle -> comp000:22 through the tunnel",
                from: "doolittle",
                to: "192.168.104.100",
                port: 22,
                through: "tunl1",
                seenBy: { host: "comp000", source: "10.200.200.100" },
            },
            {
                name: "flow 3: calculon -> comp000:22 via doolittle, not NATed",
                from: "calculon",
                to: "192.168.104.100",
                port: 22,
                seenBy: { host: "comp000", source: "130.88.196.129" },
            },
            // SSH admitted on the desktop gateway from its desktop clients (before: SSH_SERVICE admits only the lab)
            { name: "calculon -> doolittle:22 (SSH admitted from the client)", from: "calculon", to: "130.88.198.58", port: 22 },
        ],
    },
    hub: {
        world: path.join(root, "lab/worlds/hub.yaml"),
        stackFile: path.join(root, "stacks/Pulumi.hub.yaml"),
        flows: [...spoke1Flows(), ...spoke2Flows()],
        extra: async (ctx) => {
            // destroying one pair leaves the other working, and the first comes back cleanly
            await ctx.up(await ctx.record((pairs) => delete pairs.spoke1));
            for (const f of spoke1Flows()) ctx.check(`spoke1 destroyed: ${f.name} does not answer`, !(await ctx.probe(f)).ok);
            for (const f of spoke2Flows()) ctx.check(`spoke1 destroyed: ${f.name} still answers`, (await ctx.probe(f)).ok);
            await ctx.up(ctx.recording);
            for (const f of [...spoke1Flows(), ...spoke2Flows()]) ctx.check(`spoke1 back: ${f.name} answers`, (await ctx.probe(f)).ok);
            // concurrency: the two pairs' scripts on rfe and on comp000, all at once
            const shared = [...ctx.state.resources.values()].filter((r) => /-(a-rfe|node-comp000)$/.test(r.name));
            const before = await snapshotAll(ctx.lab, ["rfe", "comp000"]);
            const runs = await Promise.all(shared.map((r) => labExec(r.inputs.connection as never, r.inputs.create as string)));
            ctx.check(
                `${runs.length} concurrent runs of the pairs' scripts on rfe and comp000 all succeed`,
                runs.every((r) => r.code === 0),
                runs.map((r) => `exit ${r.code}: ${r.stderr}`).join("\n"),
            );
            const after = await snapshotAll(ctx.lab, ["rfe", "comp000"]);
            for (const h of ["rfe", "comp000"]) {
                const d = diffSnapshots(before[h], after[h]);
                ctx.check(`after the concurrent runs ${h} is unchanged: chains, state, sysctls (${d.length} diff lines)`, d.length === 0, d.join("\n"));
            }
        },
    },
    // Man2 with the external segment's MTU lowered to 1400 (rfe's eth3 and the campus router's
    // eth1): rfe's tunnel MTU is 1380 ("auto"), doolittle learns the path MTU from the router.
    // First the probe's full-MTU check (mtuProbeChecks), which refuses doolittle's auto 1480;
    // then, with verification off, what the MTU and the MSS clamp do with it all the same.
    mtu: {
        world: reachableRouter(withMtu(loadWorld(path.join(root, "lab/worlds/man2.yaml")), 1400, ["rfe", "eth3"], ["router", "eth1"])),
        stackFile: path.join(root, "stacks/Pulumi.man2.yaml"),
        flows: [],
        prelude: mtuProbeChecks,
        extra: mtuChecks,
        pairs: (p) => ((p.man2 as { verify?: boolean }).verify = false),
    },
    toy: toyScenario("toy"),
    // the toy re-addressed as other tools address a tunnel (stacks/Pulumi.toy-*.yaml): one
    // shared /30, an RFC 3021 /31, and point to point; each tunl1 reaches the peer by the
    // route the kernel makes with the address
    "toy-30": toyScenario("toy-30", { address: "inet 10.0.0.1/30 ", route: "10.0.0.0/30 proto kernel scope link src 10.0.0.1" }),
    "toy-31": toyScenario("toy-31", { address: "inet 10.0.0.0/31 ", route: "10.0.0.0/31 proto kernel scope link src 10.0.0.0" }),
    "toy-peer": toyScenario("toy-peer", { address: "inet 10.0.0.1 peer 10.0.0.2/32 ", route: "10.0.0.2 proto kernel scope link src 10.0.0.1" }),
    // the toy as a GRE tunnel with key 42 (issue #15, stacks/Pulumi.toy-gre.yaml)
    "toy-gre": toyScenario("toy-gre", undefined, { dev: "gre1", protocol: 47, name: "GRE", checks: greChecks }),
    // the toy as a SIT tunnel carrying IPv6 between the aliases (issue #15, stacks/Pulumi.toy-sit.yaml)
    "toy-sit": toySitScenario(),
    // the toy over an IPv6 underlay (issue #15, lab/worlds/toy6.yaml): its IPv4 as ipip6
    // (stacks/Pulumi.toy-ipip6.yaml), IPv6 between the aliases as ip6ip6 (-ip6ip6.yaml).
    "toy-ipip6": toyIp6Scenario("ipip6"),
    "toy-ip6ip6": toyIp6Scenario("ip6ip6"),
};

/**
 * The toy world with IPv6 on its hosts (world.ipv6), and each host's stock firewall admitting
 * protocol 41 from the other's address as the admin of a firewall of their own would (before
 * its REJECT): with firewall none the pair keeps that firewall, and the tunnel works by it.
 */
function toyWorldIpv6(): World {
    const w = JSON.parse(JSON.stringify(loadWorld(path.join(root, "lab/worlds/toy.yaml")))) as World;
    for (const e of toyEnds) {
        const fw = w.hosts[e.host].firewall!;
        const reject = "-A INPUT -j REJECT";
        if (fw.split(reject).length !== 2) throw new Error(`the toy world's ${e.host} firewall has no single "${reject}"`);
        w.hosts[e.host].firewall = fw.replace(reject, `-A INPUT -s ${e.remote}/32 -p 41 -j ACCEPT\n${reject}`);
    }
    return { ...w, name: `${w.name}-ipv6`, ipv6: true };
}

/**
 * The toy over an IPv6 underlay (lab/worlds/toy6.yaml), as ipip6 (the toy's IPv4 flow, TCP to
 * calculon's alias) or ip6ip6 (ping -6 between the aliases' IPv6 networks), through ip6tnl1,
 * in firewall modes owned and none (open is refused with an IPv6 underlay). For none, each
 * host's stock ip6tables admits the tunnel's next header from the other's address, as the
 * admin of a firewall of their own would (before its REJECT).
 */
function toyIp6Scenario(mode: "ipip6" | "ip6ip6"): Scenario {
    const protocol = mode === "ipip6" ? 4 : 41;
    const w = JSON.parse(JSON.stringify(loadWorld(path.join(root, "lab/worlds/toy6.yaml")))) as World;
    for (const e of toy6Ends) {
        const fw = w.hosts[e.host].firewall6!;
        const reject = "-A INPUT -j REJECT";
        if (fw.split(reject).length !== 2) throw new Error(`the toy6 world's ${e.host} firewall6 has no single "${reject}"`);
        w.hosts[e.host].firewall6 = fw.replace(reject, `-A INPUT -s ${e.remote}/128 -p ${protocol} -j ACCEPT\n${reject}`);
    }
    const flow: Flow =
        mode === "ipip6"
            ? { name: "doolittle -> 10.0.2.1:22 (calculon's alias) over IPv6", from: "doolittle", to: "10.0.2.1", port: 22, through: "ip6tnl1" }
            : {
                  name: "doolittle fd00:0:0:1::1 -> fd00:0:0:2::1 (calculon's alias) over IPv6, ping -6",
                  from: "doolittle",
                  to: "fd00:0:0:2::1",
                  port: 0,
                  ping6From: "fd00:0:0:1::1",
                  through: "ip6tnl1",
              };
    return {
        world: { ...w, name: `toy6-${mode}` },
        stackFile: path.join(root, `stacks/Pulumi.toy-${mode}.yaml`),
        flows: [flow],
        firewallModes: ["owned", "none"],
        extra: (ctx) => ip6tnlChecks(ctx, mode, protocol, flow),
    };
}

/**
 * What the toy-ipip6 and toy-ip6ip6 stacks make on both ends: ip6tnl1 an ip6tnl device of the
 * pair's mode without the encapsulation limit option, between the IPv6 underlay addresses,
 * its MTU (auto) the underlay's less 40; nothing of IPv6 on mgmt0. With the owned firewall:
 * the rules naming the tunnel's next header in ip6tables are the pair's two and the world's
 * one, and the pair's alone admit the tunnel. The probe fails with the next header dropped in
 * ip6tables on calculon, naming it, and passes after; the doctor finds nothing wrong.
 */
async function ip6tnlChecks(ctx: Context, mode: "ipip6" | "ip6ip6", protocol: number, flow: Flow): Promise<void> {
    const stack = `toy-${mode}`;
    const owned = (await ctx.sh("doolittle", `grep -c '^own chain filter6 ' /var/lib/tunnelpair/${stack}/toy/manifest || true`)).trim() !== "0";
    const prefix = chainPrefix(stack, "toy");
    // (ip6tables -S names 4 "ipencap" and 41 "ipv6", as /etc/protocols does)
    const name = protocol === 4 ? "(ipencap|4)" : "(ipv6|41)";
    for (const e of toy6Ends) {
        const link = (await ctx.sh(e.host, "ip -d -o link show dev ip6tnl1")).trim();
        ctx.check(
            `${e.host}'s ip6tnl1 is an ip6tnl device of mode ${mode} from ${e.local} to ${e.remote}, encaplimit none (ip -d link)`,
            / link\/tunnel6 /.test(link) && new RegExp(`\\sip6tnl ${mode} remote ${e.remote} local ${e.local} hoplimit inherit encaplimit none `).test(link),
            link,
        );
        const [under, mtu] = (await ctx.sh(e.host, "cat /sys/class/net/eth0/mtu /sys/class/net/ip6tnl1/mtu")).trim().split("\n").map(Number);
        ctx.check(`${e.host}'s ip6tnl1 MTU is auto: its ${under}-byte underlay - 40 (${mtu})`, mtu === under - 40);
        const mgmt = (await ctx.sh(e.host, "ip -6 -o addr show dev mgmt0")).trim();
        ctx.check(`${e.host}: mgmt0 has no IPv6 address (nothing of IPv6 reaches the TAP)`, mgmt === "", mgmt);
        if (!owned) continue;
        const v6 = (await ctx.sh(e.host, "ip6tables -S")).split("\n");
        const rules = v6.filter((l) => new RegExp(`^-A .* -p ${name} `).test(l));
        ctx.check(
            `${e.host}: the ip6tables rules naming next header ${protocol} are the pair's two (in from ${e.remote}, out to it) and the world's own`,
            rules.length === 3 &&
                rules.some((l) => new RegExp(`^-A ${prefix}-IN6 -s ${e.remote}/128 -d ${e.local}/128 -p ${name} -j ACCEPT$`).test(l)) &&
                rules.some((l) => new RegExp(`^-A ${prefix}-OUT6 -s ${e.local}/128 -d ${e.remote}/128 -p ${name} -j ACCEPT$`).test(l)),
            rules.join("\n"),
        );
    }
    if (owned) {
        // the tunnel rejected right after the pair's jump (INPUT's first rule), before the
        // world's own rule for it: the pair's chain admits the tunnel by itself
        await ctx.sh("calculon", `ip6tables -I INPUT 2 -p ${protocol} -j REJECT`);
        const alone = await ctx.probe(flow);
        await ctx.sh("calculon", `ip6tables -D INPUT -p ${protocol} -j REJECT`);
        ctx.check(`calculon rejecting next header ${protocol} after the pair's jump: the flow answers by the pair's rule alone`, alone.ok, alone.detail);
    }
    const probe = probeAlone(ctx, stack);
    await ctx.sh("calculon", `ip6tables -I INPUT -p ${protocol} -j DROP`);
    const dropped = await probe();
    await ctx.sh("calculon", `ip6tables -D INPUT -p ${protocol} -j DROP`);
    ctx.check(
        `verify with next header ${protocol} dropped on calculon: fails, names doolittle, calculon and protocol ${protocol}`,
        dropped.code !== 0 &&
            new RegExp(
                `\\[tunnelpair:${stack}\\/toy@calculon\\]: error: verification failed: 6 probes left ip6tnl1 on calculon .* none came back: doolittle does not answer .*protocol ${protocol} `,
            ).test(dropped.stderr),
        dropped.stderr,
    );
    const again = await probe();
    ctx.check(
        "verify after: verified through ip6tnl1, 1460-byte packets",
        again.code === 0 && /: verified: doolittle answers at \S+ through ip6tnl1 \(probe 1 of 5\); 1460-byte packets pass/.test(again.stdout),
        again.stdout + again.stderr,
    );
    if (owned) {
        const report = await labDoctor(ctx.lab, readStackFile(path.join(root, `stacks/Pulumi.${stack}.yaml`))).run();
        ctx.check(`the doctor finds nothing wrong with the ${mode} pair`, report.ok, JSON.stringify(report.hosts, null, 1));
    }
}

/**
 * The toy as SIT: IPv6 from doolittle's alias to calculon's (ping -6) through sit1, over the
 * toy's IPv4, in firewall modes owned and none (open is IPv4's only, refused for SIT).
 */
function toySitScenario(): Scenario {
    const flow: Flow = {
        name: "doolittle fd00:0:0:1::1 -> fd00:0:0:2::1 (calculon's alias), ping -6",
        from: "doolittle",
        to: "fd00:0:0:2::1",
        port: 0,
        ping6From: "fd00:0:0:1::1",
        through: "sit1",
    };
    return {
        world: toyWorldIpv6(),
        stackFile: path.join(root, "stacks/Pulumi.toy-sit.yaml"),
        flows: [flow],
        firewallModes: ["owned", "none"],
        extra: (ctx) => sitChecks(ctx, flow),
    };
}

/**
 * What the toy-sit stack makes of SIT on both ends: sit1 a sit device between the underlay
 * addresses, its MTU (auto) the underlay's less 20, net.ipv6.conf.all.forwarding and (the
 * kernel's doing) every device's IPv6 forwarding 1; nothing of IPv6 on mgmt0. With the owned
 * firewall: protocol 41 (iptables prints "ipv6") only in the pair's two rules, its ip6tables
 * chains jumped to with its tag, the pair's rule alone admitting the tunnel when the world's
 * own is gone; the probe failing with 41 dropped and naming it; the doctor.
 */
async function sitChecks(ctx: Context, flow: Flow): Promise<void> {
    const owned = (await ctx.sh("doolittle", "grep -c '^own chain filter ' /var/lib/tunnelpair/toy-sit/toy/manifest || true")).trim() !== "0";
    const prefix = chainPrefix("toy-sit", "toy");
    for (const e of toyEnds) {
        const link = (await ctx.sh(e.host, "ip -d -o link show dev sit1")).trim();
        ctx.check(
            `${e.host}'s sit1 is a sit device of mode ip6ip (protocol 41 only, not ip's default "any") from ${e.local} to ${e.remote} (ip -d link)`,
            / link\/sit /.test(link) && new RegExp(`\\ssit ip6ip remote ${e.remote} local ${e.local} ttl inherit `).test(link),
            link,
        );
        const [under, mtu] = (await ctx.sh(e.host, "cat /sys/class/net/eth0/mtu /sys/class/net/sit1/mtu")).trim().split("\n").map(Number);
        ctx.check(`${e.host}'s sit1 MTU is auto: its ${under}-byte underlay - 20 (${mtu})`, mtu === under - 20);
        const addrs = await ctx.sh(e.host, "ip -6 -o addr show dev sit1 scope global; ip -6 route show dev sit1");
        ctx.check(
            `${e.host}'s sit1 has ${e.tunnel}/64 and the route to ${e.peerNet}, the peer's network`,
            addrs.includes(` inet6 ${e.tunnel}/64 `) && addrs.split("\n").some((l) => l.startsWith(`${e.peerNet} `)),
            addrs,
        );
        const fwd = (
            await ctx.sh(
                e.host,
                "cat /proc/sys/net/ipv6/conf/all/forwarding /proc/sys/net/ipv6/conf/eth0/forwarding /proc/sys/net/ipv6/conf/mgmt0/disable_ipv6",
            )
        ).trim();
        ctx.check(`${e.host}: IPv6 forwarding 1 (all, and eth0 by the kernel's rewrite); IPv6 still off on mgmt0`, fwd === "1\n1\n1", fwd);
        const mss = (await ctx.sh(e.host, "ip6tables -t mangle -S")).split("\n");
        ctx.check(
            `${e.host}: TCP's MSS leaving by sit1 clamped in ip6tables' mangle table (the pair's MSS6 chain, jumped to from FORWARD)`,
            mss.includes(`-A FORWARD -m comment --comment "tunnelpair:toy-sit/toy" -j ${prefix}-MSS6`) &&
                mss.includes(`-A ${prefix}-MSS6 -o sit1 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu`),
            mss.join("\n"),
        );
        const mgmt = (await ctx.sh(e.host, "ip -6 -o addr show dev mgmt0")).trim();
        ctx.check(`${e.host}: mgmt0 has no IPv6 address (nothing of IPv6 reaches the TAP)`, mgmt === "", mgmt);
        if (!owned) continue;
        const filter = (await ctx.sh(e.host, "iptables -S")).split("\n");
        const p41 = filter.filter((l) => /^-A .* -p (ipv6|41) /.test(l));
        ctx.check(
            `${e.host}: the rules naming protocol 41 are the pair's two (in from ${e.remote}, out to it) and the world's own`,
            p41.length === 3 &&
                p41.includes(`-A ${prefix}-IN -s ${e.remote}/32 -d ${e.local}/32 -p ipv6 -j ACCEPT`) &&
                p41.includes(`-A ${prefix}-OUT -s ${e.local}/32 -d ${e.remote}/32 -p ipv6 -j ACCEPT`) &&
                p41.includes(`-A INPUT -s ${e.remote}/32 -p ipv6 -j ACCEPT`),
            p41.join("\n"),
        );
        const v6 = (await ctx.sh(e.host, "ip6tables -S")).split("\n");
        const tag = `-m comment --comment "tunnelpair:toy-sit/toy"`;
        ctx.check(
            `${e.host}: ip6tables holds the pair's chains (SRC6, IN6, OUT6, FWD6) jumped to from INPUT, OUTPUT and FORWARD with its tag, the inner sources checked`,
            ["INPUT", "OUTPUT", "FORWARD"].every((c, i) => v6.includes(`-A ${c} ${tag} -j ${prefix}-${["IN6", "OUT6", "FWD6"][i]}`)) &&
                v6.includes(`-A ${prefix}-IN6 -i sit1 -j ${prefix}-SRC6`) &&
                v6.includes(`-A ${prefix}-SRC6 -j DROP`) &&
                v6.some((l) => l.startsWith(`-A ${prefix}-SRC6 -s fd00:0:0:${e.host === "doolittle" ? 2 : 1}::/64 -j RETURN`)),
            v6.join("\n"),
        );
    }
    if (owned) {
        // protocol 41 rejected right after the pair's jump (INPUT's first rule), before the
        // world's own rule for it: the pair's chain admits the tunnel by itself
        const reject41 = "INPUT 2 -p 41 -j REJECT";
        await ctx.sh("calculon", `iptables -I ${reject41}`);
        const alone = await ctx.probe(flow);
        await ctx.sh("calculon", "iptables -D INPUT -p 41 -j REJECT");
        ctx.check("calculon rejecting protocol 41 after the pair's jump: the flow answers by the pair's rule alone", alone.ok, alone.detail);
    }
    // the verification probe fails with protocol 41 dropped, naming it
    const probe = probeAlone(ctx, "toy-sit");
    await ctx.sh("calculon", "iptables -I INPUT -p 41 -j DROP");
    const dropped = await probe();
    await ctx.sh("calculon", "iptables -D INPUT -p 41 -j DROP");
    ctx.check(
        "verify with SIT dropped on calculon: fails, names doolittle, calculon and protocol 41",
        dropped.code !== 0 &&
            /\[tunnelpair:toy-sit\/toy@calculon\]: error: verification failed: 6 probes left sit1 on calculon .* none came back: doolittle does not answer .*protocol 41 /.test(
                dropped.stderr,
            ),
        dropped.stderr,
    );
    const again = await probe();
    ctx.check(
        "verify after: verified through sit1 with ping -6, 1480-byte packets",
        again.code === 0 && /: verified: doolittle answers at fd00:0:0:1::2 through sit1 \(probe 1 of 5\); 1480-byte packets pass/.test(again.stdout),
        again.stdout + again.stderr,
    );
    if (owned) await sitDoctorChecks(ctx);
    if (owned) await raRefusalCheck(ctx);
}

/**
 * Turning IPv6 forwarding on drops the default routes router advertisements gave: the pair's
 * run refuses it, changing nothing, where one is there. The lab has no router sending them: a
 * route marked `proto ra` by hand stands for one (ip prints it as it prints the kernel's), on
 * doolittle with its IPv6 forwarding turned off again; then both put back.
 */
async function raRefusalCheck(ctx: Context): Promise<void> {
    const a = [...ctx.state.resources.values()].find((r) => r.name === "toy-a-doolittle")!;
    const route = "default via fe80::1 dev eth0 proto ra metric 1024";
    await ctx.sh("doolittle", `echo 0 >/proc/sys/net/ipv6/conf/all/forwarding && ip -6 route add ${route}`);
    const before = await ctx.sh("doolittle", snapshotScript);
    const refused = await labExec(a.inputs.connection as never, a.inputs.create as string);
    const d = diffSnapshots(parseSnapshot(before), parseSnapshot(await ctx.sh("doolittle", snapshotScript)));
    await ctx.sh("doolittle", `ip -6 route del ${route}; echo 1 >/proc/sys/net/ipv6/conf/all/forwarding`);
    ctx.check(
        `doolittle with a router's default route (${route}), IPv6 forwarding off: the pair's run refuses to turn it on, naming eth0, the route and accept_ra, and changes nothing (${d.length} diff lines)`,
        refused.code !== 0 &&
            /error: turning IPv6 forwarding on would drop what router advertisements gave eth0 \(default via fe80::1 dev eth0 proto ra .*set net\.ipv6\.conf\.eth0\.accept_ra to 2/.test(
                refused.stderr,
            ) &&
            d.length === 0,
        `${refused.stderr}\n${d.join("\n")}`,
    );
    const rerun = await labExec(a.inputs.connection as never, a.inputs.create as string);
    ctx.check(
        "doolittle with forwarding and routes put back: the rerun finds the pair as it was (0 added, 0 removed)",
        rerun.code === 0 && / 0 added, 0 removed, /.test(rerun.stdout),
        rerun.stdout + rerun.stderr,
    );
}

/**
 * The doctor on the toy-sit pair (owned firewall): nothing wrong after up; SIT's items broken
 * on doolittle one at a time (protocol 41 dropped, IPv6 forwarding off), each named, and mended.
 */
const sitDoctorChecks = (ctx: Context) =>
    modeDoctorChecks(ctx, "toy-sit", "SIT", [
        {
            what: "SIT dropped",
            item: "firewall",
            says: "INPUT drops protocol 41 from the peer 130.88.196.129",
            breakIt: "iptables -I INPUT -p 41 -j DROP",
            mend: "iptables -D INPUT -p 41 -j DROP",
        },
        {
            what: "IPv6 forwarding off",
            item: "forwarding",
            says: "net.ipv6.conf.all.forwarding = 0, the pair forwards and needs 1",
            breakIt: "echo 0 >/proc/sys/net/ipv6/conf/all/forwarding",
            mend: "echo 1 >/proc/sys/net/ipv6/conf/all/forwarding",
        },
    ]);

/**
 * What the toy-gre stack makes of GRE on both ends: gre1 is a gre device between the two
 * underlay addresses with key 42 both ways, its MTU (auto) the underlay's less 28 (GRE's 24,
 * the key's 4), and, with the owned firewall, the pair's INPUT chain admits protocol 47 (which
 * iptables prints as "gre") from the peer's underlay address only, to this end's only.
 */
async function greChecks(ctx: Context): Promise<void> {
    const ends = [
        { host: "doolittle", local: "130.88.198.58", remote: "130.88.196.129" },
        { host: "calculon", local: "130.88.196.129", remote: "130.88.198.58" },
    ];
    const owned = (await ctx.sh("doolittle", "grep -c '^own fwopen$' /var/lib/tunnelpair/toy-gre/toy/manifest || true")).trim() === "0";
    const prefix = chainPrefix("toy-gre", "toy");
    for (const e of ends) {
        const link = (await ctx.sh(e.host, "ip -d -o link show dev gre1")).trim();
        ctx.check(
            `${e.host}'s gre1 is a gre device from ${e.local} to ${e.remote} with key 42 both ways (ip -d link)`,
            / link\/gre /.test(link) &&
                new RegExp(`\\sgre remote ${e.remote} local ${e.local} ttl inherit `).test(link) &&
                / ikey 0\.0\.0\.42 okey 0\.0\.0\.42 /.test(link),
            link,
        );
        const [under, mtu] = (await ctx.sh(e.host, "cat /sys/class/net/eth0/mtu /sys/class/net/gre1/mtu")).trim().split("\n").map(Number);
        ctx.check(`${e.host}'s gre1 MTU is auto: its ${under}-byte underlay - 28 (${mtu})`, mtu === under - 28);
        if (!owned) continue;
        const filter = (await ctx.sh(e.host, "iptables -S")).split("\n");
        const gre = filter.filter((l) => /^-A .* -p (gre|47) /.test(l));
        ctx.check(
            `${e.host}: the only rules naming protocol 47 are the pair's: in from ${e.remote} to ${e.local}, out the other way`,
            gre.length === 2 &&
                gre.includes(`-A ${prefix}-IN -s ${e.remote}/32 -d ${e.local}/32 -p gre -j ACCEPT`) &&
                gre.includes(`-A ${prefix}-OUT -s ${e.local}/32 -d ${e.remote}/32 -p gre -j ACCEPT`),
            gre.join("\n"),
        );
    }
    if (owned) await greDoctorChecks(ctx);
}

/**
 * The doctor on the toy-gre pair (owned firewall, as the stack file has it): nothing wrong
 * after up; GRE's own items broken on doolittle one at a time (the key, protocol 47 dropped),
 * each named, and mended as they were.
 */
const greDoctorChecks = (ctx: Context) =>
    modeDoctorChecks(ctx, "toy-gre", "GRE", [
        {
            what: "gre1's key changed to 43",
            item: "device",
            says: "key is 0.0.0.43, the pair needs 0.0.0.42",
            breakIt: "ip link set dev gre1 type gre key 43",
            mend: "ip link set dev gre1 type gre key 42",
        },
        {
            what: "GRE dropped",
            item: "firewall",
            says: "INPUT drops protocol 47 from the peer 130.88.196.129",
            breakIt: "iptables -I INPUT -p 47 -j DROP",
            mend: "iptables -D INPUT -p 47 -j DROP",
        },
    ]);

/** A host's item broken by a command, what the doctor must then say of it, and the command that mends it. */
interface Breakage {
    readonly what: string;
    readonly item: string;
    readonly says: string;
    readonly breakIt: string;
    readonly mend: string;
}

/**
 * The doctor on a mode's toy stack (`stacks/Pulumi.<stack>.yaml`), deployed: nothing wrong;
 * each breakage made on doolittle, the doctor run, the breakage mended: the doctor named it;
 * at the end, nothing wrong again.
 */
async function modeDoctorChecks(ctx: Context, stack: string, name: string, breakages: readonly Breakage[]): Promise<void> {
    const doctor = labDoctor(ctx.lab, readStackFile(path.join(root, `stacks/Pulumi.${stack}.yaml`))).run;
    const failing = (r: DoctorReport) => r.hosts.flatMap((h) => h.findings.filter((f) => f.status === "fail").map((f) => ({ host: h.host, ...f })));
    const healthy = await doctor();
    ctx.check(`the doctor finds nothing wrong with the ${name} pair`, healthy.ok, JSON.stringify(failing(healthy), null, 1));
    for (const b of breakages) {
        await ctx.sh("doolittle", b.breakIt);
        const r = await doctor();
        await ctx.sh("doolittle", b.mend);
        const named = failing(r).filter((f) => f.host === "doolittle" && f.item === b.item);
        ctx.check(
            `${b.what} on doolittle: the doctor names ${b.item} ("${b.says}")`,
            named.some((f) => f.detail.includes(b.says)),
            JSON.stringify(failing(r), null, 1),
        );
    }
    const mended = await doctor();
    ctx.check(`${name}'s items mended: the doctor finds nothing wrong`, mended.ok, JSON.stringify(failing(mended)));
}

/** A toy variant's tunnel: its device on both hosts, its protocol, and checks of the mode's own. */
interface ToyTunnel {
    readonly dev: string;
    /** The tunnel's IP protocol number, and the name the messages give the mode. */
    readonly protocol: number;
    readonly name: string;
    readonly checks?: (ctx: Context) => Promise<void>;
}

/**
 * The toy stack (or one of its re-addressed variants) in both firewall modes. `reach` is what
 * a variant's addressing puts on doolittle's device: its address as `ip -o addr` prints it and
 * the kernel's route that reaches calculon's tunnel address, which must come back by itself
 * when the device comes up again. `tunnel`: a variant in another mode (ipip's tunl1 otherwise).
 */
function toyScenario(stack: string, reach?: { address: string; route: string }, tunnel: ToyTunnel = { dev: "tunl1", protocol: 4, name: "IPIP" }): Scenario {
    const { dev, protocol } = tunnel;
    const flow: Flow = { name: "doolittle -> 10.0.2.1:22 (calculon's alias)", from: "doolittle", to: "10.0.2.1", port: 22, through: dev };
    return {
        world: path.join(root, "lab/worlds/toy.yaml"),
        stackFile: path.join(root, `stacks/Pulumi.${stack}.yaml`),
        flows: [flow],
        firewallModes: ["owned", "open"],
        extra: async (ctx) => {
            if (tunnel.checks) await tunnel.checks(ctx);
            // (ip ends each route with a blank)
            const routes = async () => (await ctx.sh("doolittle", `ip -4 route show dev ${dev}`)).split("\n").map((l) => l.trim());
            if (reach) {
                const addrs = await ctx.sh("doolittle", `ip -4 -o addr show dev ${dev}`);
                ctx.check(
                    `doolittle's ${dev} has ${reach.address.trim()} and no other address`,
                    addrs.includes(reach.address) && addrs.trim().split("\n").length === 1,
                    addrs,
                );
                const before = await routes();
                ctx.check(
                    `doolittle reaches calculon's tunnel address by the kernel's route "${reach.route}", no route of the pair's`,
                    before.includes(reach.route) && !before.some((l) => /^10\.0\.0\.\S+ scope link$/.test(l)),
                    before.join("\n"),
                );
            }
            // the verification probe fails with a diagnosis naming the host and the cause
            const probe = probeAlone(ctx, stack);
            const tag = `\\[tunnelpair:${stack}\\/toy@calculon\\]`;
            await ctx.sh("calculon", `iptables -I INPUT -p ${protocol} -j DROP`);
            const dropped = await probe();
            await ctx.sh("calculon", `iptables -D INPUT -p ${protocol} -j DROP`);
            ctx.check(
                `verify with ${tunnel.name} dropped on calculon: fails, names doolittle, calculon and protocol ${protocol}`,
                dropped.code !== 0 &&
                    new RegExp(
                        `${tag}: error: verification failed: 6 probes left ${dev} on calculon .* none came back: doolittle does not answer .*protocol ${protocol} `,
                    ).test(dropped.stderr),
                dropped.stderr,
            );
            await undoneByProbe(ctx, stack, "doolittle", `iptables -I INPUT -p ${protocol} -j DROP`, `iptables -D INPUT -p ${protocol} -j DROP`);
            // how-to §4.7: with the device down the connection times out; up again, with its route, it answers
            await ctx.sh("calculon", `ip link set dev ${dev} down`);
            const down = await probe();
            await ctx.sh("calculon", `ip link set dev ${dev} up; ip route add 10.0.1.0/24 dev ${dev}`);
            ctx.check(
                `verify with ${dev} down on calculon: fails with '${dev} is down on calculon'`,
                down.code !== 0 && down.stderr.includes(`verification failed: ${dev} is down on calculon`),
                down.stderr,
            );
            await ctx.sh("doolittle", `ip link set dev ${dev} down`);
            ctx.check(`§4.7: ${dev} down on doolittle: the flow times out`, !(await ctx.probe(flow)).ok);
            await ctx.sh("doolittle", `ip link set dev ${dev} up`);
            if (reach) {
                const back = await routes();
                ctx.check(`${dev} up again: the kernel's route to the peer is back by itself ("${reach.route}")`, back.includes(reach.route), back.join("\n"));
            }
            await ctx.sh("doolittle", `ip route add 10.0.2.0/24 dev ${dev}`);
            ctx.check(`§4.7: ${dev} up again with its route: the flow answers`, (await ctx.probe(flow)).ok);
            const again = await probe();
            ctx.check(`verify after ${dev} came back: verified`, again.code === 0 && /: verified: /.test(again.stdout), again.stdout + again.stderr);
            // firewall open: a policy closed again (a loader, the admin) is opened by the next
            // run, which keeps the firewall from before up for destroy to put back (the
            // scenario's restore check)
            const open = (await ctx.sh("doolittle", `grep -c '^own fwopen$' /var/lib/tunnelpair/${stack}/toy/manifest || true`)).trim() === "1";
            if (open) {
                // (FORWARD: INPUT would cut the lab's own SSH to doolittle)
                await ctx.sh("doolittle", "iptables -P FORWARD DROP");
                const endpoint = [...ctx.state.resources.values()].find((r) => r.name === "toy-a-doolittle")!;
                const rerun = await labExec(endpoint.inputs.connection as never, endpoint.inputs.create as string);
                const policy = (await ctx.sh("doolittle", "iptables -S FORWARD")).split("\n")[0];
                ctx.check(
                    `firewall open: FORWARD's policy set to DROP again, the next run opens it (${policy})`,
                    rerun.code === 0 && !/ 0 added, 0 removed, /.test(rerun.stdout) && policy === "-P FORWARD ACCEPT",
                    rerun.stdout + rerun.stderr,
                );
            }
        },
    };
}

/** The world with the MTU of some interfaces (host, interface) set. */
function withMtu(world: World, mtu: number, ...ifs: [string, string][]): World {
    const w = JSON.parse(JSON.stringify(world)) as World;
    for (const [h, i] of ifs) w.hosts[h].interfaces[i].mtu = mtu;
    return { ...w, name: `${w.name}-mtu${mtu}` };
}

/**
 * The world with the campus router reached through rfe, so that the lab can filter what the
 * router sends (it has no management interface; its sshd listens on its own addresses).
 */
function reachableRouter(world: World): World {
    const w = JSON.parse(JSON.stringify(world)) as World;
    w.hosts.router.jump = "rfe";
    return w;
}

/**
 * Issue 14's full-MTU probe, on the same world: the probe ends b's apply on doolittle, whose
 * tunl1 is 1480 (auto: its own link is 1500) while the path narrows to 1400 two hops on, at
 * the router. The reachability pings pass; up must fail naming tunl1, 1480, the 1380 bytes
 * that pass and `mtu: 1380`, once with the router's ICMP "fragmentation needed" reaching
 * doolittle (the warm-up teaches it the path MTU) and once with it filtered on the router (a
 * black hole), and each time b's apply is undone; with `mtu: 1380` on doolittle, as the
 * message says, up succeeds through the black hole. A stack state of its own, destroyed at
 * the end.
 */
async function mtuProbeChecks(ctx: Context): Promise<void> {
    const verified = (mtu?: number) =>
        ctx.record((p) => {
            const m = p.man2 as { b: Record<string, unknown>; verify?: boolean };
            m.verify = true;
            if (mtu !== undefined) m.b.mtu = mtu;
        });
    // each run of b's apply, which ends with the probe, as the replay sent it (its time includes
    // the SSH session and the converge)
    const probes: ExecResult[] = [];
    const exec: Executor = async (conn, command, stdin) => {
        const r = await labExec(conn, command, stdin);
        if (/: the verification on doolittle, /.test(command)) probes.push(r);
        return r;
    };
    const lastProbe = () => probes[probes.length - 1];
    const pmtu = async () =>
        (await ctx.sh("doolittle", "ip -o route get 130.88.200.10; ip -o route get 10.200.100.100 from 10.200.200.100 2>/dev/null || true")).trim();
    const forget = async () => {
        // no path MTU learned earlier: each case finds its own
        await ctx.sh("doolittle", "ip route flush cache");
        const cached = await pmtu();
        if (/ mtu /.test(cached)) throw new Error(`doolittle still has a path MTU cached: ${cached}`);
    };
    const refusal = (why: string) =>
        new RegExp(
            ": exit 1: tunnelpair\\[tunnelpair:man2/man2@doolittle\\]: error: verification failed: tunl1 on doolittle has MTU 1480, but 1480-byte packets " +
                "do not reach rfe's 10\\.200\\.100\\.100 through it: the largest that passed is 1380 bytes on the wire \\(DF pings from 10\\.200\\.200\\.100\\); " +
                `the path between 130\\.88\\.198\\.58 and 130\\.88\\.200\\.10 does not carry 1500-byte packets .*, and ${why}.*\\. ` +
                "Set mtu: 1380 on endpoint b of pair man2 \\(doolittle\\), and on a \\(rfe\\) unless its MTU is already no larger \\| " +
                "tunnelpair\\[tunnelpair:man2/man2@doolittle\\]: error: the tunnel did not pass its verification \\(above\\) \\| " +
                "tunnelpair\\[tunnelpair:man2/man2@doolittle\\]: warning: nothing was changed: the host is as it was before this run$",
        );
    const state = new StackState();
    const auto = await verified();
    await forget();
    const said = await up(auto, state, exec).catch((e: Error) => e);
    ctx.check(
        `doolittle as b (tunl1 1480, auto), the router's "fragmentation needed" reaching it: up fails naming tunl1, 1480, 1380 and mtu: 1380, b's apply undone (b's apply ${lastProbe()?.ms} ms)`,
        said instanceof Error && refusal("the path says so").test(said.message),
        String(said instanceof Error ? said.message : JSON.stringify(said.steps)),
    );
    const tunl1 = await ctx.lab.exec("doolittle", "ip -o link show dev tunl1");
    ctx.check("after the failed up doolittle has no tunl1: b's apply was undone", tunl1.code !== 0, tunl1.stdout);
    const learned = await pmtu();
    ctx.check(
        "the probe's warm-up taught doolittle the path MTU to rfe, 1400 (its tunl1 and the route through it went with the undone apply)",
        /^130\.88\.200\.10 .* mtu 1400\b/m.test(learned) && !/^10\.200\.100\.100 /m.test(learned),
        learned,
    );

    const drop = "OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP";
    const dropped = async () => Number((await ctx.sh("router", `iptables -L OUTPUT -n -v -x | awk '/icmptype 3 code 4/ { print $1 }'`)).trim());
    await forget();
    await ctx.sh("router", `iptables -I ${drop}`);
    try {
        // a is in the state already, b is not: this up runs b's apply and its probe again
        const hole = await up(auto, state, exec).catch((e: Error) => e);
        ctx.check(
            `the same with "fragmentation needed" dropped on the router (a black hole): up fails with the same figures and says nothing told doolittle (probe ${lastProbe()?.ms} ms)`,
            hole instanceof Error &&
                refusal('nothing says so: ICMP "fragmentation needed" does not reach doolittle \\(filtered on the path').test(hole.message),
            String(hole instanceof Error ? hole.message : JSON.stringify(hole.steps)),
        );
        const n = await dropped();
        const cached = await pmtu();
        ctx.check(
            `the router dropped the probe's "fragmentation needed" (${n} packets) and doolittle learnt no path MTU below tunl1's 1480`,
            n > 0 && [...cached.matchAll(/ mtu (\d+)/g)].every((m) => Number(m[1]) >= 1480),
            cached,
        );

        const set = await up(await verified(1380), state, exec).catch((e: Error) => e);
        ctx.check(
            `mtu: 1380 on doolittle, as the message says, same black hole: up succeeds, its probe verified 1380-byte packets (probe ${lastProbe()?.ms} ms)`,
            !(set instanceof Error) &&
                /: verified: rfe answers at 10\.200\.100\.100 through tunl1 \(probe 1 of 5\); 1380-byte packets pass \(tunl1's MTU, DF\)$/.test(
                    lastProbe().stdout.trim(),
                ),
            set instanceof Error ? set.message : lastProbe().stdout + lastProbe().stderr,
        );
    } finally {
        await ctx.sh("router", `iptables -D ${drop}`);
    }
    const gone = await destroy(state, labExec).catch((e: Error) => e);
    ctx.check("doolittle as b: destroy succeeds", !(gone instanceof Error) && state.resources.size === 0, gone instanceof Error ? gone.message : "");
}

/**
 * Issue 6's MTU proofs, on Man2 with a 1400-byte external segment: DF probes at the largest
 * size that fits and one byte more, locally and forwarded; a bulk TCP transfer calculon ->
 * comp000 through the tunnel; one doolittle -> comp000 with ICMP "fragmentation needed"
 * dropped on doolittle (an MTU black hole), which completes with MSS clamping and stalls
 * without it.
 */
async function mtuChecks(ctx: Context): Promise<void> {
    const exec = (host: string, script: string) => ctx.lab.exec(host, script);
    const mtuOf = async (host: string) => Number((await ctx.sh(host, "cat /sys/class/net/tunl1/mtu")).trim());
    const rfeMtu = await mtuOf("rfe");
    ctx.check(`rfe's tunl1 MTU is auto: its 1400-byte underlay - 20 (${rfeMtu})`, rfeMtu === 1380);
    const dolMtu = await mtuOf("doolittle");
    ctx.check(`doolittle's tunl1 MTU is auto: its 1500-byte underlay - 20 (${dolMtu})`, dolMtu === 1480);
    const ping = (host: string, from: string, to: string, size: number) =>
        exec(host, `ping -n -M do -c 3 -i 0.3 -W 1 -s ${size}${from ? ` -I ${from}` : ""} ${to} 2>&1`);
    const fits = 1380 - 28;
    // local: doolittle's first big packet meets the router's 1400 and learns the path MTU from its "frag needed"
    for (const [host, from, to] of [
        ["rfe", "10.200.100.100", "10.200.200.100"],
        ["doolittle", "10.200.200.100", "10.200.100.100"],
    ]) {
        const over = await ping(host, from, to, fits + 1);
        ctx.check(
            `DF from ${host}'s tunnel address, ${fits + 1} bytes of payload (1381 on the wire): "message too long", not a silent drop`,
            /message too long/i.test(over.stdout),
            over.stdout,
        );
        const ok = await ping(host, from, to, fits);
        ctx.check(
            `DF from ${host}'s tunnel address, ${fits} bytes of payload (1380 on the wire): answered`,
            ok.code === 0 && / 3 received/.test(ok.stdout),
            ok.stdout,
        );
    }
    // forwarded: calculon -> comp000, the gateway sends "frag needed" back to calculon
    const over = await ping("calculon", "", "192.168.104.100", fits + 1);
    ctx.check(
        `DF calculon -> comp000 (forwarded), ${fits + 1} bytes: "Frag needed ... mtu = 1380" from doolittle`,
        /From 130\.88\.198\.58 .*Frag needed and DF set \(mtu = 1380\)/.test(over.stdout),
        over.stdout,
    );
    // rfe admits only TCP and UDP from calculon to the nodes: the echo crosses the tunnel and stops there
    const rx = async () => Number((await ctx.sh("rfe", "cat /sys/class/net/tunl1/statistics/rx_bytes")).trim());
    const rx0 = await rx();
    const fit = await ping("calculon", "", "192.168.104.100", fits);
    const rx1 = await rx();
    ctx.check(
        `DF calculon -> comp000 (forwarded), ${fits} bytes: no "frag needed", 3 x 1380 bytes reach rfe's tunl1 (${rx1 - rx0} bytes)`,
        !/Frag needed/.test(fit.stdout) && rx1 - rx0 >= 3 * 1380,
        fit.stdout,
    );

    const bytes = 4_000_000;
    /** `bytes` from one host to comp000:5001 through the tunnel; what arrived, and how long it took. */
    const transfer = async (from: string) => {
        // no path MTU learned earlier: each transfer finds its own
        await ctx.sh(from, "ip route flush cache");
        const cached = await ctx.sh(from, "ip -o route get 192.168.104.100; ip -o route get 130.88.200.10");
        if (/ mtu /.test(cached)) throw new Error(`${from} still has a path MTU cached: ${cached}`);
        const t0 = Date.now();
        const sink = exec("comp000", "timeout 25 nc -l 5001 | wc -c");
        const listening = await exec("comp000", "for i in $(seq 100); do ss -Hltn 'sport = :5001' | grep -q . && exit 0; sleep 0.1; done; exit 1");
        if (listening.code !== 0) throw new Error("comp000: nc did not listen on 5001");
        const send = await exec(from, `head -c ${bytes} /dev/zero | timeout 20 nc -N 192.168.104.100 5001`);
        const got = Number((await sink).stdout.trim());
        return { got, ms: Date.now() - t0, send };
    };
    // the issue's transfer: calculon's segments enter the tunnel at doolittle, which tells calculon the MTU
    const bulk = await transfer("calculon");
    ctx.check(
        `bulk TCP calculon -> comp000 (forwarded, through the tunnel): ${bytes} bytes arrive (${bulk.got} in ${bulk.ms} ms)`,
        bulk.got === bytes && bulk.send.code === 0,
        bulk.send.stderr,
    );

    // An MTU black hole: doolittle never hears "fragmentation needed" from the router, so it
    // cannot learn that its IPIP packets are too big for the 1400-byte segment. Only the MSS
    // rfe clamps into comp000's SYN-ACK (1380 - 40) keeps doolittle's segments small enough.
    const mss = `${chainPrefix("man2", "man2")}-MSS`;
    const clamped = async () => Number((await ctx.sh("rfe", `iptables -t mangle -L ${mss} -n -v -x | awk '/TCPMSS/ { print $1 }'`)).trim());
    await ctx.sh("doolittle", "iptables -I INPUT -p icmp --icmp-type fragmentation-needed -j DROP");
    try {
        const c0 = await clamped();
        const held = await transfer("doolittle");
        const c1 = await clamped();
        ctx.check(
            `MSS clamped, ICMP black hole on doolittle: ${bytes} bytes doolittle -> comp000 through the tunnel arrive (${held.got} in ${held.ms} ms)`,
            held.got === bytes && held.send.code === 0,
            held.send.stderr,
        );
        ctx.check(`rfe's clamp rule rewrote the SYN-ACK entering its tunnel (${c0} -> ${c1} packets)`, c1 > c0);
        // the control: the same transfer with clamping off stalls, so the clamp is what carried it
        await ctx.up(
            await ctx.record((p) => {
                const m = p.man2 as { a: object; b: object };
                Object.assign(m.a, { clampMss: false });
                Object.assign(m.b, { clampMss: false });
            }),
        );
        const gone = !(await ctx.sh("rfe", "iptables -t mangle -S FORWARD")).includes(mss);
        ctx.check("clampMss: false: the update removed the clamp from rfe's mangle FORWARD", gone);
        const stalled = await transfer("doolittle");
        ctx.check(`without clamping, same black hole: the transfer stalls (${stalled.got} of ${bytes} bytes in ${stalled.ms} ms)`, stalled.got < bytes);
        await ctx.up(ctx.recording);
    } finally {
        await ctx.sh("doolittle", "iptables -D INPUT -p icmp --icmp-type fragmentation-needed -j DROP");
    }
}

export interface CheckResult {
    readonly name: string;
    readonly ok: boolean;
    readonly detail?: string;
}

export interface ScenarioReport {
    readonly name: string;
    readonly checks: CheckResult[];
    readonly bootMs: number;
    readonly upMs: number[];
    readonly destroyMs: number[];
}

export interface Context {
    readonly lab: Lab;
    readonly recording: Recording;
    /** The stack's state as the replay holds it: `up` and `destroy` work on it. */
    readonly state: StackState;
    /** Records the program with the stack's pairs changed (e.g. one removed). */
    record(change: (pairs: Record<string, unknown>) => void): Promise<Recording>;
    up(recording: Recording): Promise<void>;
    check(name: string, ok: boolean, detail?: string): void;
    sh(host: string, script: string): Promise<string>;
    probe(flow: Flow): Promise<{ ok: boolean; detail: string }>;
}

/** One ICMPv6 echo from an address of the host, waiting at most 2 s (a flow of IPv6, ping6From). */
export function ping6Script(from: string, to: string): string {
    return `ping -6 -n -c 1 -W 2 -I ${from} ${to}`;
}

/** The stack's model in the lab, and its pair's endpoint b: its host and its stored Command. */
function endpointB(ctx: Context, stack: string) {
    const { model } = labDoctor(ctx.lab, readStackFile(path.join(root, `stacks/Pulumi.${stack}.yaml`)));
    const pair = model.pairs[0];
    const name = `${pair.name}-b-${pair.b.host}`;
    const command = [...ctx.state.resources.values()].find((r) => r.name === name);
    if (!command) throw new Error(`${stack}: no Command ${name} is deployed`);
    return { model, pair, host: pair.b.host, command };
}

/**
 * The pair's probe alone, on b's host as b's apply runs it before its commit (a rerun of b's
 * apply would first repair what a check broke there): its diagnosis, read by itself.
 */
function probeAlone(ctx: Context, stack: string): () => Promise<ExecResult> {
    const { model, pair, command } = endpointB(ctx, stack);
    const script = `${renderVerify(planVerify(model, pair)!, "the lab's")}\nverify_pair\n`;
    return () => labExec(command.inputs.connection as never, commandString(script, false));
}

/**
 * b's apply ends with the probe: a tunnel that does not pass it is undone like any failed
 * step. b's deployment removed (its delete), then created again with the tunnel broken by
 * `breakIt` on `where`: the create fails at its probe and leaves b's host exactly as it was;
 * mended, the create verifies and commits.
 */
async function undoneByProbe(ctx: Context, stack: string, where: string, breakIt: string, mendIt: string): Promise<void> {
    const { host: name, command: b } = endpointB(ctx, stack);
    const run = (which: "create" | "delete") => labExec(b.inputs.connection as never, b.inputs[which] as string);
    const removed = await run("delete");
    if (removed.code !== 0) throw new Error(`${b.name}: delete: ${removed.stderr}`);
    const before = (await snapshotAll(ctx.lab, [name]))[name];
    await ctx.sh(where, breakIt);
    const failed = await run("create").finally(() => ctx.sh(where, mendIt));
    const d = diffSnapshots(before, (await snapshotAll(ctx.lab, [name]))[name]);
    ctx.check(
        `${b.name}'s create with the tunnel broken on ${where}: fails at its probe, and ${name} is as it was before it (${d.length} diff lines)`,
        failed.code !== 0 &&
            /: error: verification failed: /.test(failed.stderr) &&
            /nothing was changed: the host is as it was before this run/.test(failed.stderr) &&
            d.length === 0,
        `exit ${failed.code}: ${failed.stderr}\n${d.join("\n")}`,
    );
    const made = await run("create");
    ctx.check(
        `${b.name}'s create, the tunnel mended: verified and committed`,
        made.code === 0 && /\]: verified: /.test(made.stdout),
        made.stdout + made.stderr,
    );
}

/**
 * The doctor on a stack's hosts in the lab, the lab's key standing in for the stack's
 * credentials: the stack's model, and a run of the doctor (60 s at most per host).
 */
export function labDoctor(lab: Lab, sf: StackFile): { model: Model; run: () => Promise<DoctorReport> } {
    const { model } = loadConfig(overlayConnections(sf, lab), { credentials: "supplied" });
    return { model, run: () => runDoctor(model, (conn, cmd) => labExec(conn, cmd, undefined, { timeoutMs: 60_000 })) };
}

/** Whether `f` answers now: its ping -6 (ping6From) or its TCP connect, answered by sshd's banner. */
export async function probeFlow(lab: Lab, f: Flow): Promise<{ ok: boolean; detail: string }> {
    if (f.ping6From) {
        const r = await lab.exec(f.from, ping6Script(f.ping6From, f.to));
        return { ok: r.code === 0 && / 1 received/.test(r.stdout), detail: `exit ${r.code} ${r.stdout}${r.stderr}`.trim() };
    }
    const r = await lab.exec(f.from, probeScript(f.to, f.port));
    return { ok: r.code === 0 && r.stdout.startsWith("SSH-"), detail: `exit ${r.code} ${r.stdout}${r.stderr}`.trim() };
}

/** A TCP connect with a bounded wait, answered by a real sshd banner. */
export function probeScript(to: string, port: number): string {
    return `timeout 4 bash -c 'exec 3<>/dev/tcp/${to}/${port} && read -r banner <&3 && echo "$banner"'`;
}

function spoke1Flows(): Flow[] {
    return [
        {
            name: "spoke1: comp000 -> calculon:22, masqueraded",
            from: "comp000",
            to: "130.88.196.129",
            port: 22,
            seenBy: { host: "calculon", source: "130.88.200.10" },
        },
        { name: "spoke1: doolittle -> comp000:22", from: "doolittle", to: "192.168.104.100", port: 22, through: "tunl1" },
        {
            name: "spoke1: calculon -> comp000:22, not NATed",
            from: "calculon",
            to: "192.168.104.100",
            port: 22,
            seenBy: { host: "comp000", source: "130.88.196.129" },
        },
    ];
}
function spoke2Flows(): Flow[] {
    return [
        { name: "spoke2: comp000 -> leela:22, masqueraded", from: "comp000", to: "130.89.1.20", port: 22, seenBy: { host: "leela", source: "130.88.200.10" } },
        { name: "spoke2: fry -> comp000:22", from: "fry", to: "192.168.104.100", port: 22, through: "tunl1" },
        { name: "spoke2: leela -> comp000:22, not NATed", from: "leela", to: "192.168.104.100", port: 22, seenBy: { host: "comp000", source: "130.89.1.20" } },
    ];
}

/** Holds a connection open on `from` while `seenBy` lists the peers of its established sessions. */
async function sourceSeen(lab: Lab, f: Flow): Promise<string[]> {
    const hold = lab.exec(f.from, `timeout 8 bash -c 'exec 3<>/dev/tcp/${f.to}/${f.port} && read -r banner <&3 && sleep 5'`);
    await new Promise((r) => setTimeout(r, 2500));
    const seen = await lab.exec(f.seenBy!.host, `ss -Htn state established '( sport = :${f.port} )'`);
    await hold;
    return seen.stdout
        .split("\n")
        .filter((l) => l.trim())
        .map((l) => l.trim().split(/\s+/).pop()!.replace(/:\d+$/, ""));
}

const countersScript = (dev: string) => `cat /sys/class/net/${dev}/statistics/tx_packets /sys/class/net/${dev}/statistics/rx_packets`;

/**
 * Every host's snapshot, at most four at a time: the lab's hosts share one CPU, and a dozen
 * snapshots at once on a loaded machine have kept sshd from sending its banner in time.
 */
export async function snapshotAll(lab: Lab, hosts: string[]): Promise<Record<string, Snapshot>> {
    const out: Record<string, Snapshot> = {};
    const queue = [...hosts];
    const worker = async () => {
        for (let h = queue.shift(); h !== undefined; h = queue.shift()) {
            const r = await lab.exec(h, snapshotScript);
            if (r.code !== 0) throw new Error(`snapshot of ${h} failed: ${r.stderr}`);
            out[h] = parseSnapshot(r.stdout);
        }
    };
    await Promise.all(Array.from({ length: Math.min(4, hosts.length) }, worker));
    return Object.fromEntries(hosts.map((h) => [h, out[h]]));
}

/** The replay's SSH, bound to the lab's TAP: lab traffic never takes this machine's default route. */
export const labExec = (conn: SshConnection, command: string, stdin?: string, opts: Omit<ExecOptions, "bindInterface"> = {}): Promise<ExecResult> =>
    sshExec(conn, command, stdin, { ...opts, bindInterface: tapName });

/** The program recorded with the stack file as written but for its connections, which point at the lab; `replace` swaps whole config keys. */
export function recordInLab(sf: StackFile, lab: Lab, replace: Record<string, unknown> = {}): Promise<Recording> {
    const overlaid = overlayConnections(sf, lab);
    return recordProgram({ stack: sf.stack, config: { ...overlaid.values, ...replace }, secretKeys: [...overlaid.secretKeys], program: deployStack });
}

export async function runScenario(
    name: string,
    s: Scenario,
    log: (line: string) => void = () => undefined,
    keepLab?: (lab: Lab) => Promise<void>,
): Promise<ScenarioReport> {
    const checks: CheckResult[] = [];
    const check = (n: string, ok: boolean, detail?: string) => {
        checks.push({ name: n, ok, detail });
        log(`${ok ? "ok  " : "FAIL"} ${n}${detail && !ok ? `\n       ${detail.split("\n").join("\n       ")}` : ""}`);
    };
    const upMs: number[] = [];
    const destroyMs: number[] = [];
    const lab = await startLab(s.world);
    log(`lab ${name}: booted in ${lab.bootMs} ms (${Object.keys(lab.hosts).length} hosts)`);
    try {
        if (keepLab) {
            await keepLab(lab);
            return { name, checks, bootMs: lab.bootMs, upMs, destroyMs };
        }
        const sf = readStackFile(s.stackFile);
        const hostsOfStack = Object.keys(sf.config[configKeys.hosts] as object);
        const sh = async (host: string, script: string) => {
            const r = await lab.exec(host, script);
            if (r.code !== 0) throw new Error(`${host}: ${script}: exit ${r.code}: ${r.stderr}`);
            return r.stdout;
        };
        const probe = (f: Flow) => probeFlow(lab, f);
        const counters = async (host: string, dev: string) => (await sh(host, countersScript(dev))).trim().split("\n").map(Number);

        for (const mode of s.firewallModes ?? ["owned"]) {
            const tag = `[firewall ${mode}]`;
            const pairs = JSON.parse(JSON.stringify(sf.config[configKeys.pairs])) as Record<string, { firewall?: string }>;
            for (const p of Object.values(pairs)) p.firewall = mode;
            s.pairs?.(pairs);
            const record = (change: (p: Record<string, unknown>) => void) => {
                const changed = JSON.parse(JSON.stringify(pairs)) as Record<string, unknown>;
                change(changed);
                return recordInLab(sf, lab, { [configKeys.pairs]: changed });
            };
            const recording = await record(() => undefined);
            const state = new StackState();
            const ctx: Context = {
                lab,
                recording,
                state,
                record,
                up: async (r) => {
                    const report = await up(r, state, labExec);
                    upMs.push(report.ms);
                },
                check: (n, ok, d) => check(`${tag} ${n}`, ok, d),
                sh,
                probe,
            };

            const before = await snapshotAll(lab, hostsOfStack);
            for (const f of s.flows) ctx.check(`before up: ${f.name} does not answer`, !(await probe(f)).ok);
            if (s.prelude) {
                await s.prelude(ctx);
                const after = await snapshotAll(lab, hostsOfStack);
                for (const h of hostsOfStack) {
                    const d = diffSnapshots(before[h], after[h]);
                    ctx.check(`the prelude left ${h} as the world made it (${d.length} diff lines)`, d.length === 0, d.join("\n"));
                }
            }

            const first = await up(recording, state, labExec).catch((e: Error) => e);
            if (first instanceof Error) {
                ctx.check("up succeeds", false, first.message);
                await destroy(state, labExec).catch(() => undefined);
                continue;
            }
            upMs.push(first.ms);
            ctx.check(
                `up succeeds (${first.ms} ms, ${first.steps.length} commands)`,
                first.steps.every((x) => x.ok),
            );
            const afterUp = await snapshotAll(lab, hostsOfStack);

            for (const f of s.flows) {
                const c0 = f.through ? await counters(f.from, f.through) : undefined;
                const r = await probe(f);
                ctx.check(`after up: ${f.name} answers`, r.ok, r.detail);
                if (f.seenBy) {
                    const peers = await sourceSeen(lab, f);
                    ctx.check(
                        `after up: ${f.seenBy.host} sees the connection from ${f.seenBy.source} (saw ${peers.join(", ") || "none"})`,
                        peers.includes(f.seenBy.source),
                    );
                }
                if (f.through && c0) {
                    const c1 = await counters(f.from, f.through);
                    ctx.check(
                        `after up: ${f.from} ${f.through} tx/rx packet counters rose (${c0.join("/")} -> ${c1.join("/")})`,
                        c1[0] > c0[0] && c1[1] > c0[1],
                    );
                }
            }

            const second = await up(recording, state, labExec);
            ctx.check("second up: the engine has nothing to do", second.steps.length === 0, JSON.stringify(second.steps));
            // the scripts themselves are idempotent: run again (as an update would), they change nothing
            const reruns = await Promise.all(
                [...state.resources.values()].map(async (r) => {
                    const res = await labExec(r.inputs.connection as never, r.inputs.create as string);
                    // (b's apply ends with the pair's probe)
                    return { name: r.name, res, probes: /\nverify_pair\(\) \(\n/.test(r.inputs.create as string) };
                }),
            );
            for (const { name: n, res, probes } of reruns) {
                ctx.check(
                    `rerun of ${n}'s create: 0 added, 0 removed${probes ? ", verified" : ""}`,
                    res.code === 0 && / 0 added, 0 removed, /.test(res.stdout) && (!probes || /\]: verified: /.test(res.stdout)),
                    res.stdout + res.stderr,
                );
            }
            const afterRerun = await snapshotAll(lab, hostsOfStack);
            for (const h of hostsOfStack) {
                const d = diffSnapshots(afterUp[h], afterRerun[h]);
                ctx.check(`rerun left ${h} unchanged (${d.length} diff lines)`, d.length === 0, d.join("\n"));
            }

            if (s.extra) await s.extra(ctx);

            const gone = await destroy(state, labExec).catch((e: Error) => e);
            if (gone instanceof Error) {
                ctx.check("destroy succeeds", false, gone.message);
                continue;
            }
            destroyMs.push(gone.ms);
            ctx.check(`destroy succeeds (${gone.ms} ms)`, gone.steps.every((x) => x.ok) && state.resources.size === 0);
            const afterDestroy = await snapshotAll(lab, hostsOfStack);
            for (const h of hostsOfStack) {
                const d = diffSnapshots(before[h], afterDestroy[h]);
                ctx.check(`destroy restored ${h} (${d.length} diff lines)`, d.length === 0, d.join("\n"));
            }
            for (const f of s.flows) ctx.check(`after destroy: ${f.name} does not answer`, !(await probe(f)).ok);
        }
    } finally {
        await lab.stop();
    }
    return { name, checks, bootMs: lab.bootMs, upMs, destroyMs };
}
