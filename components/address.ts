// IPv4 address math, all of it through ip-address: one place that knows what a valid
// address, a network and an overlap are.
import { Address4 } from "ip-address";

/** A parsed IPv4 network such as 10.0.2.0/24 (host bits zero). */
export interface Network {
    readonly address: string;
    readonly prefix: number;
    /** "10.0.2.0/24" */
    readonly cidr: string;
}

/** Parses a bare IPv4 address ("10.0.2.1"); undefined when it is not one. */
export function parseAddress(text: string): string | undefined {
    if (!text.includes("/") && Address4.isValid(text)) {
        return new Address4(text).correctForm();
    }
    return undefined;
}

/** Parses "a.b.c.d/n" keeping the host bits; undefined when malformed or without a prefix. */
export function parseInterfaceAddress(text: string): { address: string; prefix: number } | undefined {
    if (!/^[0-9.]+\/[0-9]{1,2}$/.test(text) || !Address4.isValid(text)) {
        return undefined;
    }
    const a = new Address4(text);
    return { address: a.correctForm(), prefix: a.subnetMask };
}

/** Parses a network "a.b.c.d/n" whose host bits are zero; a bare address is a /32. */
export function parseNetwork(text: string): Network | { error: string } {
    if (text === "default") {
        return toNetwork("0.0.0.0", 0);
    }
    const withPrefix = text.includes("/") ? text : `${text}/32`;
    const parsed = parseInterfaceAddress(withPrefix);
    if (!parsed) {
        return { error: `${text} is not an IPv4 network (a.b.c.d/n)` };
    }
    const start = new Address4(withPrefix).startAddress().correctForm();
    if (start !== parsed.address) {
        return { error: `${text} has host bits set (the network is ${start}/${parsed.prefix})` };
    }
    return toNetwork(start, parsed.prefix);
}

function toNetwork(address: string, prefix: number): Network {
    return { address, prefix, cidr: `${address}/${prefix}` };
}

/** The network an interface address belongs to: 10.0.2.1/24 -> 10.0.2.0/24. */
export function networkOf(address: string, prefix: number): Network {
    return toNetwork(new Address4(`${address}/${prefix}`).startAddress().correctForm(), prefix);
}

/** True when the address lies inside the network. */
export function contains(network: Network, address: string): boolean {
    return new Address4(address).isInSubnet(new Address4(network.cidr));
}

/** True when two networks share at least one address (one contains the other). */
export function overlaps(x: Network, y: Network): boolean {
    return contains(x, y.address) || contains(y, x.address);
}

/** The network's first (network) and last (broadcast) addresses. */
export function bounds(network: Network): { first: string; last: string } {
    const a = new Address4(network.cidr);
    return { first: a.startAddress().correctForm(), last: a.endAddress().correctForm() };
}

/**
 * Why an address cannot be a host's own unicast address (a tunnel endpoint, a tunnel or
 * local address, a gateway), or undefined when it can: "this network" (0.0.0.0/8, which a
 * packet may only come from while its host learns its address), loopback, multicast, the
 * reserved class E and the limited broadcast 255.255.255.255. With the prefix of its segment,
 * also the segment's network and broadcast addresses (a /31 and a /32 have neither).
 */
export function notUnicast(address: string, prefix?: number): string | undefined {
    const special: [string, string][] = [
        ["0.0.0.0/8", 'in 0.0.0.0/8 ("this network"), not a host\'s address'],
        ["127.0.0.0/8", "a loopback address (127.0.0.0/8): it never leaves the host"],
        ["224.0.0.0/4", "a multicast address (224.0.0.0/4)"],
        ["255.255.255.255/32", "the limited broadcast address"],
        ["240.0.0.0/4", "in the reserved 240.0.0.0/4 (class E), which hosts do not use"],
    ];
    const a = new Address4(address);
    for (const [cidr, why] of special) if (a.isInSubnet(new Address4(cidr))) return why;
    if (prefix !== undefined && prefix < 31) {
        const { first, last } = bounds(networkOf(address, prefix));
        if (address === first) return `the network address of ${first}/${prefix}`;
        if (address === last) return `the broadcast address of ${first}/${prefix}`;
    }
    return undefined;
}

/** An address to stand for the network in a probe: the network itself when /31 or /32, else its first host. */
export function representative(network: Network): string {
    if (network.prefix >= 31) return network.address;
    return Address4.fromBigInt(new Address4(network.address).bigInt() + 1n).correctForm();
}
