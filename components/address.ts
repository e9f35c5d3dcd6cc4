// IPv4 and IPv6 address math, all of it through ip-address: one place that knows what a
// valid address, a network and an overlap are. IPv4 is the default family everywhere: a
// caller that says nothing gets what it always got.
import { Address4, Address6 } from "ip-address";

/** An address family: 4 or 6. */
export type Family = 4 | 6;

/** A parsed network such as 10.0.2.0/24 or 2001:db8:2::/64 (host bits zero). */
export interface Network {
    readonly address: string;
    readonly prefix: number;
    /** "10.0.2.0/24" */
    readonly cidr: string;
}

/** The family of an address or network already parsed (canonical form): IPv6 has colons. */
export function familyOf(address: string): Family {
    return address.includes(":") ? 6 : 4;
}

/** IPv6 text as ip-address takes it, without a zone (`%eth0`), which no field here may carry. */
const v6Text = /^[0-9A-Fa-f:.]+(\/[0-9]{1,3})?$/;

function valid(text: string, family: Family): boolean {
    return family === 4 ? Address4.isValid(text) : v6Text.test(text) && text.includes(":") && Address6.isValid(text);
}

function parsed(text: string, family: Family): Address4 | Address6 {
    return family === 4 ? new Address4(text) : new Address6(text);
}

/** Parses a bare address ("10.0.2.1", "2001:db8::1") of the family; undefined when it is not one. */
export function parseAddress(text: string, family: Family = 4): string | undefined {
    if (!text.includes("/") && valid(text, family)) {
        return parsed(text, family).correctForm();
    }
    return undefined;
}

/** Parses "a.b.c.d/n" (or "x:x::x/n") keeping the host bits; undefined when malformed or without a prefix. */
export function parseInterfaceAddress(text: string, family: Family = 4): { address: string; prefix: number } | undefined {
    const shape = family === 4 ? /^[0-9.]+\/[0-9]{1,2}$/ : /^[0-9A-Fa-f:.]+\/[0-9]{1,3}$/;
    if (!shape.test(text) || !valid(text, family)) {
        return undefined;
    }
    const a = parsed(text, family);
    return { address: a.correctForm(), prefix: a.subnetMask };
}

/** Parses a network "a.b.c.d/n" (or "x:x::/n") whose host bits are zero; a bare address is a /32 (/128). */
export function parseNetwork(text: string, family: Family = 4): Network | { error: string } {
    const full = family === 4 ? 32 : 128;
    if (text === "default") {
        return toNetwork(family === 4 ? "0.0.0.0" : "::", 0);
    }
    const withPrefix = text.includes("/") ? text : `${text}/${full}`;
    const p = parseInterfaceAddress(withPrefix, family);
    if (!p) {
        return { error: family === 4 ? `${text} is not an IPv4 network (a.b.c.d/n)` : `${text} is not an IPv6 network (x:x::/n)` };
    }
    const start = parsed(withPrefix, family).startAddress().correctForm();
    if (start !== p.address) {
        return { error: `${text} has host bits set (the network is ${start}/${p.prefix})` };
    }
    return toNetwork(start, p.prefix);
}

function toNetwork(address: string, prefix: number): Network {
    return { address, prefix, cidr: `${address}/${prefix}` };
}

/** The network an interface address belongs to: 10.0.2.1/24 -> 10.0.2.0/24. */
export function networkOf(address: string, prefix: number): Network {
    return toNetwork(parsed(`${address}/${prefix}`, familyOf(address)).startAddress().correctForm(), prefix);
}

/** True when the address lies inside the network (never across families). */
export function contains(network: Network, address: string): boolean {
    const family = familyOf(address);
    if (familyOf(network.address) !== family) return false;
    return family === 4 ? new Address4(address).isInSubnet(new Address4(network.cidr)) : new Address6(address).isInSubnet(new Address6(network.cidr));
}

/** True when two networks share at least one address (one contains the other). */
export function overlaps(x: Network, y: Network): boolean {
    return contains(x, y.address) || contains(y, x.address);
}

/** The network's first (network) and last (broadcast, in IPv4) addresses. */
export function bounds(network: Network): { first: string; last: string } {
    const a = parsed(network.cidr, familyOf(network.address));
    return { first: a.startAddress().correctForm(), last: a.endAddress().correctForm() };
}

/** The addresses no host has as its own, per family, and why. */
const special: Readonly<Record<Family, readonly [string, string][]>> = {
    4: [
        ["0.0.0.0/8", 'in 0.0.0.0/8 ("this network"), not a host\'s address'],
        ["127.0.0.0/8", "a loopback address (127.0.0.0/8): it never leaves the host"],
        ["224.0.0.0/4", "a multicast address (224.0.0.0/4)"],
        ["255.255.255.255/32", "the limited broadcast address"],
        ["240.0.0.0/4", "in the reserved 240.0.0.0/4 (class E), which hosts do not use"],
    ],
    6: [
        ["::/128", "the unspecified address (::), not a host's address"],
        ["::1/128", "the loopback address (::1): it never leaves the host"],
        ["ff00::/8", "a multicast address (ff00::/8)"],
        ["::ffff:0:0/96", "an IPv4-mapped address (::ffff:0:0/96): write the IPv4 address itself where IPv4 is meant"],
        ["fe80::/10", "a link-local address (fe80::/10), which means nothing without an interface"],
    ],
};

/**
 * Why an address cannot be a host's own unicast address (a tunnel endpoint, a tunnel or
 * local address, a gateway), or undefined when it can: "this network" (0.0.0.0/8, which a
 * packet may only come from while its host learns its address), loopback, multicast, the
 * reserved class E and the limited broadcast 255.255.255.255. With the prefix of its segment,
 * also the segment's network and broadcast addresses (a /31 and a /32 have neither).
 * IPv6: the unspecified address, loopback, multicast, IPv4-mapped addresses, link-local ones
 * (they need an interface to mean anything), and with a prefix the subnet-router anycast
 * address (a /127 and a /128 have none; there is no broadcast).
 */
export function notUnicast(address: string, prefix?: number): string | undefined {
    const family = familyOf(address);
    for (const [cidr, why] of special[family]) if (contains(parseNetwork(cidr, family) as Network, address)) return why;
    if (prefix === undefined || prefix >= (family === 4 ? 31 : 127)) return undefined;
    const { first, last } = bounds(networkOf(address, prefix));
    if (address === first) return family === 4 ? `the network address of ${first}/${prefix}` : `the subnet-router anycast address of ${first}/${prefix}`;
    if (address === last && family === 4) return `the broadcast address of ${first}/${prefix}`;
    return undefined;
}

/** An address to stand for the network in a probe: the network itself when /31 or /32 (/127, /128), else its first host. */
export function representative(network: Network): string {
    if (familyOf(network.address) === 6) {
        if (network.prefix >= 127) return network.address;
        return Address6.fromBigInt(new Address6(network.address).bigInt() + 1n).correctForm();
    }
    if (network.prefix >= 31) return network.address;
    return Address4.fromBigInt(new Address4(network.address).bigInt() + 1n).correctForm();
}
