// What a Pulumi program passes to `new TunnelPair(name, args)`: one pair, shaped like an entry
// of the stack config's `tunnelpair:pairs`, with the hosts it touches written inline. Every
// value is a `pulumi.Input` (a VM's address, a generated key) but for the few that shape the
// resource graph: a host's `name`, which names its Command, the lists of clients and compute
// nodes (one Command each) and `verify` (whether the probe exists). The types stay within
// what Pulumi's component schema analyzer reads (interfaces, `T[]`, `as const` enums; no
// unions, readonly arrays or inline object types), so other languages see the same fields.
//
// The nested interfaces have bare names (Endpoint, Host...) because the analyzer names the
// schema's types after them and each language's SDK adds its own suffix (Python's
// `tunnelpair.EndpointArgs`, not `EndpointArgsArgs`); TypeScript programs have the usual
// `...Args` names as aliases, at the end of this file.
import * as pulumi from "@pulumi/pulumi";

/** How a pair treats the hosts' firewalls. */
export const Firewall = {
    /** Exactly what the tunnel needs, in chains the pair owns, jumped to from the top of INPUT/OUTPUT/FORWARD; destroy removes them. */
    Owned: "owned",
    /** The how-to's "stop the firewall": the whole ruleset saved, everything accepted, the saved ruleset restored on destroy. */
    Open: "open",
    /** The firewall is left alone. */
    None: "none",
} as const;
export type Firewall = (typeof Firewall)[keyof typeof Firewall];

/** What the tunnel carries, over what. */
export const Mode = {
    /** IPv4 over IPv4 (IP-in-IP, protocol 4): the how-to's tunnel. */
    Ipip: "ipip",
    /** IPv4 over IPv4 in GRE (protocol 47), with an optional key; interoperates with routers. */
    Gre: "gre",
    /** IPv6 over IPv4 (protocol 41, a sit device). */
    Sit: "sit",
    /** IPv4 over IPv6 (next header 4, an ip6tnl device). */
    Ipip6: "ipip6",
    /** IPv6 over IPv6 (next header 41, an ip6tnl device). */
    Ip6ip6: "ip6ip6",
} as const;
export type Mode = (typeof Mode)[keyof typeof Mode];

/** A protocol of a rule. */
export const Protocol = { Tcp: "tcp", Udp: "udp", Icmp: "icmp", All: "all" } as const;
export type Protocol = (typeof Protocol)[keyof typeof Protocol];

/** The tunnel device's reverse-path filter. */
export const ReversePathFilter = {
    /** Unchanged. */
    Keep: "keep",
    /** rp_filter 2 on the tunnel device, for a host that filters strictly and admits sources whose return path is another interface. */
    Loose: "loose",
} as const;
export type ReversePathFilter = (typeof ReversePathFilter)[keyof typeof ReversePathFilter];

/** Whether the pair comes back by itself after a reboot. */
export const Persist = {
    /** systemd units of the pair's own converge it at boot (and repair it, see `repair`); a host without systemd falls back to none, with a warning, unless `boot` is written. */
    Boot: "boot",
    /** Nothing is installed: after a reboot the tunnel is gone until the next `pulumi up`. */
    None: "none",
} as const;
export type Persist = (typeof Persist)[keyof typeof Persist];

/** When `pulumi up` runs the hosts' converge. */
export const Converge = {
    /** When the pair's configuration (its scripts) changed. */
    OnChange: "onchange",
    /** At every `pulumi up`: what drifted is put back, for hosts without systemd's repair timer. Each host's Command then shows as an update at every preview. */
    Always: "always",
} as const;
export type Converge = (typeof Converge)[keyof typeof Converge];

/** An SSH jump host's connection: a connection without a jump host of its own. */
export interface JumpHost {
    /** The address or name the deployer's SSH reaches. */
    host: pulumi.Input<string>;
    /** The SSH port. Default: 22. */
    port?: pulumi.Input<number>;
    /** The login user; one other than root needs `sudo: true` on the host. Default: root. */
    user?: pulumi.Input<string>;
    /** The private key's text (OpenSSH or PEM). Always held as a Pulumi secret. One of privateKey, password or agent is required. */
    privateKey?: pulumi.Input<string>;
    /** The private key's passphrase. Always held as a Pulumi secret. */
    privateKeyPassword?: pulumi.Input<string>;
    /** The user's password. Always held as a Pulumi secret. */
    password?: pulumi.Input<string>;
    /** Authenticate with the deployer's SSH agent (SSH_AUTH_SOCK). Default: false. */
    agent?: pulumi.Input<boolean>;
    /** The host's public key, `ssh-ed25519 AAAA...`, pinned. Default: not verified (a warning says so). */
    hostKey?: pulumi.Input<string>;
    /** Further connection attempts before the update fails (waits from 0.1 s, x1.5, at most 5 s). Default: 10, the provider's. */
    dialErrorLimit?: pulumi.Input<number>;
    /** Seconds per connection attempt. Default: 10. */
    perDialTimeout?: pulumi.Input<number>;
    /**
     * Where this is the jump host (`proxy`) of other hosts: how many of their Commands open
     * sessions through it at once, 1 to 100; the rest wait in that many lanes (each host's
     * Command depends on the one that many places before it), on up and on destroy. The
     * bound is per pair: pairs sharing a jump host add up, so lower it where several pairs'
     * hosts go through one. Hosts share it whose `proxy` is one object or has the same plain
     * host and port (where their values differ, the smallest counts). Not an SSH option: the
     * provider never sees it. Plain (it shapes the resource graph). Default: 8, below sshd's
     * default MaxStartups (from 10 connections still authenticating, it refuses new ones at
     * random), leaving room for the jump host's own sessions.
     */
    jumpSessions?: number;
}

/** How the deployer reaches a host over SSH (the `@pulumi/command` connection). */
export interface Connection extends JumpHost {
    /** The SSH jump host to go through, e.g. a cluster router in front of its compute nodes. Default: none. */
    proxy?: JumpHost;
}

/** The interface and address that carry the tunnel's packets. */
export interface Underlay {
    /** The interface, e.g. eth0. */
    interface: pulumi.Input<string>;
    /**
     * Its address, the tunnel's local or remote endpoint: `130.88.198.58`, or with its
     * segment's prefix (`130.88.196.129/16`) for desktop clients and their gateways, so that
     * a client's gateway can be checked to be on its segment.
     */
    address: pulumi.Input<string>;
}

/** A Linux host the pair changes. */
export interface Host {
    /** The host's name: it names the host's Command (`<pair>-<role>-<name>`) and the messages about it. Plain (it shapes the resource graph). */
    name: string;
    /** How the deployer reaches it. */
    connection: Connection;
    /** Run the scripts through `sudo -n` (never prompting), for a user other than root. Default: false. */
    sudo?: pulumi.Input<boolean>;
    /** The interface and address that carry the tunnel. Required for every host, the clients and compute nodes included. */
    underlay: Underlay;
    /** The host's other interfaces that forward and masquerade rules name, e.g. a cluster interface. Default: none. */
    interfaces?: pulumi.Input<pulumi.Input<string>[]>;
}

/** An extra address on one of the endpoint's interfaces, e.g. the how-to's alias eth0:0. */
export interface LocalAddress {
    /** The address with its prefix, e.g. 10.0.1.1/24. */
    address: pulumi.Input<string>;
    /** The interface. Default: the underlay's. */
    interface?: pulumi.Input<string>;
    /** The alias name (ifconfig's eth0:0); must start with the interface name. Default: none. */
    label?: pulumi.Input<string>;
    /** Keep the kernel's connected route of the address. Default: false (the how-to deletes it). */
    keepConnectedRoute?: pulumi.Input<boolean>;
}

/** Traffic to the endpoint's host that the pair admits (INPUT), e.g. SSH from the tunnel networks. Needs firewall owned. */
export interface AdmitRule {
    /** Source networks, e.g. 10.200.100.0/24. */
    from: pulumi.Input<pulumi.Input<string>[]>;
    /** The protocol. Default: all. */
    protocol?: pulumi.Input<Protocol>;
    /** Destination ports, with tcp or udp. Default: all. */
    ports?: pulumi.Input<pulumi.Input<number>[]>;
}

/** Forwarded traffic the pair admits (FORWARD), and its replies. Needs forwarding and firewall owned. */
export interface ForwardRule {
    /** Source networks. */
    from: pulumi.Input<pulumi.Input<string>[]>;
    /** Destination networks. */
    to: pulumi.Input<pulumi.Input<string>[]>;
    /** The interface it arrives on: the pair's device, or one the host is known to have. Default: any. Sources admitted in the tunnel device may arrive through the tunnel. */
    in?: pulumi.Input<string>;
    /** The interface it leaves by. Default: any. */
    out?: pulumi.Input<string>;
    /** Protocols. Default: [all]. */
    protocols?: pulumi.Input<pulumi.Input<Protocol>[]>;
}

/** Source NAT of a private network leaving by an interface. Needs forwarding and firewall owned. */
export interface Masquerade {
    /** The private network, e.g. 192.168.104.0/24. */
    source: pulumi.Input<string>;
    /** The interface it leaves by. */
    out: pulumi.Input<string>;
}

/** A desktop client behind an endpoint: it routes the tunnel's far side via the endpoint, its gateway on its segment. */
export interface Client {
    /** The client host; its underlay address is written with its segment's prefix. */
    host: Host;
    /** The networks it routes via the endpoint. Default: the endpoint's routes. */
    networks?: pulumi.Input<pulumi.Input<string>[]>;
}

/** A private host behind an endpoint: its default route goes via `gateway` while the pair exists. */
export interface ComputeNode {
    /** The node; reach it through a jump host (`connection.proxy`). */
    host: Host;
    /** Its router's address on its segment. */
    gateway: pulumi.Input<string>;
    /** Also drop its 169.254.0.0/16 route while the pair exists. Default: false. */
    dropLinkLocal?: pulumi.Input<boolean>;
}

/** One end of the tunnel. */
export interface Endpoint {
    /** The endpoint's host. */
    host: Host;
    /** The tunnel device. Default: tunl1 for ipip, gre1 for gre, sit1 for sit, ip6tnl1 for ipip6 and ip6ip6 (the kernel's fallback devices, tunl0, gre0, sit0, ip6tnl0..., are refused). */
    interface?: pulumi.Input<string>;
    /** The endpoint's tunnel network, e.g. 10.0.1.0/24 (IPv6, e.g. 2001:db8:1::/64, where the mode carries IPv6), or one network both ends share (a /30, a /31). Required unless peerAddress. */
    network?: pulumi.Input<string>;
    /** The device's address, inside network, e.g. 10.0.1.2: in the family the mode carries, as are routes, localAddresses and the rules' networks. */
    tunnelAddress: pulumi.Input<string>;
    /** Point-to-point addressing instead of network: the peer's tunnelAddress (`ip addr add A peer B`). Default: none. */
    peerAddress?: pulumi.Input<string>;
    /** Keep the kernel's connected route of network. Default: false, but always kept where it reaches the peer (a shared network, a peer address). */
    keepConnectedRoute?: pulumi.Input<boolean>;
    /** Extra addresses, e.g. the how-to's unrouted alias. Default: none. */
    localAddresses?: pulumi.Input<pulumi.Input<LocalAddress>[]>;
    /** Networks sent through the tunnel to the peer. Default: none (the probe then needs a shared network or peerAddress). */
    routes?: pulumi.Input<pulumi.Input<string>[]>;
    /** net.ipv4.ip_forward=1 while the pair exists (restored on destroy); net.ipv6.conf.all.forwarding=1 where the mode carries IPv6. Default: false. */
    forwarding?: pulumi.Input<boolean>;
    /** The tunnel MTU (at least 1280 where the mode carries IPv6). Default: the MTU of the route to the peer less the mode's overhead (ipip 20, gre 24 or 28 with a key, sit 20, ipip6 and ip6ip6 40), read on the host at each apply. */
    mtu?: pulumi.Input<number>;
    /** The outer TTL (IPv6 underlays: hop limit), 1-255. Default: inherit. */
    ttl?: pulumi.Input<number>;
    /** Forwarded traffic admitted. Default: none. */
    forward?: pulumi.Input<pulumi.Input<ForwardRule>[]>;
    /** Traffic to the host admitted. Default: none. */
    admit?: pulumi.Input<pulumi.Input<AdmitRule>[]>;
    /** Source NAT. Default: none. */
    masquerade?: pulumi.Input<pulumi.Input<Masquerade>[]>;
    /** The tunnel device's rp_filter. Default: keep. */
    reversePathFilter?: pulumi.Input<ReversePathFilter>;
    /** Clamp the MSS of forwarded TCP leaving by the tunnel to its path MTU. Default: the value of forwarding. */
    clampMss?: pulumi.Input<boolean>;
    /** Desktop clients behind this endpoint, one Command each. Plain list. Default: none. */
    clients?: Client[];
    /** Compute nodes behind this endpoint, one Command each. Plain list. Default: none. */
    computeNodes?: ComputeNode[];
}

/** An IP tunnel (IPIP, GRE, SIT or ip6tnl) between two Linux hosts. */
export interface TunnelPairArgs {
    /** The first endpoint; the verification probe runs on its host. */
    a: Endpoint;
    /** The second endpoint. */
    b: Endpoint;
    /**
     * What the tunnel carries over what: its addresses' and the underlay addresses' families,
     * its device type, the protocol the owned rules admit. Default: ipip. Modes that
     * involve IPv6 do not combine (yet) with firewall open, clients, computeNodes and, where
     * the tunnel carries IPv6, peerAddress, masquerade and reversePathFilter loose.
     */
    mode?: pulumi.Input<Mode>;
    /** GRE's key, 0 to 4294967295, the same at both ends; only with mode gre. Not a secret: every packet carries it in clear. Default: none. */
    key?: pulumi.Input<number>;
    /** How the pair treats the hosts' firewalls. Default: owned. */
    firewall?: pulumi.Input<Firewall>;
    /** End each update with a probe through the tunnel from a's tunnel address to b's. Plain (it adds a Command). Default: true. */
    verify?: boolean;
    /** Whether the pair comes back by itself after a reboot (systemd units of its own on every host). Default: boot where the host runs systemd. */
    persist?: pulumi.Input<Persist>;
    /** Seconds between the repair runs of a persisted pair (a timer re-runs the converge: a flushed chain, a deleted route, a device removed come back), 10 to 86400; 0: no repair. Default: 60. */
    repair?: pulumi.Input<number>;
    /** When `pulumi up` runs the hosts' converge. Default: onchange. */
    converge?: pulumi.Input<Converge>;
    /**
     * The namespace of the pair on its hosts: its ownership tag `tunnelpair:<stack>/<pair>`
     * and state directory `/var/lib/tunnelpair/<stack>/<pair>`, the pair being the resource's
     * name. Plain. Default: the Pulumi stack's name.
     */
    stack?: string;
}

export type JumpHostArgs = JumpHost;
export type ConnectionArgs = Connection;
export type UnderlayArgs = Underlay;
export type HostArgs = Host;
export type LocalAddressArgs = LocalAddress;
export type AdmitRuleArgs = AdmitRule;
export type ForwardRuleArgs = ForwardRule;
export type MasqueradeArgs = Masquerade;
export type ClientArgs = Client;
export type ComputeNodeArgs = ComputeNode;
export type EndpointArgs = Endpoint;
