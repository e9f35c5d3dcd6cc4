// The validated model: what the rest of the program works from. Every value here has been
// checked by validate.ts; defaults are filled in; addresses are in canonical form.
import { contains, Family, Network } from "./address";

/**
 * How a pair treats the hosts' firewalls.
 * - `owned`: add exactly what the tunnel needs, in chains the pair owns, jumped to from the
 *   top of INPUT/OUTPUT/FORWARD; destroy removes the jumps and chains.
 * - `open`: the how-to's "stop the firewall": save the whole ruleset, accept everything, and
 *   restore the saved ruleset exactly on destroy.
 * - `none`: leave the firewall alone.
 */
export type FirewallMode = "owned" | "open" | "none";
export const firewallModes: readonly FirewallMode[] = ["owned", "open", "none"];

/**
 * What the pair's tunnel carries, and over what (overlay over underlay):
 * - `ipip`: IPv4 over IPv4 (the how-to's, and the default);
 * - `gre`: IPv4 over IPv4 in GRE, with an optional key that tells tunnels between the same
 *   two addresses apart;
 * - `sit`: IPv6 over IPv4;
 * - `ipip6`: IPv4 over IPv6 (an ip6tnl device);
 * - `ip6ip6`: IPv6 over IPv6 (an ip6tnl device).
 */
export type TunnelMode = "ipip" | "gre" | "sit" | "ipip6" | "ip6ip6";
export const tunnelModes: readonly TunnelMode[] = ["ipip", "gre", "sit", "ipip6", "ip6ip6"];

/** What a mode means on the wire and on the host. */
export interface ModeInfo {
    /** The family the tunnel carries: its addresses, networks, routes, local addresses, rules. */
    readonly overlay: Family;
    /** The family of the hosts' underlay addresses, the tunnel's local and remote. */
    readonly underlay: Family;
    /** The protocol (IPv6: next header) of the tunnel's packets on the underlay, as the owned rules match it. */
    readonly protocol: number;
    /** The bytes each packet gains on the underlay, without a GRE key (4 more). */
    readonly overhead: number;
    /** The device type `ip link add ... type` takes. */
    readonly linkType: "ipip" | "gre" | "sit" | "ip6tnl";
    /** The kernel module that makes such devices. */
    readonly module: string;
    /** The device name when the endpoint names none. */
    readonly defaultInterface: string;
}

export const modeInfo: Readonly<Record<TunnelMode, ModeInfo>> = {
    ipip: { overlay: 4, underlay: 4, protocol: 4, overhead: 20, linkType: "ipip", module: "ipip", defaultInterface: "tunl1" },
    gre: { overlay: 4, underlay: 4, protocol: 47, overhead: 24, linkType: "gre", module: "ip_gre", defaultInterface: "gre1" },
    sit: { overlay: 6, underlay: 4, protocol: 41, overhead: 20, linkType: "sit", module: "sit", defaultInterface: "sit1" },
    // (ip6tnl devices get "encaplimit none": without it each packet carries an 8-byte
    // destination options header too, and the overhead would be 48)
    ipip6: { overlay: 4, underlay: 6, protocol: 4, overhead: 40, linkType: "ip6tnl", module: "ip6_tunnel", defaultInterface: "ip6tnl1" },
    ip6ip6: { overlay: 6, underlay: 6, protocol: 41, overhead: 40, linkType: "ip6tnl", module: "ip6_tunnel", defaultInterface: "ip6tnl1" },
};

/** The bytes the pair's tunnel adds to each packet: the mode's, and 4 for a GRE key. */
export function overheadOf(pair: Pick<Pair, "mode" | "key">): number {
    return modeInfo[pair.mode].overhead + (pair.key === undefined ? 0 : 4);
}

export interface Connection {
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly privateKey?: string;
    readonly privateKeyPassword?: string;
    readonly password?: string;
    /** Authenticate with the deployer's SSH agent (SSH_AUTH_SOCK). */
    readonly agent: boolean;
    readonly hostKey?: string;
    /** The SSH jump host's connection (one level: it has no jump host of its own). */
    readonly proxy?: Connection;
    /** The jump host's name, when the configuration named a declared host. */
    readonly proxyName?: string;
    readonly dialErrorLimit: number;
    readonly perDialTimeout: number;
    /**
     * Where this host is the jump host of others: how many of their Commands in one pair open
     * sessions through it at once (see lanes.ts). Not an SSH option: it shapes the resource
     * graph and never reaches the provider's connection.
     */
    readonly jumpSessions: number;
}

export interface Host {
    readonly name: string;
    readonly connection: Connection;
    /** Run the scripts through `sudo -n` (the connection's user is not root). */
    readonly sudo: boolean;
    /** The interface and address that carry the tunnel's packets; the prefix, when given, is its segment's. */
    readonly underlay: { readonly interface: string; readonly address: string; readonly prefix?: number };
    /**
     * The host's other interfaces that rules name (forward `in`/`out`, masquerade `out`), e.g.
     * a cluster interface; with the underlay, tunnel and local-address interfaces, the names a
     * rule may use, so that a typo is refused instead of silently matching nothing.
     */
    readonly interfaces: readonly string[];
}

export interface LocalAddress {
    /** "10.0.1.1" */
    readonly address: string;
    readonly prefix: number;
    readonly interface: string;
    /** The how-to's alias name, e.g. "eth0:0". */
    readonly label?: string;
    readonly keepConnectedRoute: boolean;
}

export type Protocol = "tcp" | "udp" | "icmp" | "all";
export const protocols: readonly Protocol[] = ["tcp", "udp", "icmp", "all"];

/** Forwarded traffic this endpoint admits (FORWARD), and its replies. */
export interface ForwardRule {
    readonly from: readonly Network[];
    readonly to: readonly Network[];
    /** The interface it arrives on; any when unset. */
    readonly in?: string;
    /** The interface it leaves by; any when unset. */
    readonly out?: string;
    readonly protocols: readonly Protocol[];
}

/** Traffic to this host it admits (INPUT), e.g. SSH from the tunnel networks. */
export interface AdmitRule {
    readonly from: readonly Network[];
    readonly protocol: Protocol;
    /** Destination ports (tcp, udp); all when empty. */
    readonly ports: readonly number[];
}

/** Source NAT of a private network leaving by an interface. */
export interface Masquerade {
    readonly source: Network;
    readonly out: string;
}

/** A desktop client: it routes `networks` via this endpoint, its gateway on its segment. */
export interface Client {
    readonly host: string;
    readonly networks: readonly Network[];
}

/** A private host behind this endpoint: its default route goes via `gateway` while the pair exists. */
export interface ComputeNode {
    readonly host: string;
    readonly gateway: string;
    /** Also drop the node's 169.254.0.0/16 route (the how-to's optional step). */
    readonly dropLinkLocal: boolean;
}

export interface Endpoint {
    readonly side: "a" | "b";
    readonly host: string;
    readonly interface: string;
    /**
     * The endpoint's tunnel network; the tunnel address lies inside it. Both endpoints of a
     * pair may share one (a /30, a /31...); with `peerAddress` it is the tunnel address's /32.
     */
    readonly network: Network;
    readonly tunnelAddress: string;
    /**
     * Point-to-point addressing (`ip addr add A peer B`): the peer's tunnel address, reached by
     * the host route the kernel makes with the address.
     */
    readonly peerAddress?: string;
    /** Keep the kernel's connected route for `network` (for a shared network and a peer address: always). */
    readonly keepConnectedRoute: boolean;
    readonly localAddresses: readonly LocalAddress[];
    /** Networks sent through the tunnel to the peer. */
    readonly routes: readonly Network[];
    readonly forwarding: boolean;
    /** "auto": the MTU of the route to the peer less the mode's overhead (overheadOf), read on the host at apply time. */
    readonly mtu: number | "auto";
    readonly ttl: number | "inherit";
    readonly forward: readonly ForwardRule[];
    readonly admit: readonly AdmitRule[];
    readonly masquerade: readonly Masquerade[];
    /**
     * "loose": the tunnel device's rp_filter is 2, for a host that filters strictly and
     * admits sources whose return path is another interface. "keep": unchanged.
     */
    readonly reversePathFilter: "keep" | "loose";
    /**
     * Clamp the MSS of forwarded TCP connections leaving by the tunnel to its path MTU
     * (mangle FORWARD, a chain the pair owns): large transfers then never depend on ICMP
     * "fragmentation needed" reaching the sender. Defaults to `forwarding`.
     */
    readonly clampMss: boolean;
    readonly clients: readonly Client[];
    readonly computeNodes: readonly ComputeNode[];
}

export interface Pair {
    readonly name: string;
    readonly a: Endpoint;
    readonly b: Endpoint;
    /** What the tunnel carries over what (modeInfo). */
    readonly mode: TunnelMode;
    /** GRE's key (0 to 2^32-1), the same at both ends; only with mode gre. Not a secret: it travels in clear in every packet. */
    readonly key?: number;
    readonly firewall: FirewallMode;
    /** End `pulumi up` with a probe from a's tunnel address to b's through the tunnel. */
    readonly verify: boolean;
    /**
     * Where the hosts run systemd, units of the pair's own converge it at boot (`boot`) or
     * not (`none`); `explicit` when the configuration says `boot` itself, which a host
     * without systemd then refuses (the default degrades to none with a warning).
     */
    readonly persist: { readonly mode: PersistMode; readonly explicit: boolean };
    /** Seconds between drift-repair runs of the converge, or "off". With persist: boot only. */
    readonly repair: number | "off";
    /** `always`: every `pulumi up` runs the hosts' converge again, changed or not (for hosts without systemd). */
    readonly converge: ConvergeMode;
}

export type ConvergeMode = "onchange" | "always";
export const convergeModes: readonly ConvergeMode[] = ["onchange", "always"];

export type PersistMode = "boot" | "none";
export const persistModes: readonly PersistMode[] = ["boot", "none"];
/** The repair period's bounds, in seconds. */
export const repairRange = { min: 10, max: 86400 } as const;
/**
 * How many hosts' Commands of a pair may go through one jump host at once: 8 by default,
 * below sshd's default `MaxStartups 10:30:100` (from 10 connections still authenticating, it
 * refuses new ones at random), leaving room for the jump host's own sessions.
 */
export const jumpSessionsRange = { min: 1, max: 100, default: 8 } as const;

export interface Model {
    readonly stack: string;
    readonly hosts: Readonly<Record<string, Host>>;
    readonly pairs: readonly Pair[];
}

/**
 * How an endpoint is addressed:
 * - `separate`: a network of its own, the how-to's style; each end routes the other's network;
 * - `shared`: one network for both ends (a /30, an RFC 3021 /31, or wider), or any network
 *   that holds the peer's tunnel address: its connected route on the device reaches the peer;
 * - `peer`: a /32 with the peer's address (`ip addr add A peer B`) and its host route.
 */
export type Addressing = "separate" | "shared" | "peer";

export function addressingOf(pair: Pair, ep: Endpoint): Addressing {
    if (ep.peerAddress !== undefined) return "peer";
    return contains(ep.network, peerOf(pair, ep.side).tunnelAddress) ? "shared" : "separate";
}

/** The endpoint on the other side of the pair. */
export function peerOf(pair: Pair, side: "a" | "b"): Endpoint {
    return side === "a" ? pair.b : pair.a;
}
