// Stack configuration -> validated model. Pure: no Pulumi, no I/O. Every problem is
// collected (not just the first) and names the field path and the offending value, so
// `pulumi preview` and `npm run check-config` can print them all before any host is touched.
import { bounds, contains, Family, familyOf, Network, networkOf, notUnicast, overlaps, parseAddress, parseInterfaceAddress, parseNetwork } from "./address";
import {
    addressingOf,
    AdmitRule,
    Client,
    ComputeNode,
    Connection,
    ConvergeMode,
    convergeModes,
    Endpoint,
    firewallModes,
    FirewallMode,
    ForwardRule,
    Host,
    jumpSessionsRange,
    LocalAddress,
    Masquerade,
    modeInfo,
    Model,
    overheadOf,
    Pair,
    peerOf,
    PersistMode,
    persistModes,
    Protocol,
    protocols,
    repairRange,
    TunnelMode,
    tunnelModes,
} from "./model";

/** The raw configuration, as `pulumi config` holds it (keys tunnelpair:hosts, tunnelpair:pairs). */
export interface StackConfig {
    hosts?: unknown;
    pairs?: unknown;
    /** The stack's other keys in the project's namespace ("tunnelpair:pair"): typos, none is read. */
    otherKeys?: readonly string[];
}

export interface ValidateOptions {
    /** The stack's name; it is part of every ownership tag and state path on the hosts. */
    stack: string;
    /**
     * Whether `tunnelpair:hosts` is stored as a Pulumi secret. A credential in a key that is
     * not secret would sit in plain text in the stack file. Undefined: not checked (used when
     * the caller passes credentials as Pulumi secrets itself).
     */
    hostsAreSecret?: boolean;
    /**
     * The paths whose values are encrypted in the stack file ("hosts.doolittle.connection.privateKey"),
     * when the caller read the file itself (check-config): a credential elsewhere is plain text,
     * even in a secret key. Undefined: only hostsAreSecret is checked.
     */
    securePaths?: readonly string[];
}

export class ConfigError extends Error {
    constructor(readonly problems: readonly string[]) {
        super(`invalid tunnelpair configuration:\n  ${problems.join("\n  ")}`);
        this.name = "ConfigError";
    }
}

/** Names that become parts of paths, chain comments and ifaliases on the hosts. */
const namePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$/;
/** Linux interface names: 1-15 bytes, no '/', ':', whitespace; we also refuse shell metacharacters. */
const interfacePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
/** An OpenSSH public key as the provider pins it: type and base64, an optional comment. */
const hostKeyPattern = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/]+={0,2}( \S.*)?$/;
const labelPattern = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$/;
/**
 * A login name as useradd and sshd take it: a letter or _ first, at most 32 characters; dots
 * and capitals as directory-service accounts have them. No '-' first (an option to ssh), no
 * '@', ':' or blanks (they split an SSH destination or a passwd line).
 */
const userPattern = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
/** ipip: the kernel's minimum IPv4 MTU up to the largest IP packet minus the outer header. */
export const mtuRange = { min: 68, max: 65515 } as const;
/** IPv6's minimum link MTU (RFC 8200): below it the kernel takes IPv6 off the device. */
export const ipv6MinMtu = 1280;
/** The largest IP packet: a tunnel's MTU is at most this less the mode's overhead. */
const maxPacket = 65535;
/**
 * The fallback devices the kernel makes in every namespace once a tunnel module is loaded
 * (tunl0 for ipip, gre0, gretap0 and erspan0 for ip_gre, sit0, ip6tnl0...): shared by
 * every user of the module, never a pair's own.
 */
const fallbackDevices = ["tunl0", "gre0", "gretap0", "erspan0", "sit0", "ip6tnl0", "ip6gre0", "ip_vti0", "ip6_vti0"];

/**
 * The family a field must be in, and why: the pair's mode, and whether the field is of what
 * the tunnel carries (overlay) or of what carries it (underlay).
 */
interface Fam {
    readonly family: Family;
    readonly mode: TunnelMode;
    readonly layer: "overlay" | "underlay";
}
const ipv4: Fam = { family: 4, mode: "ipip", layer: "overlay" };
const otherFamily = (f: Family): Family => (f === 4 ? 6 : 4);

/** "10.0.1.2 is IPv4; mode sit carries IPv6" */
function familyMismatch(value: string, fam: Fam): string {
    return `${value} is IPv${otherFamily(fam.family)}; mode ${fam.mode} ${fam.layer === "overlay" ? "carries" : "runs over"} IPv${fam.family}`;
}

type Obj = Record<string, unknown>;

class Checker {
    readonly problems: string[] = [];
    /** The names under hosts, valid or not: a host with problems is not also "not declared". */
    declared: ReadonlySet<string> = new Set();

    fail(path: string, message: string): undefined {
        this.problems.push(`${path}: ${message}`);
        return undefined;
    }

    /** An object with only the known keys; unknown keys are usually typos. */
    object(value: unknown, path: string, known: readonly string[]): Obj | undefined {
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
            return this.fail(path, `${show(value)} is not an object`);
        }
        for (const key of Object.keys(value)) {
            if (!known.includes(key)) {
                this.fail(`${path}.${key}`, `unknown field (known: ${known.join(", ")})`);
            }
        }
        return value as Obj;
    }

    map(value: unknown, path: string): Obj | undefined {
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
            return this.fail(path, `${show(value)} is not a map of names`);
        }
        for (const key of Object.keys(value)) {
            if (!namePattern.test(key)) {
                this.fail(`${path}.${key}`, `name ${show(key)} must match ${namePattern.source}`);
            }
        }
        return value as Obj;
    }

    string(o: Obj, key: string, path: string): string | undefined {
        const v = o[key];
        if (v === undefined) return this.fail(`${path}.${key}`, "is required");
        if (typeof v !== "string" || v === "") return this.fail(`${path}.${key}`, `${show(v)} is not a non-empty string`);
        return v;
    }

    optionalString(o: Obj, key: string, path: string): string | undefined {
        return o[key] === undefined ? undefined : this.string(o, key, path);
    }

    boolean(o: Obj, key: string, path: string, fallback: boolean): boolean {
        const v = o[key];
        if (v === undefined) return fallback;
        if (typeof v !== "boolean") {
            this.fail(`${path}.${key}`, `${show(v)} is not true or false`);
            return fallback;
        }
        return v;
    }

    integer(o: Obj, key: string, path: string, min: number, max: number): number | undefined {
        const v = o[key];
        if (v === undefined) return undefined;
        if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
            return this.fail(`${path}.${key}`, `${show(v)} is not an integer from ${min} to ${max}`);
        }
        return v;
    }

    array(o: Obj, key: string, path: string): unknown[] {
        const v = o[key];
        if (v === undefined) return [];
        if (!Array.isArray(v)) {
            this.fail(`${path}.${key}`, `${show(v)} is not a list`);
            return [];
        }
        return v;
    }

    interfaceName(o: Obj, key: string, path: string, fallback?: string): string | undefined {
        const v = o[key] === undefined && fallback !== undefined ? fallback : this.string(o, key, path);
        return v === undefined ? undefined : this.interfaceValue(v, `${path}.${key}`);
    }

    interfaceValue(v: unknown, path: string): string | undefined {
        if (typeof v !== "string" || !interfacePattern.test(v)) {
            return this.fail(path, `${show(v)} is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)`);
        }
        return v;
    }

    address(o: Obj, key: string, path: string, fam: Fam = ipv4): string | undefined {
        const v = this.string(o, key, path);
        if (v === undefined) return undefined;
        const a = parseAddress(v, fam.family);
        if (a !== undefined) return a;
        if (parseAddress(v, otherFamily(fam.family)) !== undefined) return this.fail(`${path}.${key}`, familyMismatch(v, fam));
        return this.fail(`${path}.${key}`, `${v} is not an IPv${fam.family} address`);
    }

    /** A host's own address: unicast, and with its segment's prefix not the segment's network or broadcast address. */
    unicast(address: string | undefined, path: string, prefix?: number): string | undefined {
        if (address === undefined) return undefined;
        const why = notUnicast(address, prefix);
        return why === undefined ? address : this.fail(path, `${address}${prefix === undefined ? "" : `/${prefix}`} is ${why}`);
    }

    network(value: unknown, path: string, fam: Fam = ipv4): Network | undefined {
        if (typeof value !== "string")
            return this.fail(path, `${show(value)} is not an IPv${fam.family} network (${fam.family === 4 ? "a.b.c.d/n" : "x:x::/n"})`);
        const n = parseNetwork(value, fam.family);
        if (!("error" in n)) return n;
        if (!("error" in parseNetwork(value, otherFamily(fam.family)))) return this.fail(path, familyMismatch(value, fam));
        return this.fail(path, n.error);
    }
}

function show(v: unknown): string {
    if (typeof v === "string") return JSON.stringify(v);
    if (v === undefined) return "nothing";
    // a map or list in the wrong place may hold a credential: never echo one, and keep it short
    // JSON has no text for a function or symbol; String() would print a function's source
    const text = JSON.stringify(v, (k: string, x: unknown) => ((credentialKeys as readonly string[]).includes(k) ? "(not shown)" : x)) ?? `(a ${typeof v})`;
    return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}

const connectionKeys = [
    "host",
    "port",
    "user",
    "privateKey",
    "privateKeyPassword",
    "password",
    "agent",
    "hostKey",
    "proxy",
    "dialErrorLimit",
    "perDialTimeout",
    "jumpSessions",
] as const;
/** The connection fields that hold credentials: never shown, always secrets. */
export const credentialKeys = ["privateKey", "privateKeyPassword", "password"] as const;

function checkHost(c: Checker, name: string, raw: unknown, opts: ValidateOptions): Host | undefined {
    const path = `hosts.${name}`;
    const h = c.object(raw, path, ["connection", "sudo", "underlay", "interfaces"]);
    if (!h) return undefined;
    const under = c.object(h.underlay, `${path}.underlay`, ["interface", "address"]);
    const sudo = c.boolean(h, "sudo", path, false);
    const connection = checkConnection(c, h.connection, `${path}.connection`, opts, true);
    if (!connection || !under) return undefined;
    if (sudo && connection.user === "root") c.fail(`${path}.sudo`, "true needs a connection.user other than root");
    const iface = c.interfaceName(under, "interface", `${path}.underlay`);
    const text = c.string(under, "address", `${path}.underlay`);
    // either family: the modes of the host's pairs say which it must be (checkPair)
    const withPrefix = text?.includes("/") ? (parseInterfaceAddress(text, 4) ?? parseInterfaceAddress(text, 6)) : undefined;
    const address = text === undefined ? undefined : text.includes("/") ? withPrefix?.address : (parseAddress(text, 4) ?? parseAddress(text, 6));
    if (text !== undefined && address === undefined)
        c.fail(
            `${path}.underlay.address`,
            `${text} is not an IPv4 address (a.b.c.d, or a.b.c.d/n with its segment's prefix), nor an IPv6 one (x:x::x, or x:x::x/n)`,
        );
    const unicast = c.unicast(address, `${path}.underlay.address`, withPrefix?.prefix);
    const interfaces = c.array(h, "interfaces", path).flatMap((v, i) => c.interfaceValue(v, `${path}.interfaces[${i}]`) ?? []);
    if (!connection.host || iface === undefined || unicast === undefined) return undefined;
    return { name, connection, sudo, underlay: { interface: iface, address: unicast, prefix: withPrefix?.prefix }, interfaces };
}

/**
 * How the deployer's SSH reaches a host. Its jump host (`proxy`) is the name of another
 * declared host (a stack file), resolved once every host is read, or that host's connection
 * written inline (a program's TunnelPair args), which may not have a jump host of its own.
 */
function checkConnection(c: Checker, raw: unknown, cp: string, opts: ValidateOptions, mayJump: boolean): Connection | undefined {
    const conn = c.object(raw, cp, mayJump ? connectionKeys : connectionKeys.filter((k) => k !== "proxy"));
    if (!conn) return undefined;
    const host = c.string(conn, "host", cp);
    if (host !== undefined && !/^[A-Za-z0-9.:_-]+$/.test(host)) c.fail(`${cp}.host`, `${show(host)} is not a host name or address`);
    const port = c.integer(conn, "port", cp, 1, 65535) ?? 22;
    const user = c.optionalString(conn, "user", cp) ?? "root";
    if (!userPattern.test(user)) c.fail(`${cp}.user`, `${show(user)} is not a user name (a letter or _ first, then up to 31 of A-Z a-z 0-9 _ . -)`);
    const credential = (key: (typeof credentialKeys)[number]): string | undefined => {
        const v = conn[key];
        if (v === undefined || (typeof v === "string" && v !== "")) return v;
        return c.fail(
            `${cp}.${key}`,
            `is not a non-empty string (a ${Array.isArray(v) ? "list" : v === "" ? "empty string" : typeof v}; a credential's value is never shown)`,
        );
    };
    const privateKey = credential("privateKey");
    const password = credential("password");
    const privateKeyPassword = credential("privateKeyPassword");
    const agent = c.boolean(conn, "agent", cp, false);
    if (privateKey === undefined && password === undefined && !agent) {
        c.fail(cp, "no credentials: set privateKey or password (pulumi config set --secret --path), or agent: true");
    }
    if (opts.hostsAreSecret === false || opts.securePaths) {
        for (const key of credentialKeys) {
            if (conn[key] !== undefined && (opts.hostsAreSecret === false || !opts.securePaths?.includes(`${cp}.${key}`))) {
                c.fail(`${cp}.${key}`, "is stored in plain text; set it with `pulumi config set --secret --path`");
            }
        }
    }
    const hostKey = c.optionalString(conn, "hostKey", cp);
    if (hostKey !== undefined && !hostKeyPattern.test(hostKey))
        c.fail(`${cp}.hostKey`, `${show(hostKey)} is not a public key (TYPE BASE64, e.g. ssh-ed25519 AAAA...; no host name in front)`);
    let proxy: Connection | string | undefined;
    if (typeof conn.proxy === "string" || conn.proxy === undefined) proxy = c.optionalString(conn, "proxy", cp);
    else proxy = checkConnection(c, conn.proxy, `${cp}.proxy`, opts, false);
    return {
        host: host ?? "",
        port,
        user,
        privateKey,
        password,
        privateKeyPassword,
        agent,
        hostKey,
        proxy: proxy as Connection | undefined,
        proxyName: typeof proxy === "string" ? proxy : undefined,
        dialErrorLimit: c.integer(conn, "dialErrorLimit", cp, 0, 100) ?? 10,
        perDialTimeout: c.integer(conn, "perDialTimeout", cp, 1, 600) ?? 10,
        jumpSessions: c.integer(conn, "jumpSessions", cp, jumpSessionsRange.min, jumpSessionsRange.max) ?? jumpSessionsRange.default,
    };
}

const endpointKeys = [
    "host",
    "interface",
    "network",
    "tunnelAddress",
    "peerAddress",
    "keepConnectedRoute",
    "localAddresses",
    "routes",
    "forwarding",
    "mtu",
    "ttl",
    "forward",
    "admit",
    "masquerade",
    "reversePathFilter",
    "clampMss",
    "clients",
    "computeNodes",
] as const;

function networks(c: Checker, o: Obj, key: string, path: string, required: boolean, fam: Fam = ipv4): Network[] {
    if (o[key] === undefined && required) {
        c.fail(`${path}.${key}`, "is required");
        return [];
    }
    const items = typeof o[key] === "string" ? [o[key]] : c.array(o, key, path);
    const out: Network[] = [];
    items.forEach((v, i) => {
        const n = c.network(v, typeof o[key] === "string" ? `${path}.${key}` : `${path}.${key}[${i}]`, fam);
        if (n) out.push(n);
    });
    return out;
}

function protocol(c: Checker, v: unknown, path: string): Protocol | undefined {
    if (protocols.includes(v as Protocol)) return v as Protocol;
    return c.fail(path, `${show(v)} is not one of ${protocols.join(", ")}`);
}

function checkForward(c: Checker, raw: unknown, path: string, fam: Fam): ForwardRule | undefined {
    const f = c.object(raw, path, ["from", "to", "in", "out", "protocols"]);
    if (!f) return undefined;
    const protos = f.protocols === undefined ? ["all"] : c.array(f, "protocols", path);
    const rule: ForwardRule = {
        from: networks(c, f, "from", path, true, fam),
        to: networks(c, f, "to", path, true, fam),
        in: f.in === undefined ? undefined : c.interfaceName(f, "in", path),
        out: f.out === undefined ? undefined : c.interfaceName(f, "out", path),
        protocols: protos.map((p, i) => protocol(c, p, `${path}.protocols[${i}]`)).filter((p): p is Protocol => p !== undefined),
    };
    return rule;
}

function checkAdmit(c: Checker, raw: unknown, path: string, fam: Fam): AdmitRule | undefined {
    const a = c.object(raw, path, ["from", "protocol", "ports"]);
    if (!a) return undefined;
    const proto = a.protocol === undefined ? "all" : protocol(c, a.protocol, `${path}.protocol`);
    const ports: number[] = [];
    c.array(a, "ports", path).forEach((p, i) => {
        if (typeof p !== "number" || !Number.isInteger(p) || p < 1 || p > 65535) c.fail(`${path}.ports[${i}]`, `${show(p)} is not a port from 1 to 65535`);
        else ports.push(p);
    });
    if (ports.length > 0 && proto !== "tcp" && proto !== "udp") c.fail(`${path}.ports`, `ports need protocol tcp or udp, not ${show(proto)}`);
    return proto === undefined ? undefined : { from: networks(c, a, "from", path, true, fam), protocol: proto, ports };
}

function checkEndpoint(
    c: Checker,
    path: string,
    side: "a" | "b",
    raw: unknown,
    hosts: Record<string, Host>,
    tunnel: Pick<Pair, "mode" | "key">,
): Endpoint | undefined {
    const e = c.object(raw, path, endpointKeys);
    if (!e) return undefined;
    const { mode } = tunnel;
    const info = modeInfo[mode];
    // the tunnel's own addresses, networks, routes and rules are of what it carries
    const fam: Fam = { family: info.overlay, mode, layer: "overlay" };
    const hostName = c.string(e, "host", path);
    const host = hostName === undefined ? undefined : hosts[hostName];
    if (hostName !== undefined && !c.declared.has(hostName)) c.fail(`${path}.host`, `${show(hostName)} is not a declared host`);
    const iface = c.interfaceName(e, "interface", path, info.defaultInterface);
    if (iface === "tunl0") c.fail(`${path}.interface`, `"tunl0" is the kernel's shared fallback device; use tunl1 or another name`);
    else if (iface !== undefined && fallbackDevices.includes(iface))
        c.fail(`${path}.interface`, `${show(iface)} is a fallback device the kernel shares in every namespace; use ${info.defaultInterface} or another name`);
    if (iface !== undefined && host && iface === host.underlay.interface) c.fail(`${path}.interface`, `${show(iface)} is the host's underlay interface`);

    // Addressed by a network (its own, or one both ends share) or by the peer's address.
    let tunnelAddress = c.unicast(c.address(e, "tunnelAddress", path, fam), `${path}.tunnelAddress`);
    const peerAddress = e.peerAddress === undefined ? undefined : c.unicast(c.address(e, "peerAddress", path, fam), `${path}.peerAddress`);
    if (e.network !== undefined && e.peerAddress !== undefined) {
        c.fail(
            `${path}.peerAddress`,
            `${show(e.peerAddress)} beside network ${show(e.network)}: an endpoint is addressed by a network or by its peer's address, not both`,
        );
    }
    const network =
        e.peerAddress !== undefined
            ? tunnelAddress === undefined
                ? undefined
                : (parseNetwork(tunnelAddress, fam.family) as Network)
            : e.network === undefined
              ? c.fail(`${path}.network`, "is required (or peerAddress, for point-to-point addressing)")
              : c.network(e.network, `${path}.network`, fam);
    if (tunnelAddress !== undefined && network && e.peerAddress === undefined) {
        const { first, last } = bounds(network);
        if (!contains(network, tunnelAddress)) {
            tunnelAddress = c.fail(`${path}.tunnelAddress`, `${tunnelAddress} is not inside ${network.cidr}`);
        } else if (fam.family === 4 && network.prefix < 31 && (tunnelAddress === first || tunnelAddress === last)) {
            tunnelAddress = c.fail(`${path}.tunnelAddress`, `${tunnelAddress} is the network or broadcast address of ${network.cidr}`);
        } else if (fam.family === 6 && network.prefix < 127 && tunnelAddress === first) {
            tunnelAddress = c.fail(`${path}.tunnelAddress`, `${tunnelAddress} is the subnet-router anycast address of ${network.cidr}`);
        }
    }

    const localAddresses: LocalAddress[] = [];
    c.array(e, "localAddresses", path).forEach((item, i) => {
        const lp = `${path}.localAddresses[${i}]`;
        const la = c.object(item, lp, ["address", "interface", "label", "keepConnectedRoute"]);
        if (!la) return;
        const text = c.string(la, "address", lp);
        let parsed = text === undefined ? undefined : parseInterfaceAddress(text, fam.family);
        if (text !== undefined && !parsed) {
            if (parseInterfaceAddress(text, otherFamily(fam.family))) c.fail(`${lp}.address`, familyMismatch(text, fam));
            else c.fail(`${lp}.address`, `${text} is not an IPv${fam.family} address with a prefix (${fam.family === 4 ? "a.b.c.d/n" : "x:x::x/n"})`);
        }
        if (parsed && c.unicast(parsed.address, `${lp}.address`, parsed.prefix) === undefined) parsed = undefined;
        if (parsed && parsed.address === tunnelAddress) parsed = c.fail(`${lp}.address`, `${parsed.address} is the endpoint's tunnel address (tunnelAddress)`);
        const dev = c.interfaceName(la, "interface", lp, host?.underlay.interface ?? "eth0");
        const label = c.optionalString(la, "label", lp);
        if (label !== undefined && (!labelPattern.test(label) || (dev !== undefined && !label.startsWith(dev)))) {
            c.fail(`${lp}.label`, `${show(label)} must start with the interface name and be at most 15 characters (e.g. ${dev}:0)`);
        }
        if (parsed && dev !== undefined) {
            localAddresses.push({ ...parsed, interface: dev, label, keepConnectedRoute: c.boolean(la, "keepConnectedRoute", lp, false) });
        }
    });

    const routes: Network[] = [];
    c.array(e, "routes", path).forEach((r, i) => {
        const n = c.network(r, `${path}.routes[${i}]`, fam);
        if (n) routes.push(n);
    });

    // the kernel's smallest MTU of the family carried, the largest packet less what the tunnel adds
    const mtu = e.mtu === "auto" ? undefined : c.integer(e, "mtu", path, info.overlay === 6 ? ipv6MinMtu : mtuRange.min, maxPacket - overheadOf(tunnel));
    let ttl: number | "inherit" = "inherit";
    if (e.ttl !== undefined && e.ttl !== "inherit") ttl = c.integer(e, "ttl", path, 1, 255) ?? "inherit";

    const forward = c
        .array(e, "forward", path)
        .map((f, i) => checkForward(c, f, `${path}.forward[${i}]`, fam))
        .filter((f): f is ForwardRule => f !== undefined);
    const admit = c
        .array(e, "admit", path)
        .map((a, i) => checkAdmit(c, a, `${path}.admit[${i}]`, fam))
        .filter((a): a is AdmitRule => a !== undefined);
    const masquerade: Masquerade[] = [];
    c.array(e, "masquerade", path).forEach((m, i) => {
        const mp = `${path}.masquerade[${i}]`;
        const o = c.object(m, mp, ["source", "out"]);
        if (!o) return;
        const source = o.source === undefined ? c.fail(`${mp}.source`, "is required") : c.network(o.source, `${mp}.source`, fam);
        const out = c.interfaceName(o, "out", mp);
        if (source && out) masquerade.push({ source, out });
    });
    let reversePathFilter: "keep" | "loose" = "keep";
    if (e.reversePathFilter !== undefined) {
        if (e.reversePathFilter === "keep" || e.reversePathFilter === "loose") reversePathFilter = e.reversePathFilter;
        else c.fail(`${path}.reversePathFilter`, `${show(e.reversePathFilter)} is not one of keep, loose`);
    }
    const clients: Client[] = [];
    c.array(e, "clients", path).forEach((raw, i) => {
        const cp = `${path}.clients[${i}]`;
        const o = c.object(raw, cp, ["host", "networks"]);
        const name = o && c.string(o, "host", cp);
        if (!o || name === undefined) return;
        if (!c.declared.has(name)) c.fail(`${cp}.host`, `${show(name)} is not a declared host`);
        clients.push({ host: name, networks: o.networks === undefined ? routes : networks(c, o, "networks", cp, false, fam) });
    });
    const computeNodes: ComputeNode[] = [];
    c.array(e, "computeNodes", path).forEach((raw, i) => {
        const np = `${path}.computeNodes[${i}]`;
        const o = c.object(raw, np, ["host", "gateway", "dropLinkLocal"]);
        const name = o && c.string(o, "host", np);
        const gateway = o && c.unicast(c.address(o, "gateway", np), `${np}.gateway`);
        if (!o || name === undefined) return;
        if (!c.declared.has(name)) c.fail(`${np}.host`, `${show(name)} is not a declared host`);
        if (gateway !== undefined) computeNodes.push({ host: name, gateway, dropLinkLocal: c.boolean(o, "dropLinkLocal", np, false) });
    });

    if (hostName === undefined || !host || iface === undefined || !network || tunnelAddress === undefined) return undefined;
    if (e.peerAddress !== undefined && peerAddress === undefined) return undefined;
    const forwarding = c.boolean(e, "forwarding", path, false);
    const clampMss = c.boolean(e, "clampMss", path, forwarding);
    if (clampMss && !forwarding)
        c.fail(`${path}.clampMss`, "true needs forwarding: true (it clamps forwarded connections; the host's own use the tunnel's MTU)");
    return {
        side,
        host: hostName,
        interface: iface,
        network,
        tunnelAddress,
        peerAddress,
        keepConnectedRoute: c.boolean(e, "keepConnectedRoute", path, false),
        localAddresses,
        routes,
        forwarding,
        mtu: mtu ?? "auto",
        ttl,
        forward,
        admit,
        masquerade,
        reversePathFilter,
        clampMss,
        clients,
        computeNodes,
    };
}

/** Whether the endpoint's own routes (its connected route, its peer's host route, its `routes`) reach the address. */
function reaches(ep: Endpoint, address: string): boolean {
    return (ep.keepConnectedRoute && contains(ep.network, address)) || ep.peerAddress === address || ep.routes.some((r) => contains(r, address));
}

/**
 * What the endpoint's addressing asks of the rest of it: with a shared network or a peer
 * address, the kernel's connected (or host) route is what reaches the peer, so it is kept; no
 * route of `routes` may lead into the endpoint's own tunnel network (the device's own
 * addresses, or what the connected route already reaches).
 */
function checkAddressing(c: Checker, pair: Pair, ep: Endpoint, keepSet: unknown): Endpoint {
    const path = `pairs.${pair.name}.${ep.side}`;
    const addressing = addressingOf(pair, ep);
    const own = addressing === "peer" ? `its own address ${ep.tunnelAddress}` : `its own tunnel network ${ep.network.cidr}`;
    ep.routes.forEach((r, i) => {
        if (r.prefix >= ep.network.prefix && contains(ep.network, r.address)) {
            c.fail(`${path}.routes[${i}]`, `${r.cidr} lies in ${own}${addressing === "shared" ? ", which its connected route reaches" : ""}`);
        } else if (ep.peerAddress !== undefined && r.cidr === `${ep.peerAddress}/32`) {
            c.fail(`${path}.routes[${i}]`, `${r.cidr} is the host route the kernel adds with peerAddress ${ep.peerAddress}`);
        }
    });
    if (addressing === "separate") return ep;
    const why =
        addressing === "peer"
            ? `the host route to peerAddress ${ep.peerAddress}`
            : `the connected route of ${ep.network.cidr}, which holds ${peerOf(pair, ep.side).side}'s tunnel address`;
    if (keepSet === false) c.fail(`${path}.keepConnectedRoute`, `false would drop ${why}, the route that reaches the peer`);
    return { ...ep, keepConnectedRoute: true };
}

function checkPair(c: Checker, name: string, raw: unknown, hosts: Record<string, Host>): Pair | undefined {
    const path = `pairs.${name}`;
    const p = c.object(raw, path, ["a", "b", "mode", "key", "firewall", "verify", "persist", "repair", "converge"]);
    if (!p) return undefined;
    const tunnel = checkMode(c, path, p);
    const a0 = checkEndpoint(c, `${path}.a`, "a", p.a, hosts, tunnel);
    const b0 = checkEndpoint(c, `${path}.b`, "b", p.b, hosts, tunnel);
    let firewall: FirewallMode = "owned";
    if (p.firewall !== undefined) {
        if (firewallModes.includes(p.firewall as FirewallMode)) firewall = p.firewall as FirewallMode;
        else c.fail(`${path}.firewall`, `${show(p.firewall)} is not one of ${firewallModes.join(", ")}`);
    }
    const verify = c.boolean(p, "verify", path, true);
    const { persist, repair } = checkPersistence(c, path, p);
    let converge: ConvergeMode = "onchange";
    if (p.converge !== undefined) {
        if (convergeModes.includes(p.converge as ConvergeMode)) converge = p.converge as ConvergeMode;
        else c.fail(`${path}.converge`, `${show(p.converge)} is not one of ${convergeModes.join(", ")}`);
    }
    if (!a0 || !b0) return undefined;
    const pair0: Pair = { name, a: a0, b: b0, ...tunnel, firewall, verify, persist, repair, converge };
    checkModeFits(c, pair0, hosts);
    const [a, b] = [a0, b0].map((ep) => checkAddressing(c, pair0, ep, (p[ep.side] as Obj).keepConnectedRoute));
    if (verify) {
        // the probe goes from one tunnel address to the other and back: each end reaches the other's
        for (const [ep, peer] of [
            [a, b],
            [b, a],
        ] as const) {
            // (a peerAddress that is not the peer's tunnel address is refused below)
            if (!reaches(ep, peer.tunnelAddress) && ep.peerAddress === undefined) {
                c.fail(
                    `${path}.${ep.side}.routes`,
                    `include no route to ${peer.side}'s tunnel address ${peer.tunnelAddress} (add ${peer.network.cidr}), which the verification probe needs; or set ${path}.verify: false`,
                );
            }
        }
    }
    const [ha, hb] = [hosts[a.host], hosts[b.host]];
    if (a.host === b.host || ha.underlay.address === hb.underlay.address) {
        c.fail(`${path}.b.host`, `${b.host} (${hb.underlay.address}) is the same host as a (${ha.underlay.address}): local = remote`);
    }
    if (a.tunnelAddress === b.tunnelAddress) {
        c.fail(`${path}.b.tunnelAddress`, `${b.tunnelAddress} is a's tunnel address too`);
    } else if (a.network.cidr !== b.network.cidr && a.peerAddress === undefined && b.peerAddress === undefined && overlaps(a.network, b.network)) {
        c.fail(
            `${path}.b.network`,
            `${b.network.cidr} overlaps a.network ${a.network.cidr}: give both ends the same network (one shared subnet) or networks apart`,
        );
    }
    for (const [ep, peer] of [
        [a, b],
        [b, a],
    ] as const) {
        if (ep.peerAddress !== undefined && ep.peerAddress !== peer.tunnelAddress) {
            c.fail(`${path}.${ep.side}.peerAddress`, `${ep.peerAddress} is not ${peer.side}'s tunnel address ${peer.tunnelAddress}`);
        }
        ep.localAddresses.forEach((la, i) => {
            if (la.address === peer.tunnelAddress) c.fail(`${path}.${ep.side}.localAddresses[${i}].address`, `${la.address} is ${peer.side}'s tunnel address`);
        });
    }
    for (const [ep, peerHost, side] of [
        [a, hb, "a"],
        [b, ha, "b"],
    ] as const) {
        ep.routes.forEach((r, i) => {
            if (contains(r, peerHost.underlay.address)) {
                c.fail(
                    `${path}.${side}.routes[${i}]`,
                    `${r.cidr} contains the peer's underlay address ${peerHost.underlay.address}: the tunnel would swallow its own carrier`,
                );
            }
        });
    }
    for (const [ep, host, side] of [
        [a, ha, "a"],
        [b, hb, "b"],
    ] as const) {
        const ep_ = `${path}.${side}`;
        if (!ep.forwarding) {
            if (ep.forward.length > 0) c.fail(`${ep_}.forward`, "needs forwarding: true");
            if (ep.masquerade.length > 0) c.fail(`${ep_}.masquerade`, "needs forwarding: true");
            if (ep.clients.length > 0) c.fail(`${ep_}.clients`, "needs forwarding: true (the endpoint is their gateway)");
            if (ep.computeNodes.length > 0) c.fail(`${ep_}.computeNodes`, "needs forwarding: true (the endpoint is their router)");
        }
        if (firewall !== "owned") {
            for (const key of ["forward", "admit", "masquerade"] as const) {
                if (ep[key].length > 0) c.fail(`${ep_}.${key}`, `firewall rules need firewall: owned, not ${firewall}`);
            }
        }
        ep.clients.forEach((cl, i) => {
            const client = hosts[cl.host];
            if (!client) return;
            const cp = `${ep_}.clients[${i}].host`;
            if (cl.host === a.host || cl.host === b.host) c.fail(cp, `${cl.host} is an endpoint of the pair`);
            else if (client.underlay.prefix === undefined)
                c.fail(cp, `${cl.host}: set hosts.${cl.host}.underlay.address with its segment's prefix (a.b.c.d/n) so that its gateway can be checked`);
            else if (!contains(networkOf(client.underlay.address, client.underlay.prefix), host.underlay.address)) {
                c.fail(
                    cp,
                    `${cl.host} (${client.underlay.address}/${client.underlay.prefix}) is not on the segment of its gateway ${ep.host} (${host.underlay.address}): a desktop client's gateway must be directly connected`,
                );
            }
        });
        ep.computeNodes.forEach((n, i) => {
            const node = hosts[n.host];
            if (n.host === a.host || n.host === b.host) c.fail(`${ep_}.computeNodes[${i}].host`, `${n.host} is an endpoint of the pair`);
            else if (node?.underlay.prefix !== undefined && !contains(networkOf(node.underlay.address, node.underlay.prefix), n.gateway)) {
                c.fail(
                    `${ep_}.computeNodes[${i}].gateway`,
                    `${n.gateway} is not on the segment of ${n.host} (${node.underlay.address}/${node.underlay.prefix}): a default route's gateway must be directly connected`,
                );
            }
        });
    }
    checkRoles(c, path, a, b);
    return { name, a, b, ...tunnel, firewall, verify, persist, repair, converge };
}

/** `mode` (default ipip) and GRE's `key`, read before the endpoints: the mode decides the families of their fields. */
function checkMode(c: Checker, path: string, p: Obj): Pick<Pair, "mode" | "key"> {
    let mode: TunnelMode = "ipip";
    if (p.mode !== undefined) {
        if (tunnelModes.includes(p.mode as TunnelMode)) mode = p.mode as TunnelMode;
        else c.fail(`${path}.mode`, `${show(p.mode)} is not one of ${tunnelModes.join(", ")}`);
    }
    if (p.key === undefined) return { mode };
    if (mode !== "gre") {
        c.fail(`${path}.key`, `${show(p.key)}: only mode gre has a key, not mode ${mode}`);
        return { mode };
    }
    const key = c.integer(p, "key", path, 0, 2 ** 32 - 1);
    return key === undefined ? { mode } : { mode, key };
}

/**
 * What the mode asks of the rest of the pair: the hosts' underlay addresses in the family the
 * tunnel runs over, and, where IPv6 is involved, none of the features that are IPv4-only so
 * far (refused here rather than rendered wrong): the firewall's open mode (it saves and
 * opens iptables only), desktop clients and compute nodes (IPv4 routes via IPv4 gateways),
 * and where the tunnel carries IPv6, point-to-point addressing, source NAT and rp_filter.
 */
function checkModeFits(c: Checker, pair: Pair, hosts: Record<string, Host>): void {
    const path = `pairs.${pair.name}`;
    const { mode } = pair;
    const info = modeInfo[mode];
    for (const ep of [pair.a, pair.b]) {
        const address = hosts[ep.host].underlay.address;
        if (familyOf(address) !== info.underlay)
            c.fail(`hosts.${ep.host}.underlay.address`, `${familyMismatch(address, { family: info.underlay, mode, layer: "underlay" })} (${path})`);
    }
    if (info.overlay === 4 && info.underlay === 4) return;
    const why = `not supported with mode ${mode} yet (IPv4 only)`;
    if (pair.firewall === "open") c.fail(`${path}.firewall`, `open ${why}: it saves and opens iptables, not ip6tables; use owned or none`);
    for (const ep of [pair.a, pair.b]) {
        const at = `${path}.${ep.side}`;
        if (ep.clients.length > 0) c.fail(`${at}.clients`, `${why}: a desktop client routes via its gateway's IPv4 address`);
        if (ep.computeNodes.length > 0) c.fail(`${at}.computeNodes`, `${why}: a compute node's IPv4 default route goes via its router`);
        if (info.overlay === 4) continue;
        if (ep.peerAddress !== undefined) c.fail(`${at}.peerAddress`, `${why}: give the endpoint a network (its own, or one both ends share)`);
        if (ep.masquerade.length > 0) c.fail(`${at}.masquerade`, `${why}: source NAT is IPv4's`);
        if (ep.reversePathFilter === "loose") c.fail(`${at}.reversePathFilter`, `loose ${why}: IPv6 has no rp_filter`);
        // (the kernel keeps no label on an IPv6 address: ip addr add would be refused or the label lost)
        ep.localAddresses.forEach((la, i) => {
            if (la.label !== undefined)
                c.fail(`${at}.localAddresses[${i}].label`, `${show(la.label)}: labels are IPv4's, an IPv6 address has none (mode ${mode})`);
        });
    }
}

/** `persist: boot|none` (default boot) and `repair: <seconds>|off` (default 60). */
function checkPersistence(c: Checker, path: string, p: Obj): Pick<Pair, "persist" | "repair"> {
    let persist: Pair["persist"] = { mode: "boot", explicit: false };
    if (p.persist !== undefined) {
        if (persistModes.includes(p.persist as PersistMode)) persist = { mode: p.persist as PersistMode, explicit: true };
        else c.fail(`${path}.persist`, `${show(p.persist)} is not one of ${persistModes.join(", ")}`);
    }
    let repair: Pair["repair"] = 60;
    if (p.repair === "off") repair = "off";
    else if (p.repair !== undefined) {
        const n = c.integer(p, "repair", path, repairRange.min, repairRange.max);
        if (n !== undefined) repair = n;
    }
    if (persist.mode === "none" && p.repair !== undefined && p.repair !== "off")
        c.fail(`${path}.repair`, `${show(p.repair)} needs persist: boot (the repair runs are systemd's), not persist: none`);
    return { persist, repair: persist.mode === "none" ? "off" : repair };
}

/**
 * One host has one role in a pair: its Command's state directory is the pair's, so two roles
 * (a compute node of a and a client of b), or the same client listed twice, would each remove
 * the other's objects as stale. (An endpoint as a client or node is refused above.)
 */
function checkRoles(c: Checker, path: string, a: Endpoint, b: Endpoint): void {
    const roles = new Map<string, string>(); // host -> the field that gave it its role
    for (const ep of [a, b]) {
        const listed = [...ep.clients.map((cl, i) => [cl.host, `clients[${i}]`]), ...ep.computeNodes.map((n, i) => [n.host, `computeNodes[${i}]`])];
        for (const [host, field] of listed) {
            if (host === a.host || host === b.host) continue;
            const at = `${path}.${ep.side}.${field}.host`;
            const seen = roles.get(host);
            if (seen) c.fail(at, `${host} is already ${seen}`);
            else roles.set(host, at);
        }
    }
}

/** Checks that span pairs: names and networks on one host, proxies, firewall modes. */
function checkAcrossPairs(c: Checker, pairs: Pair[], hosts: Record<string, Host>): void {
    const devices = new Map<string, string>(); // "host/dev" -> path that claimed it
    const networks: { network: Network; path: string }[] = [];
    const modes = new Map<string, { mode: FirewallMode; path: string }>();
    const routed = new Map<string, string>(); // "host/cidr" -> path that routes it: one route per destination and host
    const aliases = new Map<string, string>(); // "host/address" -> path of that local address
    for (const pair of pairs) {
        for (const ep of [pair.a, pair.b]) {
            const path = `pairs.${pair.name}.${ep.side}`;
            const key = `${ep.host}/${ep.interface}`;
            const claimed = devices.get(key);
            if (claimed) c.fail(`${path}.interface`, `${ep.interface} on ${ep.host} is already used by ${claimed}`);
            else devices.set(key, path);
            for (const other of networks) {
                if (overlaps(other.network, ep.network) && !other.path.startsWith(`pairs.${pair.name}.`)) {
                    c.fail(`${path}.network`, `${ep.network.cidr} overlaps ${other.path}.network ${other.network.cidr}`);
                }
            }
            networks.push({ network: ep.network, path });
            if (pair.firewall !== "none") {
                const seen = modes.get(ep.host);
                if (seen && seen.mode !== pair.firewall) {
                    c.fail(
                        `pairs.${pair.name}.firewall`,
                        `${pair.firewall} on ${ep.host} conflicts with ${seen.path} (${seen.mode}): "open" replaces the whole ruleset, including owned chains`,
                    );
                } else if (!seen) modes.set(ep.host, { mode: pair.firewall, path: `pairs.${pair.name}.firewall` });
            }
            const h = hosts[ep.host];
            ep.localAddresses.forEach((la, i) => {
                if (la.interface === ep.interface)
                    c.fail(`${path}.localAddresses[${i}].interface`, `${la.interface} is the tunnel device; the tunnel address goes in tunnelAddress`);
                if (la.address === h.underlay.address) c.fail(`${path}.localAddresses[${i}].address`, `${la.address} is the host's underlay address`);
                const seen = aliases.get(`${ep.host}/${la.address}`);
                if (seen) c.fail(`${path}.localAddresses[${i}].address`, `${la.address} on ${ep.host} is already ${seen}`);
                else aliases.set(`${ep.host}/${la.address}`, `${path}.localAddresses[${i}]`);
            });
            ep.routes.forEach((r, i) => {
                const seen = routed.get(`${ep.host}/${r.cidr}`);
                if (seen) c.fail(`${path}.routes[${i}]`, `${r.cidr} on ${ep.host} is already routed by ${seen}`);
                else routed.set(`${ep.host}/${r.cidr}`, `${path}.routes[${i}]`);
            });
        }
    }
    checkRuleInterfaces(c, pairs, hosts);
    const gateways = new Map<string, { gateway: string; path: string }>();
    for (const pair of pairs) {
        for (const ep of [pair.a, pair.b]) {
            ep.computeNodes.forEach((n, i) => {
                const path = `pairs.${pair.name}.${ep.side}.computeNodes[${i}].gateway`;
                const seen = gateways.get(n.host);
                if (seen && seen.gateway !== n.gateway) c.fail(path, `${n.gateway} for ${n.host} conflicts with ${seen.path} (${seen.gateway})`);
                else if (!seen) gateways.set(n.host, { gateway: n.gateway, path });
            });
        }
    }
}

/** A jump host named in a stack file, resolved to that host's connection. */
function resolveProxies(c: Checker, hosts: Record<string, Host>): void {
    for (const h of Object.values(hosts)) {
        const proxy = h.connection.proxyName;
        if (proxy === undefined) continue;
        const jump = hosts[proxy];
        if (!c.declared.has(proxy)) c.fail(`hosts.${h.name}.connection.proxy`, `${show(proxy)} is not a declared host`);
        else if (proxy === h.name) c.fail(`hosts.${h.name}.connection.proxy`, `${show(proxy)} is the host itself`);
        else if (jump && (jump.connection.proxyName !== undefined || jump.connection.proxy !== undefined))
            c.fail(`hosts.${h.name}.connection.proxy`, `${show(proxy)} itself has a proxy; one jump host is supported`);
        else if (jump) hosts[h.name] = { ...h, connection: { ...h.connection, proxy: jump.connection } };
    }
}

/**
 * A rule's `in`/`out` names the pair's device or an interface the configuration knows the
 * host to have (its underlay, its tunnel devices, its local addresses' interfaces, its
 * `interfaces`): iptables takes any name, so a typo would silently match nothing.
 */
function checkRuleInterfaces(c: Checker, pairs: Pair[], hosts: Record<string, Host>): void {
    const known = new Map<string, Set<string>>();
    const add = (host: string, dev: string) => (known.get(host) ?? known.set(host, new Set()).get(host)!).add(dev);
    for (const h of Object.values(hosts)) [h.underlay.interface, ...h.interfaces].forEach((d) => add(h.name, d));
    for (const ep of pairs.flatMap((p) => [p.a, p.b])) [ep.interface, ...ep.localAddresses.map((la) => la.interface)].forEach((d) => add(ep.host, d));
    for (const pair of pairs) {
        for (const ep of [pair.a, pair.b]) {
            const path = `pairs.${pair.name}.${ep.side}`;
            const names = [...known.get(ep.host)!].filter((d) => d !== ep.interface);
            const check = (dev: string | undefined, at: string) => {
                if (dev === undefined || known.get(ep.host)!.has(dev)) return;
                c.fail(
                    at,
                    `${show(dev)} is neither the pair's device ${ep.interface} nor an interface ${ep.host} is known to have (${names.join(", ")}); add it to hosts.${ep.host}.interfaces if it is one`,
                );
            };
            ep.forward.forEach((f, i) => {
                check(f.in, `${path}.forward[${i}].in`);
                check(f.out, `${path}.forward[${i}].out`);
            });
            ep.masquerade.forEach((m, i) => check(m.out, `${path}.masquerade[${i}].out`));
        }
    }
}

/** Validates the whole stack configuration; throws a ConfigError listing every problem. */
export function validateConfig(raw: StackConfig, opts: ValidateOptions): Model {
    const c = new Checker();
    if (!namePattern.test(opts.stack)) c.fail("stack", `${show(opts.stack)} must match ${namePattern.source}`);
    const hosts: Record<string, Host> = {};
    for (const key of raw.otherKeys ?? []) c.fail(key, "unknown config key (known: hosts, pairs)");
    const rawHosts = raw.hosts === undefined ? c.fail("hosts", "is required (pulumi config set --path hosts.NAME...)") : c.map(raw.hosts, "hosts");
    c.declared = new Set(Object.keys(rawHosts ?? {}));
    for (const [name, value] of Object.entries(rawHosts ?? {})) {
        const h = checkHost(c, name, value, opts);
        if (h) hosts[name] = h;
    }
    resolveProxies(c, hosts);
    const pairs: Pair[] = [];
    const rawPairs = raw.pairs === undefined ? c.fail("pairs", "is required") : c.map(raw.pairs, "pairs");
    if (rawPairs && Object.keys(rawPairs).length === 0) c.fail("pairs", "declares no pair");
    for (const [name, value] of Object.entries(rawPairs ?? {})) {
        const p = checkPair(c, name, value, hosts);
        if (p) pairs.push(p);
    }
    checkAcrossPairs(c, pairs, hosts);
    if (c.problems.length > 0) throw new ConfigError(c.problems);
    return { stack: opts.stack, hosts, pairs };
}

/** The tunnel address as an interface address: 10.0.1.2/24. */
export function tunnelCidr(ep: Endpoint): string {
    return `${ep.tunnelAddress}/${ep.network.prefix}`;
}
