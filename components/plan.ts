// Validated model -> per-host plan: the objects one endpoint of a pair owns on its host, in
// the order they are made (they are removed in the reverse order). Pure.
import { createHash } from "crypto";
import { contains, Network, parseNetwork } from "./address";
import { AdmitRule, Endpoint, FirewallMode, ForwardRule, Host, modeInfo, Model, overheadOf, Pair, peerOf, Protocol, TunnelMode } from "./model";
import { unitName } from "./systemd";
import { tunnelCidr } from "./validate";

/** Where every pair keeps its manifest and saved values on a host. */
export const stateRoot = "/var/lib/tunnelpair";

export type HostObject =
    /** The ipip device, marked ours by its ifalias. */
    | { kind: "link"; dev: string; local: string; remote: string; ttl: string }
    /**
     * A tunnel device of another mode (gre, sit, ip6tnl), marked ours by its ifalias; its
     * kind and its runtime section (runtime/modes.sh) are in the scripts of such pairs only.
     */
    | { kind: "tunnel"; dev: string; mode: Exclude<TunnelMode, "ipip">; local: string; remote: string; ttl: string; key?: number }
    | { kind: "mtu"; dev: string; value: number | "auto"; peer: string }
    /** The MTU of a `tunnel` device: auto takes the mode's overhead (ipip's `mtu` takes 20). */
    | { kind: "tunmtu"; dev: string; value: number | "auto"; peer: string; overhead: number }
    | { kind: "state"; dev: string }
    /** An address; with `peer`, point-to-point (`ip addr add 10.0.0.1/32 peer 10.0.0.2/32`). */
    | { kind: "addr"; cidr: string; dev: string; label?: string; prefixRoute: boolean; peer?: string }
    | { kind: "route"; dest: string; dev: string }
    | { kind: "route"; dest: string; via: string }
    /** A setting of the pair's own device: net.ipv4.conf.<dev>.<key>. */
    | { kind: "devsysctl"; dev: string; key: string; value: string }
    /** The host's default route goes via this gateway (host-wide, reference-counted). */
    | { kind: "gateway"; via: string }
    /** The host's routes to this destination are removed (host-wide, reference-counted). */
    | { kind: "noroute"; dest: string }
    /** A host-wide sysctl, reference-counted across pairs; the key in /proc/sys form. */
    | { kind: "sysctl"; key: string; value: string }
    /** A chain of the pair's own; filter6 and mangle6 are ip6tables' filter and mangle (runtime/base.sh). */
    | { kind: "chain"; table: XtTable; name: string; rules: readonly string[] }
    | { kind: "jump"; table: XtTable; from: string; chain: string }
    /** The how-to's "stop the firewall", reference-counted across pairs. */
    | { kind: "fwopen" }
    /**
     * The systemd units that converge the pair again at boot and on the repair period
     * (systemd.ts), and the stored converge script they run; last, so that destroy stops
     * and removes them before it undoes anything else.
     */
    | { kind: "unit"; name: string };

/** iptables' tables, and ip6tables' as filter6 and mangle6 (the IPv6 overlay of mode sit). */
export type XtTable = "filter" | "nat" | "mangle" | "filter6" | "mangle6";

export interface HostPlan {
    /** The host's name in the configuration. */
    readonly host: string;
    readonly stack: string;
    readonly pair: string;
    /** The ownership mark: the tunnel device's ifalias and the comment on our jump rules. */
    readonly tag: string;
    readonly stateDir: string;
    readonly objects: readonly HostObject[];
    /** With a unit: the repair period, and whether `persist: boot` was written (a host without systemd then refuses). */
    readonly persistence?: { readonly repair: number | "off"; readonly explicit: boolean };
}

/** The one-line form the scripts work with, e.g. "route 10.0.2.0/24 dev tunl1". */
export function objectLine(o: HostObject): string {
    switch (o.kind) {
        case "link":
            return `link ${o.dev} ${o.local} ${o.remote} ${o.ttl}`;
        case "tunnel":
            return `tunnel ${o.dev} ${o.mode} ${o.local} ${o.remote} ${o.ttl} ${o.key ?? "-"}`;
        case "mtu":
            return `mtu ${o.dev} ${o.value} ${o.peer}`;
        case "tunmtu":
            return `tunmtu ${o.dev} ${o.value} ${o.peer} ${o.overhead}`;
        case "state":
            return `state ${o.dev} up`;
        case "addr":
            return `addr ${o.cidr} ${o.dev} ${o.label ?? "-"} ${o.prefixRoute ? "prefixroute" : "noprefixroute"}${o.peer ? ` ${o.peer}` : ""}`;
        case "route":
            return "dev" in o ? `route ${o.dest} dev ${o.dev}` : `route ${o.dest} via ${o.via}`;
        case "devsysctl":
            return `devsysctl ${o.dev} ${o.key} ${o.value}`;
        case "gateway":
            return `gateway ${o.via}`;
        case "noroute":
            return `noroute ${o.dest}`;
        case "sysctl":
            return `sysctl ${o.key} ${o.value}`;
        case "chain":
            return `chain ${o.table} ${o.name}`;
        case "jump":
            return `jump ${o.table} ${o.from} ${o.chain}`;
        case "fwopen":
            return "fwopen";
        case "unit":
            return `unit ${o.name}`;
        default: {
            const exhaustive: never = o;
            return exhaustive;
        }
    }
}

export function ownerTag(stack: string, pair: string): string {
    return `tunnelpair:${stack}/${pair}`;
}

/**
 * The prefix of the pair's chain names. iptables allows 28 characters, stack and pair names
 * are longer, and two stacks may both have a pair "toy": a hash of both is short and unique;
 * the jump's comment carries the readable tag.
 */
export function chainPrefix(stack: string, pair: string): string {
    return `TP-${createHash("sha256").update(`${stack}/${pair}`).digest("hex").slice(0, 8)}`;
}

/** A rule's protocol; in ip6tables (family 6) icmp is ICMPv6, which it names ipv6-icmp. */
function protoArgs(p: Protocol, family: 4 | 6 = 4): string {
    return p === "all" ? "" : ` -p ${family === 6 && p === "icmp" ? "ipv6-icmp" : p}`;
}

/** FORWARD rules: each admitted flow, then its replies, by addresses: replies may come back by another path. */
function forwardRules(chain: string, rules: readonly ForwardRule[], family: 4 | 6 = 4): string[] {
    const flows = rules.flatMap((r) => r.protocols.flatMap((p) => r.from.flatMap((from) => r.to.map((to) => ({ r, p, from: from.cidr, to: to.cidr })))));
    return unique([
        ...flows.map(
            ({ r, p, from, to }) =>
                `-A ${chain}${r.in ? ` -i ${r.in}` : ""}${r.out ? ` -o ${r.out}` : ""} -s ${from} -d ${to}${protoArgs(p, family)} -j ACCEPT`,
        ),
        ...flows.map(({ p, from, to }) => `-A ${chain} -s ${to} -d ${from}${protoArgs(p, family)} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`),
    ]);
}

function admitRules(chain: string, rules: readonly AdmitRule[], family: 4 | 6 = 4): string[] {
    return unique(
        rules.flatMap((r) => {
            const ports =
                r.ports.length === 0 ? "" : r.ports.length === 1 ? ` -m ${r.protocol} --dport ${r.ports[0]}` : ` -m multiport --dports ${r.ports.join(",")}`;
            return r.from.map((f) => `-A ${chain} -s ${f.cidr}${protoArgs(r.protocol, family)}${ports} -j ACCEPT`);
        }),
    );
}

function firewallObjects(mode: FirewallMode, stack: string, pair: Pair, ep: Endpoint, host: Host, peerHost: Host): HostObject[] {
    switch (mode) {
        case "none":
            return [];
        case "open":
            return [{ kind: "fwopen" }];
        case "owned":
            return ownedObjects(stack, pair, ep, host, peerHost);
        default: {
            const exhaustive: never = mode;
            return exhaustive;
        }
    }
}

/** A family's filter table and the suffix of the pair's chains in it: iptables', or ip6tables' (filter6, names ending in 6). */
const familyTable = { 4: { filter: "filter", mangle: "mangle", suffix: "" }, 6: { filter: "filter6", mangle: "mangle6", suffix: "6" } } as const;
/** A host address as a family's rules write it. */
const hostCidr = (address: string, family: 4 | 6): string => `${address}/${family === 4 ? 32 : 128}`;

/**
 * The owned rules, in chains of the pair's own in the table of each family they are about:
 *   the underlay's: the tunnel's protocol (IPIP 4, GRE 47, IPv6 41: by number, "ipip" in
 *     /etc/protocols is 94; in ip6tables the next header) from the peer's underlay address to
 *     ours, and back, nothing else;
 *   what the tunnel carries: packets from the tunnel dropped unless their inner source lies
 *     behind the peer (SRC), ICMP between the tunnel addresses for the probe, `admit` (IN),
 *     `forward` (FWD), source NAT (IPv4's only: refused with an IPv6 overlay).
 * Where both are of one family (ipip, gre, ip6ip6) they share the IN and OUT chains, the
 * underlay's rule first; where they differ (sit, ipip6) the underlay's rules are alone in
 * chains of their own family's table. Chains in ip6tables are named like the IPv4 ones with
 * a 6 (TP-<hash>-IN6). A chain without a rule is not made.
 */
function ownedObjects(stack: string, pair: Pair, ep: Endpoint, host: Host, peerHost: Host): HostObject[] {
    const p = chainPrefix(stack, pair.name);
    const { protocol, overlay, underlay } = modeInfo[pair.mode];
    const dev = ep.interface;
    const peer = peerOf(pair, ep.side);
    const local = hostCidr(host.underlay.address, underlay);
    const remote = hostCidr(peerHost.underlay.address, underlay);
    const u = familyTable[underlay];
    const o = familyTable[overlay];
    const name = (chain: string, t: { suffix: string }) => `${p}-${chain}${t.suffix}`;
    const underlayIn = `-A ${name("IN", u)} -s ${remote} -d ${local} -p ${protocol} -j ACCEPT`;
    const underlayOut = `-A ${name("OUT", u)} -s ${local} -d ${remote} -p ${protocol} -j ACCEPT`;
    const shared = underlay === overlay;
    const chains: HostObject[] = [];
    const jumps: HostObject[] = [];
    const add = (table: XtTable, from: string | undefined, chain: string, rules: readonly string[]) => {
        if (rules.length === 0) return;
        chains.push({ kind: "chain", table, name: chain, rules });
        if (from) jumps.push({ kind: "jump", table, from, chain });
    };
    if (!shared) {
        add(u.filter, "INPUT", name("IN", u), [underlayIn]);
        add(u.filter, "OUTPUT", name("OUT", u), [underlayOut]);
    }
    // Inner sources that may arrive through the tunnel: what lies behind the peer (what we
    // route into the tunnel), the peer's tunnel address, and the sources of the forwarded
    // traffic admitted from the tunnel.
    const fromTunnel = ep.forward.filter((f) => f.in === dev).flatMap((f) => f.from);
    const sources = withoutCovered([...ep.routes, parseNetwork(hostCidr(peer.tunnelAddress, overlay), overlay) as Network, ...fromTunnel]);
    const src = name("SRC", o);
    add(o.filter, undefined, src, [...sources.map((s) => `-A ${src} -s ${s} -j RETURN`), `-A ${src} -j DROP`]);
    const inChain = name("IN", o);
    add(o.filter, "INPUT", inChain, [
        ...(shared ? [underlayIn] : []),
        `-A ${inChain} -i ${dev} -j ${src}`,
        ...probeRules(inChain, "-i", ep, peer, pair),
        ...admitRules(inChain, ep.admit, overlay),
    ]);
    const outChain = name("OUT", o);
    add(o.filter, "OUTPUT", outChain, [...(shared ? [underlayOut] : []), ...probeRules(outChain, "-o", ep, peer, pair)]);
    if (ep.forwarding) {
        const fwd = name("FWD", o);
        add(o.filter, "FORWARD", fwd, [`-A ${fwd} -i ${dev} -j ${src}`, ...forwardRules(fwd, ep.forward, overlay)]);
    }
    add("nat", "POSTROUTING", `${p}-NAT`, unique(ep.masquerade.map((m) => `-A ${p}-NAT -s ${m.source.cidr} -o ${m.out} -j MASQUERADE`)));
    return [...chains, ...jumps];
}

/** ICMP between the two tunnel addresses, both ways: the verification probe and its answer. */
function probeRules(chain: string, dir: "-i" | "-o", ep: Endpoint, peer: Endpoint, pair: Pair): string[] {
    if (!pair.verify) return [];
    const [src, dst] = dir === "-i" ? [peer.tunnelAddress, ep.tunnelAddress] : [ep.tunnelAddress, peer.tunnelAddress];
    const family = modeInfo[pair.mode].overlay;
    return [`-A ${chain} ${dir} ${ep.interface} -s ${hostCidr(src, family)} -d ${hostCidr(dst, family)}${protoArgs("icmp", family)} -j ACCEPT`];
}

/**
 * TCP connections forwarded into the tunnel get an MSS that fits its MTU, whatever the
 * endpoints announced: a transfer then never relies on "fragmentation needed" getting back
 * to the sender (filtered ICMP is the classic MTU black hole).
 */
function mssObjects(stack: string, pair: Pair, ep: Endpoint): HostObject[] {
    // (an IPv6 overlay's connections in ip6tables: a chain of its own name there)
    const t = familyTable[modeInfo[pair.mode].overlay];
    const chain = `${chainPrefix(stack, pair.name)}-MSS${t.suffix}`;
    const table = t.mangle;
    return [
        {
            kind: "chain",
            table,
            name: chain,
            rules: [`-A ${chain} -o ${ep.interface} -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu`],
        },
        { kind: "jump", table, from: "FORWARD", chain },
    ];
}

function hostPlan(model: Model, pair: Pair, host: string, objects: HostObject[]): HostPlan {
    const plan = {
        host,
        stack: model.stack,
        pair: pair.name,
        tag: ownerTag(model.stack, pair.name),
        stateDir: `${stateRoot}/${model.stack}/${pair.name}`,
        objects,
    };
    if (pair.persist.mode === "none") return plan;
    return {
        ...plan,
        objects: [...objects, { kind: "unit", name: unitName(model.stack, pair.name) }],
        persistence: { repair: pair.repair, explicit: pair.persist.explicit },
    };
}

/** The host-wide forwarding sysctl of the family the tunnel carries. */
export const forwardingKey = { 4: "net/ipv4/ip_forward", 6: "net/ipv6/conf/all/forwarding" } as const;

/** The plan for one endpoint of a pair on its host. */
export function planEndpoint(model: Model, pair: Pair, side: "a" | "b"): HostPlan {
    const ep = side === "a" ? pair.a : pair.b;
    const peer = peerOf(pair, side);
    const host = model.hosts[ep.host];
    const peerHost = model.hosts[peer.host];
    const dev = ep.interface;
    const overlay = modeInfo[pair.mode].overlay;
    const forwarding: HostObject[] = ep.forwarding ? [{ kind: "sysctl", key: forwardingKey[overlay], value: "1" }] : [];
    return hostPlan(model, pair, ep.host, [
        ...firewallObjects(pair.firewall, model.stack, pair, ep, host, peerHost),
        ...(ep.clampMss ? mssObjects(model.stack, pair, ep) : []),
        ...(overlay === 4 ? forwarding : []),
        ...deviceObjects(pair, dev, host.underlay.address, peerHost.underlay.address, String(ep.ttl), ep.mtu),
        // IPv6's after the device: where ipv6 is a module not loaded yet, loading sit loads it,
        // and its sysctls exist only then
        ...(overlay === 6 ? forwarding : []),
        { kind: "state", dev },
        // rp_filter's effective value is the larger of "all" and the device's: 2 (loose) wins over 1
        ...(ep.reversePathFilter === "loose" ? [{ kind: "devsysctl", dev, key: "rp_filter", value: "2" } as const] : []),
        { kind: "addr", cidr: tunnelCidr(ep), dev, prefixRoute: ep.keepConnectedRoute, ...(ep.peerAddress ? { peer: `${ep.peerAddress}/32` } : {}) },
        ...ep.localAddresses.map((la): HostObject => ({
            kind: "addr",
            cidr: `${la.address}/${la.prefix}`,
            dev: la.interface,
            label: la.label,
            prefixRoute: la.keepConnectedRoute,
        })),
        ...ep.routes.map((r): HostObject => ({ kind: "route", dest: r.cidr, dev })),
    ]);
}

/**
 * The pair's device on one endpoint and its MTU: ipip's `link` and `mtu`, or the other modes'
 * `tunnel` and `tunmtu` (kinds of their own, so that an ipip pair's scripts stay as they were).
 */
function deviceObjects(pair: Pair, dev: string, local: string, remote: string, ttl: string, value: number | "auto"): HostObject[] {
    const { mode } = pair;
    if (mode === "ipip")
        return [
            { kind: "link", dev, local, remote, ttl },
            { kind: "mtu", dev, value, peer: remote },
        ];
    return [
        { kind: "tunnel", dev, mode, local, remote, ttl, ...(pair.key === undefined ? {} : { key: pair.key }) },
        { kind: "tunmtu", dev, value, peer: remote, overhead: overheadOf(pair) },
    ];
}

/** Every host a pair touches: its two endpoints, the desktop clients and compute nodes behind them. */
export interface PlannedHost {
    /** "a", "b", "client", "node": the Command's role. */
    readonly role: "a" | "b" | "client" | "node";
    readonly plan: HostPlan;
}

export function planPair(model: Model, pair: Pair): PlannedHost[] {
    const out: PlannedHost[] = [
        { role: "a", plan: planEndpoint(model, pair, "a") },
        { role: "b", plan: planEndpoint(model, pair, "b") },
    ];
    for (const ep of [pair.a, pair.b]) {
        const gateway = model.hosts[ep.host].underlay.address;
        for (const c of ep.clients) {
            out.push({
                role: "client",
                plan: hostPlan(
                    model,
                    pair,
                    c.host,
                    c.networks.map((n): HostObject => ({ kind: "route", dest: n.cidr, via: gateway })),
                ),
            });
        }
        for (const n of ep.computeNodes) {
            const objects: HostObject[] = [{ kind: "gateway", via: n.gateway }];
            if (n.dropLinkLocal) objects.push({ kind: "noroute", dest: "169.254.0.0/16" });
            out.push({ role: "node", plan: hostPlan(model, pair, n.host, objects) });
        }
    }
    return out;
}

/** The probe that ends b's apply at `pulumi up`: on b's host, from b's tunnel address to a's. */
export interface VerifyPlan {
    readonly host: string;
    readonly stack: string;
    /** The pair's name, for the MTU it tells the admin to set. */
    readonly pair: string;
    readonly tag: string;
    readonly dev: string;
    readonly from: string;
    readonly to: string;
    /** The peer's host name, for the diagnosis. */
    readonly peer: string;
    /** The underlay addresses of this host and the peer. */
    readonly local: string;
    readonly remote: string;
    /** The pair's mode, and the bytes its tunnel adds to each packet. */
    readonly mode: TunnelMode;
    readonly overhead: number;
}

export function planVerify(model: Model, pair: Pair): VerifyPlan | undefined {
    if (!pair.verify) return undefined;
    // on b, at the end of its apply (a's is done by then: b waits for it)
    const { a, b } = pair;
    return {
        host: b.host,
        stack: model.stack,
        pair: pair.name,
        tag: ownerTag(model.stack, pair.name),
        dev: b.interface,
        from: b.tunnelAddress,
        to: a.tunnelAddress,
        peer: a.host,
        local: model.hosts[b.host].underlay.address,
        remote: model.hosts[a.host].underlay.address,
        mode: pair.mode,
        overhead: overheadOf(pair),
    };
}

/** The networks' CIDRs, less those inside another one of them (or repeated). */
function withoutCovered(networks: Network[]): string[] {
    const kept = networks.filter(
        (n, i) => !networks.some((m, j) => j !== i && m.prefix <= n.prefix && contains(m, n.address) && (m.prefix < n.prefix || j < i)),
    );
    return kept.map((n) => n.cidr);
}

function unique(xs: string[]): string[] {
    return [...new Set(xs)];
}
