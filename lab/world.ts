// A lab world: the network that exists before the product deploys anything. Loaded from
// YAML, validated (every problem collected and named by field path and value), then
// rendered into plain data files that the lab kernel's init scripts read. Pure apart from
// loadWorld's file read: no kernel, no processes.
import * as fs from "fs";
import { isIPv6 } from "net";
import * as path from "path";
import { parse } from "yaml";

/** The management network: the machine's TAP is .1, managed host i (1-based, world order) is .(10+i). */
export const mgmt = { prefix: "198.18.0", hostAddress: "198.18.0.1", cidr: "198.18.0.0/24" } as const;

export interface Interface {
    /** The L2 segment (a bridge in the lab kernel) this interface is plugged into. */
    segment: string;
    /**
     * Addresses with prefix: IPv4's, e.g. 130.88.198.58/16 (the first one is the primary),
     * and in a world with `ipv6: true` IPv6's too, e.g. 2001:db8:88::58/64 (added without
     * duplicate address detection, so that they are usable at once).
     */
    addresses: string[];
    /** MTU of the interface (and of its bridge port); default: the kernel's 1500. */
    mtu?: number;
}

export interface Host {
    /**
     * true (default): the host gets `mgmt0` (198.18.0.(10+i)/24) on the management bridge and
     * is reached over it. false: no management interface and no route to it; its sshd still
     * listens on its own addresses and it is reached through `jump`, if set.
     */
    management: boolean;
    /** For management: false hosts: the host to use as SSH jump host (ProxyJump). */
    jump?: string;
    interfaces: Record<string, Interface>;
    /** `ip route add` arguments, in order, e.g. "default via 130.88.198.250"; IPv6's (with a ":") need `ipv6: true`. */
    routes: string[];
    /** sysctl key -> value, written inside the host's namespaces in order, after the routes. */
    sysctls: Record<string, string>;
    /** iptables-restore input applied last (legacy backend inside the lab). */
    firewall?: string;
    /** ip6tables-restore input applied after it (legacy backend); needs `ipv6: true`. */
    firewall6?: string;
}

export interface World {
    name: string;
    description?: string;
    segments: Record<string, { description?: string }>;
    /** In file order: the order fixes management addresses. */
    hosts: Record<string, Host>;
    /**
     * IPv6 on the hosts (issue #15's IPv6 overlays): the lab kernel boots with IPv6 disabled on
     * every device; in such a world each host enables it on lo, on its own interfaces and on
     * the devices made later (conf.default), never on mgmt0 (nothing of IPv6 reaches the TAP),
     * and ip6tables is the legacy backend as iptables is. Default false: nothing changes.
     */
    ipv6?: boolean;
}

export class WorldError extends Error {
    constructor(
        readonly file: string,
        readonly problems: readonly string[],
    ) {
        super(`invalid lab world ${file}:\n  ${problems.join("\n  ")}`);
        this.name = "WorldError";
    }
}

// Host names become netns names, hostnames and ssh_config aliases; keep them plain.
const hostPattern = /^[a-z][a-z0-9-]{0,31}$/;
const segmentPattern = /^[a-z][a-z0-9-]{0,31}$/;
const ifPattern = /^[a-z][a-z0-9_-]{0,14}$/;
// Routes go into an `ip -batch` file: one line, words of these characters only.
const routePattern = /^[A-Za-z0-9][A-Za-z0-9 ./:_-]*$/;
// Dots separate sysctl levels, so interface names with dots cannot be named here.
const sysctlKeyPattern = /^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$/;
const sysctlValuePattern = /^[A-Za-z0-9 _.:-]*$/;
const maxHosts = 244; // management addresses 198.18.0.11 to .254

const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

/** Whether `text` is an IPv6 address with a prefix, "x:x::x/n". */
export function isCidr6(text: string): boolean {
    const m = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/.exec(text);
    return !!m && isIPv6(m[1]) && Number(m[2]) <= 128;
}

/** Whether `text` is "a.b.c.d/n". */
export function isCidr(text: string): boolean {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
    return !!m && m.slice(1, 5).every((o) => Number(o) <= 255) && Number(m[5]) <= 32;
}

type Obj = Record<string, unknown>;

export function loadWorld(file: string): World {
    let doc: unknown;
    try {
        doc = parse(fs.readFileSync(file, "utf8"));
    } catch (e) {
        throw new WorldError(file, [`cannot read or parse: ${(e as Error).message}`]);
    }
    return validateWorld(doc, file, path.basename(file).replace(/\.ya?ml$/, ""));
}

/** Checks a parsed world document; throws WorldError listing every problem. */
export function validateWorld(doc: unknown, file: string, defaultName: string): World {
    const problems: string[] = [];
    const fail = (at: string, msg: string): undefined => {
        problems.push(`${at}: ${msg}`);
        return undefined;
    };
    const object = (v: unknown, at: string, known: string[]): Obj | undefined => {
        if (v === null || v === undefined) return {};
        if (typeof v !== "object" || Array.isArray(v)) return fail(at, `${show(v)} is not a map`);
        for (const k of Object.keys(v)) if (!known.includes(k)) fail(`${at}.${k}`, `unknown field (known: ${known.join(", ")})`);
        return v as Obj;
    };
    const map = (v: unknown, at: string, pattern: RegExp): Obj => {
        if (v === null || v === undefined) return {};
        if (typeof v !== "object" || Array.isArray(v)) return fail(at, `${show(v)} is not a map of names`) ?? {};
        for (const k of Object.keys(v)) if (!pattern.test(k)) fail(`${at}.${k}`, `name ${show(k)} must match ${pattern.source}`);
        return v as Obj;
    };
    const optString = (v: unknown, at: string): string | undefined =>
        v === undefined ? undefined : typeof v === "string" && v !== "" ? v : fail(at, `${show(v)} is not a non-empty string`);

    const top = object(doc, "world", ["name", "description", "segments", "hosts", "ipv6"]) ?? {};
    const world: World = {
        name: optString(top.name, "name") ?? defaultName,
        description: optString(top.description, "description"),
        segments: {},
        hosts: {},
    };
    if (top.ipv6 !== undefined) {
        if (typeof top.ipv6 === "boolean") world.ipv6 = top.ipv6;
        else fail("ipv6", `${show(top.ipv6)} is not true or false`);
    }
    for (const [name, raw] of Object.entries(map(top.segments, "segments", segmentPattern))) {
        const s = object(raw, `segments.${name}`, ["description"]) ?? {};
        world.segments[name] = { description: optString(s.description, `segments.${name}.description`) };
    }
    const rawHosts = map(top.hosts, "hosts", hostPattern);
    if (Object.keys(rawHosts).length === 0) fail("hosts", "a world needs at least one host");

    const used = new Set<string>();
    const addressOwner = new Map<string, string>();
    for (const [name, raw] of Object.entries(rawHosts)) {
        const at = `hosts.${name}`;
        const h = object(raw, at, ["description", "management", "jump", "interfaces", "routes", "sysctls", "firewall", "firewall6"]) ?? {};
        optString(h.description, `${at}.description`);
        const management = h.management ?? true;
        if (typeof management !== "boolean") fail(`${at}.management`, `${show(management)} is not true or false`);
        const host: Host = { management: management !== false, interfaces: {}, routes: [], sysctls: {} };
        host.jump = optString(h.jump, `${at}.jump`);
        if (host.jump !== undefined && management === true)
            fail(`${at}.jump`, `${show(host.jump)}: only a management: false host is reached through a jump host`);

        for (const [ifname, rawIf] of Object.entries(map(h.interfaces, `${at}.interfaces`, ifPattern))) {
            const iat = `${at}.interfaces.${ifname}`;
            if (ifname === "lo" || (ifname === "mgmt0" && host.management)) fail(iat, `interface name ${show(ifname)} is reserved`);
            const i = object(rawIf, iat, ["segment", "addresses", "mtu"]) ?? {};
            const segment = optString(i.segment, `${iat}.segment`);
            if (segment === undefined) fail(`${iat}.segment`, "is required");
            else if (!(segment in world.segments))
                fail(`${iat}.segment`, `${show(segment)} is not one of segments: ${Object.keys(world.segments).join(", ") || "(none)"}`);
            else used.add(segment);
            const addresses = i.addresses ?? [];
            if (!Array.isArray(addresses)) fail(`${iat}.addresses`, `${show(addresses)} is not a list of CIDRs`);
            const checked: string[] = [];
            (Array.isArray(addresses) ? addresses : []).forEach((a: unknown, n: number) => {
                const aat = `${iat}.addresses[${n}]`;
                if (typeof a === "string" && isCidr6(a)) {
                    if (!world.ipv6) return fail(aat, `${show(a)} is IPv6: a world with IPv6 addresses sets ipv6: true`);
                } else if (typeof a !== "string" || !isCidr(a)) {
                    return fail(aat, `${show(a)} is not an IPv4 address with prefix (a.b.c.d/0-32)${world.ipv6 ? " or an IPv6 one (x:x::x/0-128)" : ""}`);
                }
                const bare = a.split("/")[0];
                const other = addressOwner.get(bare);
                if (other) fail(aat, `${show(a)}: address already used by ${other}`);
                addressOwner.set(bare, aat);
                checked.push(a);
            });
            if (i.mtu !== undefined && !(Number.isInteger(i.mtu) && (i.mtu as number) >= 68 && (i.mtu as number) <= 65535)) {
                fail(`${iat}.mtu`, `${show(i.mtu)} is not an integer from 68 to 65535`);
            }
            host.interfaces[ifname] = { segment: segment ?? "", addresses: checked, mtu: i.mtu as number | undefined };
        }

        const routes = h.routes ?? [];
        if (!Array.isArray(routes)) fail(`${at}.routes`, `${show(routes)} is not a list of "ip route add" argument strings`);
        (Array.isArray(routes) ? routes : []).forEach((r: unknown, n: number) => {
            if (typeof r !== "string" || !routePattern.test(r)) {
                return fail(`${at}.routes[${n}]`, `${show(r)} is not "ip route add" arguments (letters, digits, space . / : _ -)`);
            }
            if (r.includes(":") && !world.ipv6) return fail(`${at}.routes[${n}]`, `${show(r)} is IPv6's: a world with IPv6 routes sets ipv6: true`);
            host.routes.push(r.trim().replace(/\s+/g, " "));
        });

        const sysctls = h.sysctls ?? {};
        if (sysctls === null || typeof sysctls !== "object" || Array.isArray(sysctls)) fail(`${at}.sysctls`, `${show(sysctls)} is not a map of key: value`);
        else {
            for (const [key, value] of Object.entries(sysctls as Obj)) {
                const kat = `${at}.sysctls[${show(key)}]`;
                if (!sysctlKeyPattern.test(key)) fail(kat, `key ${show(key)} is not a dotted sysctl name`);
                if (!(typeof value === "number" || (typeof value === "string" && sysctlValuePattern.test(value)))) {
                    fail(kat, `${show(value)} is not a number or a plain string`);
                }
                host.sysctls[key] = String(value);
            }
        }
        host.firewall = optString(h.firewall, `${at}.firewall`);
        if (host.firewall !== undefined && !/^\s*\*(filter|nat|mangle|raw)\s*$/m.test(host.firewall)) {
            fail(`${at}.firewall`, "is not iptables-restore input (no *filter/*nat/*mangle/*raw table line)");
        }
        host.firewall6 = optString(h.firewall6, `${at}.firewall6`);
        if (host.firewall6 !== undefined) {
            if (!world.ipv6) fail(`${at}.firewall6`, "ip6tables rules need a world with ipv6: true");
            else if (!/^\s*\*(filter|nat|mangle|raw)\s*$/m.test(host.firewall6))
                fail(`${at}.firewall6`, "is not ip6tables-restore input (no *filter/*nat/*mangle/*raw table line)");
        }
        world.hosts[name] = host;
    }

    for (const s of Object.keys(world.segments)) if (!used.has(s)) fail(`segments.${s}`, "no interface is plugged into this segment");
    const count = Object.keys(world.hosts).length;
    if (count > maxHosts) fail("hosts", `${count} hosts; management addresses allow at most ${maxHosts}`);
    // A jump chain must end at a managed host, or the machine could never reach the host.
    for (const [name, host] of Object.entries(world.hosts)) {
        const seen = [name];
        let j = host.jump;
        while (j !== undefined) {
            const target = world.hosts[j];
            if (!target) {
                fail(`hosts.${name}.jump`, `${show(j)} is not a host of this world`);
                break;
            }
            if (seen.includes(j)) {
                fail(`hosts.${name}.jump`, `jump hosts loop: ${[...seen, j].join(" -> ")}`);
                break;
            }
            if (target.management) break;
            if (target.jump === undefined) fail(`hosts.${name}.jump`, `${show(j)} has no management interface and no jump host`);
            seen.push(j);
            j = target.jump;
        }
    }
    if (problems.length) throw new WorldError(file, problems);
    return world;
}

/** Management address of a host, or undefined for management: false hosts. */
export function mgmtAddress(world: World, host: string): string | undefined {
    const names = Object.keys(world.hosts);
    const i = names.indexOf(host);
    return i >= 0 && world.hosts[host].management ? `${mgmt.prefix}.${11 + i}` : undefined;
}

/**
 * Renders the data files init.sh and host.sh read from /lab/world/ (paths relative to
 * that directory). Names of devices in the lab kernel's root namespace, which hosts never
 * see: bridges b<segment index>, mgmt bridge bmgmt, veth ends v<host index>i<interface index>
 * and v<host index>m (management); eth0 there is the kernel's end of the machine's TAP.
 */
export function renderWorld(world: World): Record<string, string> {
    const files: Record<string, string> = {};
    const hostNames = Object.keys(world.hosts);
    const segIndex = new Map(Object.keys(world.segments).map((s, i) => [s, i]));
    const anyManaged = Object.values(world.hosts).some((h) => h.management);

    // Root namespace: bridges and namespaces and veth pairs, in one `ip -batch` (each process costs ~120 ms).
    const topo: string[] = [];
    if (anyManaged) topo.push("link add bmgmt type bridge", "link set bmgmt up", "link set eth0 master bmgmt up");
    for (const i of segIndex.values()) topo.push(`link add b${i} type bridge`, `link set b${i} up`);
    hostNames.forEach((name, h) => {
        const host = world.hosts[name];
        topo.push(`netns add ${name}`);
        if (host.management) topo.push(`link add v${h}m master bmgmt up type veth peer name mgmt0 netns ${name}`);
        Object.entries(host.interfaces).forEach(([ifname, i], n) => {
            const mtu = i.mtu ? ` mtu ${i.mtu}` : "";
            topo.push(`link add v${h}i${n}${mtu} master b${segIndex.get(i.segment)} up type veth peer name ${ifname}${mtu} netns ${name}`);
        });
    });
    files["topology.ip"] = topo.join("\n") + "\n";
    // (init.sh: ip6tables as the legacy backend, as iptables)
    if (world.ipv6) files["ipv6"] = "";
    files["hosts"] = hostNames.join("\n") + "\n";

    hostNames.forEach((name) => {
        const host = world.hosts[name];
        // Private /etc /root /var /run (tmpfs uppers on /ns) and /tmp, all in one `mount -a -T`.
        // An empty /run/netns: the lab's namespace files are not nsfs mounts in this mount
        // namespace, and `ip` would print "Peer netns reference is invalid" for every veth.
        // Last, /ns is covered so that a host cannot see the other hosts' layers.
        const ns = `/ns/${name}`;
        files[`${name}.fstab`] =
            ["etc", "root", "var", "run"].map((d) => `ovl-${d} /${d} overlay lowerdir=/${d},upperdir=${ns}/${d}/u,workdir=${ns}/${d}/w 0 0\n`).join("") +
            `tmp-${name} /tmp tmpfs mode=1777,size=64m 0 0\nnetns-${name} /run/netns tmpfs mode=755,size=64k 0 0\nhide /ns tmpfs ro,size=4k 0 0\n`;
        const ip = ["link set lo up"];
        // IPv6's addresses and routes in a file of their own, which host.sh sends after the
        // sysctls: IPv6 is off on every device until they enable it
        const ip6: string[] = [];
        const mgmtIp = mgmtAddress(world, name);
        if (mgmtIp) ip.push("link set mgmt0 up", `addr add ${mgmtIp}/24 dev mgmt0`);
        for (const [ifname, i] of Object.entries(host.interfaces)) {
            ip.push(`link set ${ifname} up`);
            for (const a of i.addresses) (a.includes(":") ? ip6 : ip).push(`addr add ${a} dev ${ifname}${a.includes(":") ? " nodad" : ""}`);
        }
        for (const r of host.routes) (r.includes(":") ? ip6 : ip).push(`route add ${r}`);
        files[`${name}.ip`] = ip.join("\n") + "\n";
        if (ip6.length > 0) files[`${name}.ip6`] = ip6.join("\n") + "\n";
        // "key value" lines with the key as a /proc/sys path; host.sh writes them with a shell builtin.
        // An IPv6 world's first: IPv6 on lo, the host's interfaces and the devices made later (not mgmt0).
        const ipv6 = world.ipv6
            ? ["default", "lo", ...Object.keys(host.interfaces)].map((d): [string, string] => [`net.ipv6.conf.${d}.disable_ipv6`, "0"])
            : [];
        files[`${name}.sysctl`] = [...ipv6, ...Object.entries(host.sysctls)].map(([k, v]) => `${k.replace(/\./g, "/")} ${v}\n`).join("");
        const text = (t: string) => (t.endsWith("\n") ? t : t + "\n");
        if (host.firewall !== undefined) files[`${name}.fw`] = text(host.firewall);
        if (host.firewall6 !== undefined) files[`${name}.fw6`] = text(host.firewall6);
    });
    return files;
}
