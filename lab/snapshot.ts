// A host's state, as far as a deployment can touch it: links, addresses, routes, rules,
// every iptables table without counters, the sysctls, the state directory, the systemd unit
// directory (/etc/systemd/system: mode, owner, path, symlink target, each file's sha256).
// Compared line for line before up and after destroy.
//
// Excluded, by name, because a teardown cannot put them back (README, "What destroy
// restores"): the kernel's fallback devices (fallbackDevices: tunl0 with ipip; gre0, gretap0
// and erspan0 with ip_gre; sit0 with sit; in every namespace), which stay once their module is
// loaded, with their sysctls and routes; the ipip module; and empty built-in iptables and
// ip6tables tables, which stay once read.

/** The sysctls compared (globs under /proc/sys); lab/day2.ts reads the same at boot and puts them back at a reboot. */
export const snapshotSysctlFiles =
    "/proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/*/forwarding /proc/sys/net/ipv4/conf/*/rp_filter \\\n" +
    "         /proc/sys/net/ipv4/conf/*/accept_redirects /proc/sys/net/ipv4/conf/*/src_valid_mark";

/**
 * IPv6's sysctls, compared, read at boot and put back at a lab reboot in a world with IPv6
 * (lab/day2.ts): forwarding (a SIT pair's net.ipv6.conf.all.forwarding rewrites every
 * conf.*.forwarding), accept_ra (whose effect forwarding changes) and disable_ipv6 (what the
 * world enabled).
 */
export const snapshotSysctl6Files = "/proc/sys/net/ipv6/conf/*/forwarding /proc/sys/net/ipv6/conf/*/accept_ra /proc/sys/net/ipv6/conf/*/disable_ipv6";

/** The unit directory the snapshot covers, recursively. */
export const unitDir = "/etc/systemd/system";

/**
 * Read-only: it must change nothing, so it reads only the iptables tables already loaded.
 * It first waits (at most 5 s) while an IPv6 address is in duplicate address detection
 * (tentative and not failed, flag 0x40 in /proc/net/if_inet6): until it ends the address has
 * no local route, a moment of the kernel's after an address is added or a device's IPv6
 * comes up (a lab reboot, a boot run), not a state. Shell builtins only, no process, unless
 * it waits (none where no device has IPv6).
 */
export const snapshotScript = `
set -u
n=0
while [ $n -lt 50 ]; do
    dad=
    if [ -r /proc/net/if_inet6 ]; then
        while read -r _a _i _p _s flags _d; do [ $((0x$flags & 0x48)) != 64 ] || dad=1; done </proc/net/if_inet6
    fi
    [ -n "$dad" ] || break
    sleep 0.1; n=$((n + 1))
done
echo '## link'; ip -d link show
echo '## addr'; ip addr show
# (ip route alone prints every family's: -4, or the IPv6 routes would be listed twice)
echo '## route'; ip -4 route show table all; ip -6 route show table all
echo '## rule'; ip rule show
echo '## iptables'
for t in $(cat /proc/net/ip_tables_names 2>/dev/null); do echo "### $t"; iptables-save -t "$t"; done
echo '## ip6tables'
for t in $(cat /proc/net/ip6_tables_names 2>/dev/null); do echo "### $t"; ip6tables-save -t "$t"; done
echo '## sysctl'
for f in ${snapshotSysctlFiles}; do
    read -r v <"$f"; echo "\${f#/proc/sys/} = $v"
done
echo '## sysctl6'
for f in ${snapshotSysctl6Files}; do
    [ -e "$f" ] || continue; read -r v <"$f"; echo "\${f#/proc/sys/} = $v"
done
echo '## state'
if [ -e /var/lib/tunnelpair ]; then find /var/lib/tunnelpair -printf '%M %u %p\\n' | LC_ALL=C sort; fi
echo '## modules'
[ -d /sys/module/ipip ] && echo ipip || true
echo '## units'
# one find: an entry per line (a symlink with its target), and sha256sum once for all regular
# files (none: no sha256sum); parseSnapshot joins each hash to its file's line and sorts
if [ -e ${unitDir} ]; then
    find ${unitDir} -type l -printf '%M %u:%g %p -> %l\\n' -o -printf '%M %u:%g %p\\n' -type f -exec sha256sum {} +
fi
`;

export type Snapshot = Record<string, string[]>;

/**
 * The devices the kernel makes by itself in every namespace when a tunnel module loads (tunl0
 * with ipip; gre0, gretap0, erspan0 with ip_gre; sit0, ip6tnl0, ...): they cannot be deleted
 * while it is loaded, so no teardown removes them.
 */
export const fallbackDevices: readonly string[] = ["tunl0", "gre0", "gretap0", "erspan0", "ip_vti0", "ip6_vti0", "sit0", "ip6tnl0", "ip6gre0"];

/** Sections of the snapshot, each a list of lines, normalized and with the exclusions applied. */
export function parseSnapshot(text: string): Snapshot {
    const sections: Snapshot = {};
    let current = "";
    for (const line of text.split("\n")) {
        const m = /^## (\w+)$/.exec(line);
        if (m) {
            current = m[1];
            sections[current] = [];
        } else if (current && line !== "") sections[current].push(line);
    }
    // A device made anew gets a new ifindex: compare devices by name, not by number.
    for (const s of ["link", "addr"]) sections[s] = withoutBlocksOf(sections[s] ?? [], fallbackDevices).map((l) => l.replace(/^\d+: /, "N: "));
    randomLinkLocal(sections);
    for (const s of ["sysctl", "sysctl6"]) sections[s] = (sections[s] ?? []).filter((l) => !fallbackDevices.some((d) => l.includes(`/conf/${d}/`)));
    // (sit0 with IPv6 on makes routes of its own, e.g. "::/96 dev sit0")
    sections.route = (sections.route ?? []).filter((l) => !fallbackDevices.some((d) => l.includes(` dev ${d} `) || l.endsWith(` dev ${d}`)));
    sections.modules = (sections.modules ?? []).filter((l) => l !== "ipip");
    sections.iptables = normalizeIptables(sections.iptables ?? []);
    sections.ip6tables = normalizeIptables(sections.ip6tables ?? []);
    sections.units = normalizeUnits(sections.units ?? []);
    return sections;
}

/**
 * find's lines with each regular file's sha256 appended ("-rw-r--r-- root:root PATH
 * sha256:HEX"), sorted by path. sha256sum writes "HASH  PATH", or "\\HASH  PATH" with the
 * path's backslashes and newlines escaped when it has any (systemd's \\x2d names do).
 */
function normalizeUnits(lines: string[]): string[] {
    const hashes = new Map<string, string>();
    const entries: { path: string; line: string }[] = [];
    for (const l of lines) {
        const h = /^(\\?)([0-9a-f]{64}) {2}(.*)$/.exec(l);
        if (h) {
            const file = h[1] ? h[3].replace(/\\(.)/g, (_m, c: string) => (c === "n" ? "\n" : c)) : h[3];
            hashes.set(file, h[2]);
            continue;
        }
        const e = /^(\S+) (\S+) (.*?)( -> .*)?$/.exec(l);
        entries.push({ path: e ? e[3] : l, line: l });
    }
    return entries
        .sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0))
        .map(({ path, line }) => (line.startsWith("-") ? `${line} sha256:${hashes.get(path) ?? "(unread)"}` : line));
}

/**
 * An ip6tnl device (link/tunnel6: ipip6, ip6ip6) gets a random permanent address each time
 * it is made (the kernel's doing, so that tunnels between the same ends have link-local
 * addresses of their own), and its link-local address is made from it: a device made again
 * (after a reboot, or removed and repaired) is the same device with other such addresses.
 * Both are masked, the permaddr in `ip link`/`ip addr`, the fe80::/64 address in `ip addr`
 * and its local route; nothing else of the device is.
 */
function randomLinkLocal(sections: Snapshot): void {
    const devs = new Set<string>();
    let dev = "";
    for (const l of sections.link ?? []) {
        const head = /^N: ([^:@]+)[@:]/.exec(l);
        if (head) dev = head[1];
        else if (/^\s+link\/tunnel6 .* permaddr /.test(l)) devs.add(dev);
    }
    if (devs.size === 0) return;
    const permaddr = (l: string) => (/^\s+link\/tunnel6 /.test(l) ? l.replace(/ permaddr \S+/, " permaddr (random)") : l);
    sections.link = sections.link.map(permaddr);
    dev = "";
    sections.addr = sections.addr.map((l) => {
        const head = /^N: ([^:@]+)[@:]/.exec(l);
        if (head) dev = head[1];
        return devs.has(dev) ? permaddr(l).replace(/^(\s+inet6 )fe80::[0-9a-f:]+\/64 /, "$1fe80::(from permaddr)/64 ") : l;
    });
    sections.route = (sections.route ?? []).map((l) => {
        const m = /^local fe80::[0-9a-f:]+ dev (\S+) /.exec(l);
        return m && devs.has(m[1]) ? l.replace(/^local fe80::[0-9a-f:]+ /, "local fe80::(from permaddr) ") : l;
    });
}

/** Drops interfaces' blocks from `ip link`/`ip addr` output ("N: name[@x]: ..." and its continuation lines). */
function withoutBlocksOf(lines: string[], devs: readonly string[]): string[] {
    const out: string[] = [];
    let skipping = false;
    for (const l of lines) {
        const head = /^\d+: ([^:@]+)[@:]/.exec(l);
        if (head) skipping = devs.includes(head[1]);
        if (!skipping) out.push(l);
    }
    return out;
}

/** Counters zeroed, comments dropped, empty all-ACCEPT tables dropped (empty = absent). */
function normalizeIptables(lines: string[]): string[] {
    const tables: { name: string; lines: string[] }[] = [];
    for (const raw of lines) {
        if (raw.startsWith("### ")) tables.push({ name: raw.slice(4), lines: [] });
        else if (!raw.startsWith("#") && tables.length) tables[tables.length - 1].lines.push(raw.replace(/\[\d+:\d+\]$/, "[0:0]"));
    }
    return tables
        .filter((t) => t.lines.some((l) => l.startsWith("-A ") || (l.startsWith(":") && !/^:\S+ ACCEPT \[0:0\]$/.test(l))))
        .sort((x, y) => x.name.localeCompare(y.name))
        .flatMap((t) => [`*${t.name}`, ...t.lines.filter((l) => !l.startsWith("*"))]);
}

/** The lines that differ, as "- before" / "+ after", per section. */
export function diffSnapshots(before: Snapshot, after: Snapshot): string[] {
    const out: string[] = [];
    for (const section of new Set([...Object.keys(before), ...Object.keys(after)])) {
        const b = before[section] ?? [];
        const a = after[section] ?? [];
        const bs = new Set(b);
        const as = new Set(a);
        const lines = [...b.filter((l) => !as.has(l)).map((l) => `${section}: - ${l}`), ...a.filter((l) => !bs.has(l)).map((l) => `${section}: + ${l}`)];
        // rule order matters in iptables: the same lines in another order is a difference
        if (lines.length === 0 && b.join("\n") !== a.join("\n")) lines.push(`${section}: same lines, other order`);
        out.push(...lines);
    }
    return out;
}
